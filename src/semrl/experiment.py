"""`semrl run` and `semrl train STAGE`: data -> base model -> each arm's stages, into a run dir.

Everything a run needs is validated before the first step (config, every data row, model
paths); finished stages are recorded in the manifest, and `--resume` skips them and continues
the interrupted one from its newest checkpoint. Identical stages of different arms (e.g. the
cold-start SFT) are trained once and linked, and with `parallel` independent stages train in
worker processes at once (see semrl.scheduler).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from semrl.config import ExperimentConfig, load_experiment
from semrl.data.loading import load_table, require_columns
from semrl.data.quality import duplicate_id_problems, repair_text_fields, text_problems
from semrl.data.splits import head, rest, shuffled, split_rows
from semrl.data.tasks import ROLES, build_task_examples, role_rows
from semrl.errors import UserError, problems_error
from semrl.files import atomic_write_json, atomic_write_jsonl
from semrl.preflight import preflight
from semrl.runs import Run, is_main_process, main_process_first
from semrl.train.recipes import StagePlan, plan_experiment

console = Console(stderr=True)
DATA_ROLES = ("source", "reference", "prompt", "id")


def load_task_rows(exp: ExperimentConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) rows renamed to roles, validated, split deterministically by the seed."""
    unknown = [role for role in exp.data.columns if role not in DATA_ROLES]
    if unknown:
        raise UserError(f"data.columns: unknown role {unknown[0]!r}; roles are {', '.join(DATA_ROLES)}")
    needed = {role: exp.data.columns.get(role, role) for role in ROLES[exp.task.type]}

    def load(source: str, field: str) -> list[dict[str, Any]]:
        rows = load_table(source, exp.data.format, exp.data.hf_split, field)
        require_columns(rows, source, needed)
        rows = role_rows(rows, exp.task.type, exp.data.columns)
        fields = list(ROLES[exp.task.type])
        repair_text_fields(rows, source, fields)
        problems = text_problems(rows, fields, exp.data.max_chars) + duplicate_id_problems(rows)
        if problems:
            raise problems_error(source, problems)
        return rows

    train = load(exp.data.train, "data.train")
    if exp.data.test:
        train, test = shuffled(train, exp.seed), load(exp.data.test, "data.test")
    else:
        train, test = split_rows(train, exp.data.test_size, exp.seed)
    if exp.data.few_shot:
        train = train[: exp.data.few_shot]
    if not train:
        raise UserError(f"{exp.data.train}: no training rows left after the test split")
    return train, test


