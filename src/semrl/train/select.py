"""`grpo.select`: choose a GRPO stage's checkpoint on held-out dev rows, with a metric that is not
the training reward (a checkpoint chosen on the reward is the one that games it best).

After training, every kept checkpoint and the final weights are scored on the dev rows with the
evaluation's decoding (greedy, eval.max_new_tokens) and the chosen metric (higher is better for
every metric `semrl score` knows); the best one, the earlier step on a tie (fewer updates from the
start), becomes the stage's final/, so the next stage, the evaluation, the model card and `semrl
export` all use it unchanged. selection.json in the stage folder records every candidate's score
and the choice; it doubles as a cache, so a run killed during selection resumes without scoring a
candidate twice and without choosing differently. Under several processes the main process scores
and rewrites final/ while the others wait at a barrier.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from semrl.data.task_rows import load_role_rows
from semrl.data.tasks import build_task_examples
from semrl.distributed import is_main_process
from semrl.encoders.loading import DEFAULT_ENCODER, default_encoder_path, resolve_encoder
from semrl.errors import UserError
from semrl.evaluate.generation import generate
from semrl.evaluate.runner import generation_settings, load_model, target_lang
from semrl.evaluate.task import evaluate_task
from semrl.experiment_config import ExperimentConfig, GRPOSpec, SelectSpec
from semrl.files import atomic_write_json, atomic_write_jsonl, publish_folder, read_json
from semrl.hub import require_available
from semrl.models.loading import load_causal_lm, load_tokenizer
from semrl.notices import warn
from semrl.recipes.plan import plan_arm
from semrl.rewards.config import RewardConfig
from semrl.rewards.encoder_binding import RUN_ENCODER, bind_eval_encoder
from semrl.rewards.registry import reward_type
from semrl.text.scripts import resolve_scripts
from semrl.train.common import complete_checkpoints

FILE = "selection.json"
OUTPUTS = "selection"  # step-N.jsonl: each candidate's dev outputs
TRAINER_FILES = ("trainer_state.json", "training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
REWARD_METRIC = (
    "a checkpoint chosen on the training reward's own encoder is the one that games that reward best, "
    "not the best model"
)


# ---- the dev rows ---------------------------------------------------------------------------------


def split_dev(
    exp: ExperimentConfig, select: SelectSpec, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows GRPO trains on, dev rows). `dev: N` holds out N of the stage's rows, drawn with the
    run's seed, and keeps the rest in their order; a file's rows are validated like data files."""
    if isinstance(select.dev, str):
        return rows, load_role_rows(exp, select.dev, "grpo.select.dev", "auto")
    _check_dev_size("grpo.select", select.dev, len(rows))
    held = set(random.Random(exp.seed).sample(range(len(rows)), select.dev))
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


# ---- checks before training (preflight) -----------------------------------------------------------


def _same_encoder(a: str, b: str) -> bool:
    """Do two encoder names load the same model ('default' is a folder, a path may be relative)?"""
    if RUN_ENCODER in (a, b):
        return a == b

    def canonical(name: str) -> str:
        target = default_encoder_path() if name == DEFAULT_ENCODER else name
        return os.path.realpath(target) if Path(target).exists() else target

    return canonical(a) == canonical(b)


def reward_encoders(rewards: RewardConfig | None) -> list[tuple[str, str]]:
    """(component, encoder name) of every reward term (and gate) that embeds with an encoder."""
    found = []
    for index, spec in enumerate(rewards.specs() if rewards is not None else []):
        loaded = reward_type(spec.type).component.loads(spec)
        if loaded is not None and loaded.kind == "encoder":
            found.append((spec.name or f"{spec.type} (rewards.{index})", loaded.name))
    return found


def selection_encoder(exp: ExperimentConfig, select: SelectSpec) -> str:
    return select.encoder or exp.eval.encoder


def check_reward_metric(exp: ExperimentConfig, select: SelectSpec, rewards: RewardConfig | None, where: str):
    """Refuse metric sim with the encoder of one of the stage's own reward terms."""
    if select.metric != "sim" or select.allow_reward_metric:
        return
    encoder = selection_encoder(exp, select)
    for name, reward_encoder in reward_encoders(rewards):
        if _same_encoder(encoder, reward_encoder):
            raise UserError(
                f"{where}: metric sim with encoder {encoder} is the encoder of the stage's reward term "
                f"{name}: {REWARD_METRIC}; choose with chrf, bleu, rougeL, lang or another encoder, or "
                "set allow_reward_metric: true"
            )


