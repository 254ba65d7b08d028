"""`semrl run` and `semrl train STAGE`: data -> base model -> each arm's stages, into a run dir.

Everything a run needs is validated before the first step (config, every data row, model
paths); finished stages are recorded in the manifest, and `--resume` skips them and continues
the interrupted one from its newest checkpoint. Each arm's recipe (semrl.recipes) is planned into
stages named by their inputs; a stage several arms share (e.g. the cold-start SFT) is trained once,
and with `parallel` independent stages train in worker processes at once (semrl.pipeline.stage_cache).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from semrl.checks.memory import largest_estimate, text_lengths
from semrl.checks.preflight import preflight
from semrl.data.splits import head, rest
from semrl.data.task_rows import load_pairs
from semrl.data.tasks import build_task_examples
from semrl.devices import pick_device
from semrl.disk import DiskFull, disk_guard
from semrl.distributed import is_main_process, main_process_first
from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig, load_experiment
from semrl.files import atomic_write_json, jsonl_text
from semrl.models.families import build_tiny_base
from semrl.models.loading import check_model_reference, load_tokenizer
from semrl.pipeline.evaluation import evaluate_run
from semrl.pipeline.stage_cache import RunContext, run_stages, train_once
from semrl.recipes.plan import StagePlan, plan_experiment, plan_single
from semrl.report import build_report
from semrl.report.model_card import write_model_cards
from semrl.rewards.encoder_binding import bind_run_encoder, run_encoder_folder, uses_run_encoder
from semrl.run_folder import DataFile, Run, check_run_folder
from semrl.run_lock import run_lock
from semrl.tasks import TASKS
from semrl.train.encoder import run_encoder
from semrl.train.grpo import run_grpo
from semrl.train.guard import StageStopped
from semrl.train.rm import run_rm
from semrl.train.select import finished_training, select_checkpoint, split_dev
from semrl.train.settings import StageSettings
from semrl.train.sft import run_sft

console = Console(stderr=True)
Rows = list[dict[str, Any]]


def ensure_base_model(exp: ExperimentConfig, run: Run, texts: list[str]) -> str:
    """The base model path; a `tiny` model is built once into the run dir (atomically)."""
    if exp.model.path is not None:
        check_model_reference(exp.model.path, exp.model.trust_remote_code, "model.path")
        return exp.model.path
    return build_tiny_base(run.root / "base_model", exp.model.tiny, exp.seed, texts)


def _texts(rows: list[dict[str, Any]]) -> list[str]:
    return [row[k] for row in rows for k in ("source", "reference", "prompt") if isinstance(row.get(k), str)]


def stage_rows(plan: StagePlan, train: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    rows = {"cold_start": head(train, n), "rest": rest(train, n), "all": list(train)}[plan.rows]
    if not rows:
        raise UserError(
            f"arms.{plan.arm}: stage {plan.stage} has no rows (sft.examples={n} of {len(train)} "
            "training rows); lower sft.examples or add data"
        )
    return rows


def run_encoder_stage(context: RunContext, test: Rows) -> Path:
    """Train the reward encoder (the paper's step before RL): on encoder.train pairs if given, else on
    the task's own training pairs (source <-> reference), evaluated on the test pairs."""
    exp, run, device, resume = context.exp, context.run, context.device, context.resume
    out_dir = run.root / "encoder"
    if run.status("encoder") == "done":
        return out_dir / "final"
    if exp.encoder.train:
        pairs_train, pairs_test = encoder_pairs(exp, exp.encoder.train)
    else:
        field = TASKS[exp.task.type].input_role
        pairs_train = [{"anchor": r[field], "positive": r["reference"]} for r in context.train]
        pairs_test = [{"anchor": r[field], "positive": r["reference"]} for r in test]
    record_stage(
        run,
        "encoder",
        out_dir,
        lambda: run_encoder(
            StageSettings.from_experiment(exp), exp.encoder, pairs_train, pairs_test, out_dir, device, resume
        ),
    )
    return out_dir / "final"


def encoder_pairs(exp: ExperimentConfig, source: str) -> tuple[Rows, Rows]:
    """The (anchor, positive) pairs of `source` (encoder.train), split as encoder.test/test_size say."""
    spec = exp.encoder
    return load_pairs(source, spec.columns, ("anchor", "positive"), spec.test, spec.test_size, exp.seed)


def record_stage(
    run: Run, key: str, out_dir: Path, train: Callable[[], dict[str, Any]], **started: Any
) -> dict[str, Any]:
    """Mark a stage running, train it, write its metrics.json (rank 0), mark it done with its timing:
    the manifest then tells `--resume` exactly which stages are finished."""
    run.mark(key, status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"), **started)
    start = time.time()
    try:
        metrics = train()
    except (StageStopped, DiskFull) as exc:
        with suppress(DiskFull):  # the manifest may not fit either; the stage then reads as running
            run.mark(key, status="stopped", reason=str(exc))
        raise
    if is_main_process():
        atomic_write_json(out_dir / "metrics.json", metrics)
    run.mark(
        key,
        status="done",
        seconds=round(time.time() - start, 2),
        final_model=metrics["final_model"],
        metrics={k: v for k, v in metrics.items() if k != "final_model"},
    )
    return metrics


def fresh_stage_state(seed: int) -> None:
    """A stage's result depends on its own inputs only, not on what this process trained before:
    seed every RNG (LoRA init happens before the Trainer seeds). Encoders stay loaded (once per
    process) and remember nothing between calls (encoders/distinct.py), so there is nothing else to
    reset. This is what lets identical stages be shared and stages run in any worker, bit for bit."""
    from transformers import set_seed

    set_seed(seed)


def run_plan(context: RunContext, plan: StagePlan) -> None:
    """One arm's stage through the stage cache: trained here unless its folder is already done."""
    init = plan.init_path(context.run.root, context.base)
    train_once(context.run, plan, init, lambda: train_stage_folder(context, plan))


def train_stage_folder(context: RunContext, plan: StagePlan) -> dict[str, Any]:
    """Train `plan`'s stage into its folder and record it as the arm's."""
    exp, run, device, resume = context.exp, context.run, context.device, context.resume
    fresh_stage_state(exp.seed)
    arm = exp.arm(plan.arm)
    init = plan.init_path(run.root, context.base)
    out_dir = run.root / plan.folder
    spec = exp.stage_spec(arm, plan.stage) if arm is not None else getattr(exp, plan.stage)
    n = exp.stage_spec(arm, "sft").examples if arm is not None else exp.sft.examples
    rows = stage_rows(plan, context.train, n)
    examples = build_task_examples(exp.task, load_tokenizer(init, exp.model.trust_remote_code))
    settings = StageSettings.from_experiment(exp)
    if plan.trainer == "sft":
        records = [examples.sft_record(r) for r in rows]
        return record_stage(
            run,
            plan.key,
            out_dir,
            lambda: run_sft(settings, spec, init, records, out_dir, device, resume, plan.key),
            init=init,
            folder=plan.folder,
        )

    reward_config = exp.reward_for(arm)
    if reward_config is None:  # the schema (arms) and `semrl train grpo` refuse a GRPO stage without one
        raise UserError(f"{plan.key}: a GRPO stage needs `rewards:`")
    if uses_run_encoder(exp):
        reward_config = bind_run_encoder(reward_config, run_encoder_folder(run.root))
    dev: list[dict[str, Any]] = []
    if spec.select is not None:  # every checkpoint is a candidate: keep them all
        rows, dev = split_dev(exp, spec.select, rows)
        settings = replace(settings, save_every=settings.save_every or spec.save_steps)
    records = [examples.grpo_record(r, reward_config.columns, plan.with_reference) for r in rows]

    def train_and_select() -> dict[str, Any]:
        trained = finished_training(out_dir) if resume and spec.select is not None else None
        metrics = trained or run_grpo(
            settings, spec, reward_config, init, records, out_dir, device, resume, plan.key
        )
        if spec.select is None:
            return metrics
        return select_checkpoint(
            exp, spec.select, dev, out_dir, metrics, init, run.root, device, resumed=trained is not None
        )

    return record_stage(run, plan.key, out_dir, train_and_select, init=init, folder=plan.folder)


def plan_table(exp: ExperimentConfig, plans: list[StagePlan], train_n: int, test_n: int) -> Table:
    first: dict[str, str] = {}
    for plan in plans:
        first.setdefault(plan.folder, plan.key)
    table = Table(title=f"{exp.name}: {train_n} training rows, {test_n} test rows, seed {exp.seed}")
    for column in ("arm", "stage", "trainer", "starts from", "rows", "settings"):
        table.add_column(column)
    table.add_column("folder", overflow="fold")  # whole, wrapped: the name is what finds the stage
    arms = {arm.name: arm for arm in exp.arms}  # the plans are the arms'
    for plan in plans:
        arm = arms[plan.arm]
        spec = exp.stage_spec(arm, plan.stage)
        n = exp.stage_spec(arm, "sft").examples
        rows = {"cold_start": f"first {n}", "rest": f"after {n}", "all": "all"}[plan.rows]
        if plan.trainer == "grpo":
            rows += "" if plan.with_reference else " (sources only)"
            settings = (
                f"lr {spec.learning_rate:g}, G {spec.num_generations}, beta {spec.beta:g}, {spec.loss_type}"
            )
        else:
            settings = f"lr {spec.learning_rate:g}, {spec.epochs:g} ep, batch {spec.batch_size}"
        folder = plan.folder + ("" if first[plan.folder] == plan.key else f" (= {first[plan.folder]})")
        table.add_row(plan.arm, plan.stage, plan.trainer, plan.init, rows, settings, folder)
    return table


def run_experiment(
    config_path: Path,
    overrides: list[str],
    out: Path | None,
    resume: bool,
    dry_run: bool,
    report: bool = True,
) -> Path:
    """`semrl run`: check the config, train each distinct stage once, evaluate and report; the run's
    folder. `resume` continues a stopped run; `dry_run` only checks and prints the plan."""
    exp = load_experiment(config_path, overrides)
    plans = plan_experiment(exp)
    train, test = preflight(exp)
    run = Run(out or Path(exp.output_dir) / exp.name)
    if dry_run:
        check_run_folder(run.root, resume)  # what the real run would refuse (a real run checks in Run.open)
        Console().print(plan_table(exp, plans, len(train), len(test)))
        if uses_run_encoder(exp):
            Console().print("encoder: trained first (rewards use run:encoder)")
        Console().print(largest_estimate(exp, plans, text_lengths(exp, train)).line(), soft_wrap=True)
        Console().print(
            f"model: {exp.model.path or 'tiny (built on first use)'}; run dir: {run.root}; dry run: nothing "
            "trained"
        )
        return run.root
    device = pick_device(exp.device)
    if is_main_process():  # before the lock makes the folder
        check_run_folder(run.root, resume)
    with run_lock(run.root):
        with main_process_first(device):
            run.open(exp.model_dump(mode="json"), exp.seed, resume, run_data(exp, train, test))
            with disk_guard(run.root / "base_model"):
                base = ensure_base_model(exp, run, _texts(train) + _texts(test))
        console.print(plan_table(exp, plans, len(train), len(test)))
        context = RunContext(exp, run, base, train, device, resume)
        if uses_run_encoder(exp):
            run_encoder_stage(context, test)
        run_stages(context, plans, run_plan)
        run.mark("_run", status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        if is_main_process():  # a card in every final/; evaluation rewrites them with the run's numbers
            write_model_cards(run.root)
        if exp.eval.enabled and is_main_process():
            evaluate_run(run.root)
            if report:  # a caller with its own analysis (the sandbox) builds the one report itself
                build_report(run.root)
    return run.root


def run_data(exp: ExperimentConfig, train: Rows, test: Rows) -> dict[str, DataFile]:
    """data/train.jsonl and data/test.jsonl as the run keeps them, with the files they came from."""
    test_source = exp.data.test or exp.data.train
    return {
        "train.jsonl": DataFile(jsonl_text(train, "data/train.jsonl"), f"data.train {exp.data.train}"),
        "test.jsonl": DataFile(jsonl_text(test, "data/test.jsonl"), f"data.test {test_source}"),
    }


def stage_data(exp: ExperimentConfig, stage: str, train: Rows, test: Rows) -> dict[str, DataFile]:
    """The rows `semrl train STAGE` trains and tests on, kept under data/ as `semrl run` keeps its
    own, so a resume on other rows is refused. The pair stages' files are named by stage: one folder
    may hold the policy's stages and an rm or encoder stage."""
    if stage in ("sft", "grpo"):
        return run_data(exp, train, test)
    source, test_source = (
        (exp.rm.train, exp.rm.test) if stage == "rm" else (exp.encoder.train, exp.encoder.test)
    )
    return {
        f"{stage}-{split}.jsonl": DataFile(
            jsonl_text(rows, f"data/{stage}-{split}.jsonl"), f"{stage}.{split} {path}"
        )
        for split, rows, path in (("train", train, source), ("test", test, test_source or source))
    }


def train_stage(
    stage: str, config_path: Path, overrides: list[str], out: Path | None, init: str | None, resume: bool
) -> Path:
    """One stage on its own: sft/grpo on the task data (as `semrl run` trains a stage), rm on
    preference pairs, encoder on sentence pairs."""
    exp = load_experiment(config_path, overrides)
    run = Run(out or Path(exp.output_dir) / exp.name)
    device = pick_device(exp.device)
    train, test = preflight(exp, load_rows=stage in ("sft", "grpo"), evaluates=False)
    if init is not None:
        check_model_reference(init, exp.model.trust_remote_code, "--init")
    if stage not in ("sft", "grpo", "rm", "encoder"):
        raise UserError(f"unknown stage {stage!r}; choose sft, grpo, rm or encoder")
    if stage == "grpo" and exp.rewards is None:
        raise UserError(f"{config_path}: rewards: the grpo stage needs a reward")
    if stage == "rm":
        if exp.rm.train is None:
            raise UserError(
                f"{config_path}: rm.train: give a preference-pairs file (prompt, chosen, rejected)"
            )
        roles = ("prompt", "chosen", "rejected")
        train, test = load_pairs(exp.rm.train, exp.rm.columns, roles, exp.rm.test, exp.rm.test_size, exp.seed)
    if stage == "encoder":
        if exp.encoder.train is None:
            raise UserError(f"{config_path}: encoder.train: give a pairs file (anchor, positive)")
        train, test = encoder_pairs(exp, exp.encoder.train)
    if is_main_process():  # before the lock makes the folder
        check_run_folder(run.root, resume)
    with run_lock(run.root):
        with main_process_first(device):
            run.open(exp.model_dump(mode="json"), exp.seed, resume, stage_data(exp, stage, train, test))
            if stage == "rm":
                base = (
                    init
                    or exp.rm.model
                    or ensure_base_model(exp, run, _texts(train) + [p["chosen"] for p in train])
                )
            elif stage in ("sft", "grpo"):
                base = init or ensure_base_model(exp, run, _texts(train) + _texts(test))
        out_dir = run.stage_dir("train", stage)
        settings = StageSettings.from_experiment(exp)
        done = run.status(f"train/{stage}") == "done"
        if stage in ("sft", "grpo"):
            run_plan(RunContext(exp, run, base, train, device, resume), plan_single(exp, stage))
            if is_main_process():
                write_model_cards(run.root)
        elif stage == "rm" and not done:
            rm = exp.rm
            record_stage(
                run,
                "train/rm",
                out_dir,
                lambda: run_rm(settings, rm, base, train, test, out_dir, device, resume),
            )
        elif stage == "encoder" and not done:  # from encoder.base or a tiny encoder, never the policy
            spec = exp.encoder
            record_stage(
                run,
                "train/encoder",
                out_dir,
                lambda: run_encoder(settings, spec, train, test, out_dir, device, resume),
            )
    return out_dir