def load_pairs(source: str, columns: dict[str, str], roles: tuple[str, ...], test: str | None, test_size: float,
               seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Pairs files for the rm (prompt, chosen, rejected) and encoder (anchor, positive) stages."""
    unknown = [role for role in columns if role not in roles]
    if unknown:
        raise UserError(f"columns: unknown role {unknown[0]!r}; roles are {', '.join(roles)}")

    def load(path: str) -> list[dict[str, str]]:
        rows = load_table(path)
        required = {role: columns.get(role, role) for role in roles if role != "prompt"}
        require_columns(rows, path, required)
        prompt_column = columns.get("prompt", "prompt")
        out = []
        for row in rows:
            item = {role: row[column] for role, column in required.items()}
            if "prompt" in roles:
                value = row.get(prompt_column, "")
                item["prompt"] = value if isinstance(value, str) else ""
            out.append(item)
        return out

    rows = load(source)
    if test:
        return shuffled(rows, seed), load(test)
    return split_rows(rows, test_size, seed)


def ensure_base_model(exp: ExperimentConfig, run: Run, texts: list[str]) -> str:
    """The base model path; a `tiny` model is built once into the run dir (atomically)."""
    from semrl.train.models import check_model_reference

    if exp.model.path is not None:
        check_model_reference(exp.model.path, exp.model.trust_remote_code)
        return exp.model.path
    return build_tiny_base(run.root / "base_model", exp.model.tiny, exp.seed, texts)


def build_tiny_base(target: Path, spec, seed: int, texts: list[str]) -> str:
    """A `model.tiny` base built once into `target` (written beside it, then renamed into place)."""
    if (target / "config.json").exists():
        return str(target)
    from semrl.files import read_text
    from semrl.models.families import build_tiny_family

    corpus = texts + [read_text(path) for path in spec.corpus]
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_family(getattr(spec, "family", "llama"), tmp, corpus, spec.tiny_spec(seed))
    tmp.rename(target)
    return str(target)


def _texts(rows: list[dict[str, Any]]) -> list[str]:
    return [row[k] for row in rows for k in ("source", "reference", "prompt") if isinstance(row.get(k), str)]


def stage_rows(plan: StagePlan, train: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    rows = {"cold_start": head(train, n), "rest": rest(train, n), "all": list(train)}[plan.rows]
    if not rows:
        raise UserError(f"arms.{plan.arm}: stage {plan.stage} has no rows (sft.examples={n} of {len(train)} "
                        "training rows); lower sft.examples or add data")
    return rows


RUN_ENCODER = "run:encoder"


def uses_run_encoder(exp: ExperimentConfig) -> bool:
    """Does any reward name `encoder: run:encoder` (the encoder this run trains first)?"""
    configs = [exp.rewards] + [arm.rewards for arm in exp.arms]
    return any(
        getattr(spec, "encoder", None) == RUN_ENCODER
        for config in configs if config is not None
        for spec in [*config.rewards, config.gate] if spec is not None
    )


def bind_run_encoder(reward_config, encoder_path: Path):
    """The reward config with `run:encoder` replaced by the folder of the encoder this run trained."""
    def bind(spec):
        if spec is not None and getattr(spec, "encoder", None) == RUN_ENCODER:
            return spec.model_copy(update={"encoder": str(encoder_path)})
        return spec

    return reward_config.model_copy(update={"rewards": [bind(s) for s in reward_config.rewards],
                                            "gate": bind(reward_config.gate)})


def run_encoder_stage(exp: ExperimentConfig, run: Run, train: list[dict[str, Any]], test: list[dict[str, Any]],
                      device: str, resume: bool) -> Path:
    """Train the reward encoder (the paper's step before RL): on encoder.train pairs if given, else on
    the task's own training pairs (source <-> reference), evaluated on the test pairs."""
    from semrl.train.encoder import run_encoder

    out_dir = run.root / "encoder"
    if run.status("encoder") == "done":
        return out_dir / "final"
    if exp.encoder.train:
        pairs_train, pairs_test = load_pairs(exp.encoder.train, exp.encoder.columns, ("anchor", "positive"),
                                             exp.encoder.test, exp.encoder.test_size, exp.seed)
    else:
        field = "source" if exp.task.type != "generic" else "prompt"
        pairs_train = [{"anchor": r[field], "positive": r["reference"]} for r in train]
        pairs_test = [{"anchor": r[field], "positive": r["reference"]} for r in test]
    record_stage(run, "encoder", out_dir,
                 lambda: run_encoder(exp, exp.encoder, pairs_train, pairs_test, out_dir, device, resume))
    return out_dir / "final"


def record_stage(run: Run, key: str, out_dir: Path, train: Callable[[], dict[str, Any]], **started: Any) -> dict[str, Any]:
    """Mark a stage running, train it, write its metrics.json (rank 0), mark it done with its timing:
    the manifest then tells `--resume` exactly which stages are finished."""
    from semrl.train.guard import StageStopped

    run.mark(key, status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"), **started)
    start = time.time()
    try:
        metrics = train()
    except StageStopped as exc:
        run.mark(key, status="stopped", reason=str(exc))
        raise
    if is_main_process():
        atomic_write_json(out_dir / "metrics.json", metrics)
    run.mark(key, status="done", seconds=round(time.time() - start, 2), final_model=metrics["final_model"],
             metrics={k: v for k, v in metrics.items() if k != "final_model"})
    return metrics


def fresh_stage_state(seed: int) -> None:
    """A stage's result depends on its own inputs only, not on what this process trained before:
    seed every RNG (LoRA init happens before the Trainer seeds) and drop the encoders an earlier
    stage's reward loaded (embeddings themselves live for one call: encoders/cache.py). This is
    what lets identical stages be shared and stages run in any worker, bit for bit."""
    from transformers import set_seed

    from semrl.encoders import cache

    set_seed(seed)
    cache._CACHES.clear()


def run_plan(exp: ExperimentConfig, run: Run, plan: StagePlan, base: str, train: list[dict[str, Any]],
             device: str, resume: bool) -> dict[str, Any]:
    from semrl.train.models import load_tokenizer

    fresh_stage_state(exp.seed)
    arm = next((a for a in exp.arms if a.name == plan.arm), None)
    init = base if plan.init == "base" else str(run.stage_dir(plan.arm, plan.init) / "final")
    out_dir = run.stage_dir(plan.arm, plan.stage)
    spec = exp.stage_settings(arm, plan.stage) if arm is not None else getattr(exp, plan.stage)
    n = exp.stage_settings(arm, "sft").examples if arm is not None else exp.sft.examples
    rows = stage_rows(plan, train, n)
    examples = build_task_examples(exp.task, load_tokenizer(init, exp.model.trust_remote_code))
    if plan.trainer == "sft":
        from semrl.train.sft import run_sft

        records = [examples.sft_record(r) for r in rows]
        return record_stage(run, plan.key, out_dir,
                            lambda: run_sft(exp, spec, init, records, out_dir, device, resume, plan.key), init=init)
    from semrl.train.grpo import run_grpo

    reward_config = exp.reward_for(arm)
    if uses_run_encoder(exp):
        reward_config = bind_run_encoder(reward_config, run.root / "encoder" / "final")
    records = [examples.grpo_record(r, reward_config.columns, plan.with_reference) for r in rows]
    return record_stage(run, plan.key, out_dir,
                        lambda: run_grpo(exp, spec, reward_config, init, records, out_dir, device, resume, plan.key),
                        init=init)


def plan_table(exp: ExperimentConfig, plans: list[StagePlan], train_n: int, test_n: int) -> Table:
    from semrl.scheduler import plan_units

    shared = {plan.key: unit.lead.key for unit in plan_units(exp, plans) for plan in unit.plans[1:]}
    table = Table(title=f"{exp.name}: {train_n} training rows, {test_n} test rows, seed {exp.seed}")
    for column in ("arm", "stage", "trainer", "starts from", "rows", "settings", "trained"):
        table.add_column(column)
    for plan in plans:
        arm = next(a for a in exp.arms if a.name == plan.arm)
        spec = exp.stage_settings(arm, plan.stage)
        n = exp.stage_settings(arm, "sft").examples
        rows = {"cold_start": f"first {n}", "rest": f"after {n}", "all": "all"}[plan.rows]
        if plan.trainer == "grpo":
            rows += "" if plan.with_reference else " (sources only)"
            settings = f"lr {spec.learning_rate:g}, G {spec.num_generations}, beta {spec.beta:g}, {spec.loss_type}"
        else:
            settings = f"lr {spec.learning_rate:g}, {spec.epochs:g} ep, batch {spec.batch_size}"
        trained = f"shared: {shared[plan.key]}" if plan.key in shared else ""
        table.add_row(plan.arm, plan.stage, plan.trainer, plan.init, rows, settings, trained)
    return table


def run_experiment(config_path: Path, overrides: list[str], out: Path | None, resume: bool, dry_run: bool) -> Path:
    from semrl.train.common import pick_device

    exp = load_experiment(config_path, overrides)
    plans = plan_experiment(exp)
    train, test = preflight(exp)
    run = Run(out or Path(exp.output_dir) / exp.name)
    if dry_run:
        Console().print(plan_table(exp, plans, len(train), len(test)))
        if uses_run_encoder(exp):
            Console().print("encoder: trained first (rewards use run:encoder)")
        from semrl.memory_estimate import largest_estimate

        Console().print(largest_estimate(exp, plans).line(), soft_wrap=True)
        Console().print(f"model: {exp.model.path or 'tiny (built on first use)'}; run dir: {run.root}; dry run: nothing trained")
        return run.root
    device = pick_device(exp.device)
    with main_process_first(device):
        run.open(exp.model_dump(mode="json"), exp.seed, resume)
        if is_main_process():
            atomic_write_jsonl(run.root / "data" / "train.jsonl", train)
            atomic_write_jsonl(run.root / "data" / "test.jsonl", test)
        base = ensure_base_model(exp, run, _texts(train) + _texts(test))
    console.print(plan_table(exp, plans, len(train), len(test)))
    if uses_run_encoder(exp):
        run_encoder_stage(exp, run, train, test, device, resume)
    from semrl.scheduler import run_stages

    run_stages(exp, run, plans, base, train, device, resume, run_plan)
    run.mark("_run", status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if exp.eval.enabled and is_main_process():
        from semrl.evaluate.runner import evaluate_run
        from semrl.report import build_report

        evaluate_run(run.root)
        build_report(run.root)
    return run.root


def train_stage(stage: str, config_path: Path, overrides: list[str], out: Path | None, init: str | None,
                resume: bool) -> Path:
    """One stage on its own: sft/grpo on the task data, rm on preference pairs, encoder on pairs."""
    from semrl.train.common import pick_device

    exp = load_experiment(config_path, overrides)
    run = Run(out or Path(exp.output_dir) / exp.name)
    device = pick_device(exp.device)
    key = f"train/{stage}"
    train, test = preflight(exp, load_rows=stage in ("sft", "grpo"))
    if init is not None:
        from semrl.train.models import check_model_reference

        check_model_reference(init, exp.model.trust_remote_code)
    if stage in ("sft", "grpo"):
        if stage == "grpo" and exp.rewards is None:
            raise UserError(f"{config_path}: rewards: the grpo stage needs a reward")
        with main_process_first(device):
            run.open(exp.model_dump(mode="json"), exp.seed, resume)
            base = init or ensure_base_model(exp, run, _texts(train) + _texts(test))
        plan = StagePlan("train", stage, stage, "base", "cold_start" if stage == "sft" and exp.sft.examples else "all")
        if run.status(key) != "done":
            run_plan(exp, run, plan, base, train, device, resume)
        return run.stage_dir("train", stage)
    if stage == "rm":
        if exp.rm.train is None:
            raise UserError(f"{config_path}: rm.train: give a preference-pairs file (prompt, chosen, rejected)")
        train, test = load_pairs(exp.rm.train, exp.rm.columns, ("prompt", "chosen", "rejected"), exp.rm.test,
                                 exp.rm.test_size, exp.seed)
        with main_process_first(device):
            run.open(exp.model_dump(mode="json"), exp.seed, resume)
            base = init or exp.rm.model or ensure_base_model(exp, run, _texts(train) + [p["chosen"] for p in train])
        from semrl.train.rm import run_rm

        runner = lambda: run_rm(exp, exp.rm, base, train, test, run.stage_dir("train", "rm"), device, resume)  # noqa: E731
    elif stage == "encoder":
        if exp.encoder.train is None:
            raise UserError(f"{config_path}: encoder.train: give a pairs file (anchor, positive)")
        train, test = load_pairs(exp.encoder.train, exp.encoder.columns, ("anchor", "positive"), exp.encoder.test,
                                 exp.encoder.test_size, exp.seed)
        with main_process_first(device):
            run.open(exp.model_dump(mode="json"), exp.seed, resume)
        from semrl.train.encoder import run_encoder

        runner = lambda: run_encoder(exp, exp.encoder, train, test, run.stage_dir("train", "encoder"), device, resume)  # noqa: E731
    else:
        raise UserError(f"unknown stage {stage!r}; choose sft, grpo, rm or encoder")
    if run.status(key) != "done":
        record_stage(run, key, run.stage_dir("train", stage), runner)
    return run.stage_dir("train", stage)