def _check_encoder(name: str, field: str) -> None:
    if name in (DEFAULT_ENCODER, RUN_ENCODER):
        return
    target = resolve_encoder(name)
    if not Path(target).exists():
        try:
            require_available(target, "encoder")
        except UserError as exc:
            raise UserError(f"{field}: {exc}") from None


def _check_fsdp_checkpoints(where: str) -> None:
    """FSDP's sharded checkpoints hold no weights a model loads: nothing there to score."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return
    kind = os.environ.get("FSDP_STATE_DICT_TYPE", "SHARDED_STATE_DICT").upper()
    if "FULL_STATE_DICT" not in kind:
        raise UserError(
            f"{where}: checkpoints under FSDP with {kind} are shards, not models that can be scored; set "
            "fsdp_state_dict_type: FULL_STATE_DICT in the accelerate config to select a checkpoint"
        )


def grpo_stages(exp: ExperimentConfig, train_rows: int) -> list[tuple[str, GRPOSpec, Any, int]]:
    """(field, settings, reward, rows) of every GRPO stage the experiment trains: each arm's, else
    the top-level one (`semrl train grpo`)."""
    stages = []
    for arm in exp.arms:
        n = exp.stage_spec(arm, "sft").examples or 0
        for plan in plan_arm(exp, arm):
            if plan.trainer == "grpo":
                rows = {"cold_start": min(n, train_rows), "rest": train_rows - n, "all": train_rows}
                where = f"arms.{arm.name}.grpo.select" if "select" in arm.grpo else "grpo.select"
                stages.append((where, exp.stage_spec(arm, "grpo"), exp.reward_for(arm), rows[plan.rows]))
    return stages or [("grpo.select", exp.grpo, exp.rewards, train_rows)]


def _check_dev_size(where: str, dev: int, rows: int) -> None:
    if dev >= rows:
        raise UserError(
            f"{where}.dev: {dev} rows held out of the stage's {rows} leave none to train on; "
            "hold out fewer or give a dev file"
        )


def select_checks(exp: ExperimentConfig, train_rows: int | None) -> list[Callable[[], Any]]:
    """One check per `select` setting a GRPO stage reads, for preflight to report all problems at once
    (a setting shared by several arms is checked once)."""
    checks: dict[tuple[Any, ...], Callable[[], Any]] = {}
    for where, spec, rewards, rows in grpo_stages(exp, train_rows or 0):
        select = spec.select
        if select is None:
            continue
        if isinstance(select.dev, str):
            checks[("dev", where)] = partial(load_role_rows, exp, select.dev, f"{where}.dev", "auto")
            checks[("not test", where)] = partial(_check_dev_is_not_test, exp, select.dev, where)
        elif train_rows is not None:
            checks[("size", where, rows)] = partial(_check_dev_size, where, select.dev, rows)
        if select.metric == "lang":
            checks[("lang", where)] = partial(_check_lang, exp, where)
        if select.metric == "sim":
            encoder = selection_encoder(exp, select)
            checks[("encoder", where)] = partial(_check_encoder, encoder, f"{where}.encoder")
            checks[("reward", where, id(rewards))] = partial(check_reward_metric, exp, select, rewards, where)
        checks.setdefault(("fsdp",), partial(_check_fsdp_checkpoints, where))
    return list(checks.values())


def _check_dev_is_not_test(exp: ExperimentConfig, dev: str, where: str) -> None:
    """Choosing a checkpoint on the test rows makes its test score the best of several tries, not an
    estimate: the dev rows must be other rows."""
    test = exp.data.test
    if test is None:
        return
    same = dev == test
    if not same and Path(dev).exists() and Path(test).exists():
        same = os.path.samefile(dev, test)
    if same:
        raise UserError(
            f"{where}.dev: {dev} is data.test; a checkpoint chosen on the test rows scores them "
            "optimistically: give other held-out rows (a file, or a number of training rows to hold out)"
        )


def _check_lang(exp: ExperimentConfig, where: str) -> None:
    try:
        resolve_scripts(target_lang(exp))
    except ValueError as exc:
        raise UserError(f"{where}.metric: lang needs the target language's script ({exc})") from None


# ---- after training: score, choose, make the choice final/ -----------------------------------------


def _fingerprint(exp: ExperimentConfig, select: SelectSpec, encoder: str, dev: list[dict[str, Any]]) -> str:
    """What the scores depend on besides the weights: a cache made for other settings is not reused."""
    payload = {
        "metric": select.metric,
        "encoder": encoder if select.metric == "sim" else None,
        # settings left unset (top_k) are left out, so a cache made before they existed still matches
        "decoding": {k: v for k, v in vars(generation_settings(exp)).items() if v is not None},
        "lang": target_lang(exp),
        "threshold": exp.eval.lang_threshold,
        "task": exp.task.model_dump(mode="json"),
        "dev": [[r.get("source", r.get("prompt")), r["reference"]] for r in dev],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def candidates(out_dir: Path, final_step: int, final: str = "final") -> list[tuple[int, str]]:
    """(step, folder name) of every complete checkpoint before the last step, then the last step's
    weights: final/ as training saved it (a plain model), or its checkpoint when final/ may already
    have been replaced by an earlier selection."""
    found = [(step, path.name) for step, path in complete_checkpoints(out_dir) if step < final_step]
    return found + [(final_step, final)]


def finished_training(out_dir: Path) -> dict[str, Any] | None:
    """The stage's training metrics when an earlier attempt finished training and began selecting
    (recorded in selection.json with the last step's checkpoint in place): `--resume` then selects
    without training again. (Resuming the Trainer from its last checkpoint would train one more step.)"""
    path = Path(out_dir) / FILE
    trained = read_json(path).get("trained") if path.is_file() else None
    if not trained:
        return None
    last = dict(complete_checkpoints(Path(out_dir))).get(trained["steps"])
    return trained if last is not None and _scorable(last) else None


def _scorable(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (*WEIGHTS, "adapter_model.safetensors"))


def score_candidate(
    exp: ExperimentConfig,
    select: SelectSpec,
    folder: Path,
    dev: list[dict[str, Any]],
    device: str,
    encoder: str,
) -> tuple[dict[str, Any], list[str]]:
    """The metric on the dev rows (value and 95% interval) and the outputs, decoded as evaluation does."""
    model, tokenizer = load_model(str(folder), exp, device)
    examples = build_task_examples(exp.task, tokenizer)
    hyps = generate(model, tokenizer, [examples.prompt(row) for row in dev], generation_settings(exp))
    del model
    gc.collect()
    metrics, _ = evaluate_task(
        exp.task.type,
        hyps,
        [row["reference"] for row in dev],
        target_lang(exp),
        encoder,
        exp.eval.lang_threshold,
        exp.eval.resamples,
        exp.seed,
        [select.metric],
    )
    return metrics[select.metric], hyps


def choose(scored: list[dict[str, Any]], metric: str) -> tuple[dict[str, Any], str]:
    """The best candidate (highest score; on a tie the earliest step) and why."""
    usable = [c for c in scored if c.get("score") is not None]
    best = max(c["score"] for c in usable)
    tied = [c for c in usable if c["score"] == best]
    chosen = min(tied, key=lambda c: c["step"])
    reason = f"highest dev {metric} ({best:.4g}) of {len(usable)} candidates"
    if len(tied) > 1:
        steps = ", ".join(str(c["step"]) for c in sorted(tied, key=lambda c: c["step"]))
        reason += f"; tied at steps {steps}: the earliest (fewest updates from the start) is kept"
    return chosen, reason


def materialize(checkpoint: Path, final: Path, exp: ExperimentConfig, init: str, device: str) -> None:
    """Make `checkpoint` the stage's final/: a plain model and tokenizer, written beside final/ and
    renamed into place. Full weights are copied byte for byte; a LoRA checkpoint is merged into its
    base, as save_final merges the last step's adapter."""
    with publish_folder(final, "final.select.tmp") as tmp:
        if (checkpoint / "adapter_config.json").is_file() and not any(
            (checkpoint / n).is_file() for n in WEIGHTS
        ):
            from peft import PeftModel

            base = load_causal_lm(
                init, exp.model.dtype, "cpu", exp.model.trust_remote_code, exp.model.attn_implementation
            )
            merged = PeftModel.from_pretrained(base, str(checkpoint)).merge_and_unload()
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer = checkpoint if (checkpoint / "tokenizer_config.json").is_file() else Path(init)
            load_tokenizer(str(tokenizer), exp.model.trust_remote_code).save_pretrained(tmp)
        else:
            for path in sorted(checkpoint.iterdir()):
                if (
                    path.is_file()
                    and path.name not in TRAINER_FILES
                    and not path.name.startswith("rng_state")
                ):
                    shutil.copy2(path, tmp / path.name)
            for path in sorted(final.iterdir()) if final.is_dir() else []:  # what a checkpoint may lack
                weights = path.name in WEIGHTS or path.name.startswith("model-")
                if path.is_file() and not weights and not (tmp / path.name).exists():
                    shutil.copy2(path, tmp / path.name)


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def select_checkpoint(
    exp: ExperimentConfig,
    select: SelectSpec,
    dev: list[dict[str, Any]],
    out_dir: Path,
    trained: dict[str, Any],
    init: str,
    run_root: Path,
    device: str,
    resumed: bool = False,
) -> dict[str, Any]:
    """Score the candidates (main process), make the chosen one final/, and return the stage's
    metrics with the choice, the same on every process; the others wait until final/ is in place.
    `trained`: run_grpo's metrics; `resumed`: they come from selection.json (finished_training)."""
    if is_main_process():
        _select(exp, select, dev, Path(out_dir), trained, init, run_root, device, resumed)
    _barrier()
    return {**trained, "selection": summary(read_json(Path(out_dir) / FILE))}


def _select(
    exp: ExperimentConfig,
    select: SelectSpec,
    dev: list[dict[str, Any]],
    out_dir: Path,
    trained: dict[str, Any],
    init: str,
    run_root: Path,
    device: str,
    resumed: bool,
) -> None:
    gc.collect()  # the trainer's model, now unreferenced, before a candidate's is loaded
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
    encoder = bind_eval_encoder(selection_encoder(exp, select), run_root) or DEFAULT_ENCODER
    key = _fingerprint(exp, select, encoder, dev)
    path = out_dir / FILE
    cached = read_json(path) if path.is_file() else {}
    scores = {c["step"]: c for c in cached.get("candidates", [])} if cached.get("key") == key else {}
    final_step = trained["steps"]
    record: dict[str, Any] = {
        "key": key,
        "metric": select.metric,
        "encoder": selection_encoder(exp, select) if select.metric == "sim" else None,
        "dev": {
            "rows": len(dev),
            "file": select.dev if isinstance(select.dev, str) else None,
            "held_out": select.dev if isinstance(select.dev, int) else None,
            "seed": exp.seed,
        },
        "final_step": final_step,
        "candidates": [],
        "trained": trained,
    }
    atomic_write_json(path, {**cached, "trained": trained})  # from now on, --resume does not train again
    atomic_write_jsonl(out_dir / "dev.jsonl", [{k: v for k, v in r.items() if k != "__line__"} for r in dev])
    last = f"checkpoint-{final_step}" if resumed else "final"
    for step, name in candidates(out_dir, final_step, last):
        folder = out_dir / name
        entry = scores.get(step)
        if entry is None:
            if not _scorable(folder):
                warn(f"grpo.select: {folder} holds no model weights (a sharded checkpoint); not a candidate")
                entry = {"step": step, "path": name, "score": None, "skipped": "no model weights"}
            else:
                result, hyps = score_candidate(exp, select, folder, dev, device, encoder)
                outputs = out_dir / OUTPUTS / f"step-{step}.jsonl"
                atomic_write_jsonl(outputs, [{"hypothesis": h} for h in hyps])
                entry = {"step": step, "path": name, "score": result["value"], "ci95": result["ci95"]}
                entry["signature"] = result.get("signature")
        record["candidates"].append(entry)
        atomic_write_json(path, record)  # the cache: a kill loses one candidate's scoring at most
    chosen, reason = choose(record["candidates"], select.metric)
    name = "final" if chosen["step"] == final_step else f"checkpoint-{chosen['step']}"
    if resumed or name != "final":  # final/ holds the last step's weights only when just trained
        materialize(out_dir / f"checkpoint-{chosen['step']}", out_dir / "final", exp, init, device)
    record.update(chosen_step=chosen["step"], chosen=name, score=chosen["score"], reason=reason)
    atomic_write_json(path, record)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What metrics.json, the manifest, the report and the model card say about the choice."""
    return {
        "metric": record["metric"],
        "encoder": record.get("encoder"),
        "dev": record["dev"],
        "chosen_step": record["chosen_step"],
        "final_step": record["final_step"],
        "score": record["score"],
        "reason": record["reason"],
        "candidates": [{"step": c["step"], "score": c.get("score")} for c in record["candidates"]],
    }


def describe(selection: dict[str, Any]) -> str:
    """One sentence for the model card and the report."""
    step, last = selection["chosen_step"], selection["final_step"]
    which = "the last step's weights" if step == last else f"the checkpoint of step {step} of {last}"
    dev = selection["dev"]
    rows = (
        f"`{Path(dev['file']).name}` ({dev['rows']} rows)"
        if dev.get("file")
        else f"{dev['rows']} of the stage's rows held out (seed {dev['seed']}), not trained on"
    )
    encoder = f" with encoder {Path(selection['encoder']).name}" if selection.get("encoder") else ""
    return f"{which}, chosen on {rows} by dev {selection['metric']}{encoder}: {selection['reason']}"
