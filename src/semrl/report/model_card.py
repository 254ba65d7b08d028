"""A Hugging Face model card in every trained stage's `final/`, so the folder a user uploads
says what it is: the base, the recipe, the reward, the data, the run's numbers and the paper.

TRL writes its own card beside `final/` (not in it), naming the base as "None"; that card is
removed. Cards are written when training ends and rewritten after evaluation (by
`semrl eval`/`semrl run`), so the numbers are the run's own, read from eval/<arm>.json (the files
results.json collects). Metadata goes through huggingface_hub's `ModelCardData`, which checks it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from semrl.experiment_config import ArmSpec, ExperimentConfig, load_experiment
from semrl.files import atomic_write_text, read_json
from semrl.models.gguf import DONE_MARKER
from semrl.recipes.plan import StagePlan, plan_arm, plan_single
from semrl.report.model_card_body import card_body, encoder_card_body
from semrl.tasks import TASKS

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_CACHE = re.compile(r"models--([\w.-]+)--([\w.-]+)/snapshots/")
CONVERTED = {"SmolLM2-135M-Instruct.Q4_1.gguf": "HuggingFaceTB/SmolLM2-135M-Instruct"}  # models/gguf.py
DATA_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
FOREIGN_CARD = (
    "generated_from_trainer",
    "This model is a fine-tuned version of",
    "[More Information Needed]",
    "This is a [sentence-transformers](https://www.SBERT.net) model",
)
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"  # what encoder "default" packages


def hub_id_of(reference: str | None) -> str | None:
    """The hub id a model or data reference names: the id itself, a hub-cache snapshot folder's
    repo, or the checkpoint a semrl-converted folder came from; None for a plain local path."""
    if not reference:
        return None
    path = Path(reference)
    if not path.exists():
        return reference if HUB_ID.match(reference) else None
    cached = HUB_CACHE.search(str(path.resolve()).replace("\\", "/") + "/")
    if cached:
        return f"{cached.group(1)}/{cached.group(2)}"
    marker = path / DONE_MARKER
    if marker.is_file():
        source = read_json(marker).get("source", "")
        return CONVERTED.get(source)
    return None


def dataset_id_of(reference: str | None, fmt: str = "auto") -> str | None:
    """The hub dataset a data reference names, as the loader decides it (data/loading.py): a
    file extension it reads means a local file, even when the file is not on this machine."""
    if not reference or (fmt != "hf" and Path(reference).suffix.lower() in DATA_FILE_SUFFIXES):
        return None
    return hub_id_of(reference)


def _languages(exp: ExperimentConfig) -> list[str]:
    codes = [exp.task.source_lang, exp.task.target_lang]
    return list(dict.fromkeys(code.split("-")[0].lower() for code in codes if code))


def _eval_results(exp: ExperimentConfig, result: dict[str, Any], model_name: str):
    """model-index entries: the task metrics semrl measured on the run's test split."""
    from huggingface_hub import EvalResult

    data = dataset_id_of(exp.data.test or exp.data.train, exp.data.format)
    name = Path(exp.data.test or exp.data.train).name
    return [
        EvalResult(
            task_type=TASKS[exp.task.type].hub_task,
            dataset_type=data or "json",
            dataset_name=f"{name} ({'test file' if exp.data.test else 'held-out split'})",
            dataset_split="test",
            metric_type=metric,
            metric_name=metric,
            metric_value=round(float(entry["value"]), 6),
            metric_config=public_signature(entry.get("signature")),
            verified=False,
        )
        for metric, entry in result.get("task", {}).items()
        if entry.get("value") is not None
    ]


def public_signature(signature: str | None) -> str | None:
    """A metric signature without this machine's paths (`resolved:/home/...` of a local encoder)."""
    if not signature:
        return None
    return "|".join(part for part in signature.split("|") if not part.startswith("resolved:"))


def base_reference(
    run_root: Path, exp: ExperimentConfig, manifest: dict[str, Any], plans: list[StagePlan]
) -> str | None:
    """What the arm's first stage started from: the experiment's model, or the model `semrl train
    --init` named; None for the tiny model semrl built into the run."""
    init = manifest.get("stages", {}).get(plans[0].key, {}).get("init")
    if init is None or Path(init) == Path(run_root) / "base_model":
        return exp.model.path
    return init


def card_data(
    exp: ExperimentConfig,
    plans: list[StagePlan],
    plan: StagePlan,
    result: dict[str, Any] | None,
    base: str | None = None,
):
    """The card's metadata (ModelCardData validates it as it is built). library_name is always
    transformers: final/ holds the merged model, LoRA or not, so it loads without its base."""
    from huggingface_hub import ModelCardData

    trainers = [p.trainer for p in plans[: plans.index(plan) + 1]]
    base = hub_id_of(base if base is not None else exp.model.path)
    datasets = [
        d
        for d in (
            dataset_id_of(exp.data.train, exp.data.format),
            dataset_id_of(exp.data.test, exp.data.format),
        )
        if d
    ]
    model_name = f"{exp.name}-{plan.arm}"
    tags = ["semrl", *dict.fromkeys(trainers), "trl", *(["lora"] if exp.model.lora else []), *_languages(exp)]
    return ModelCardData(
        base_model=base,
        library_name="transformers",
        pipeline_tag="text-generation",
        language=_languages(exp) or None,
        tags=tags,
        datasets=datasets or None,
        model_name=model_name if result else None,
        eval_results=_eval_results(exp, result, model_name) if result else None,
    )


def render_card(
    run_root: Path,
    exp: ExperimentConfig,
    manifest: dict[str, Any],
    arm,
    plans: list[StagePlan],
    plan: StagePlan,
    result: dict[str, Any] | None,
) -> str:
    """The card text of one stage's final model (`plans`: the arm's stages); `result` is the arm's
    evaluation when this stage is the arm's last (the model semrl evaluated), else None."""
    from huggingface_hub import ModelCard

    base = base_reference(run_root, exp, manifest, plans)
    data = card_data(exp, plans, plan, result, base)
    body = card_body(run_root, exp, manifest, arm, plans, plan, result, base, hub_id_of(base))
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    return str(card)


def render_encoder_card(run_root: Path, exp: ExperimentConfig, manifest: dict[str, Any]) -> str:
    """The card of the reward encoder a run trains first (sentence-transformers' own card lists
    training rows as widget examples and its unset arguments as None)."""
    from huggingface_hub import ModelCard, ModelCardData

    spec = exp.encoder
    base = DEFAULT_ENCODER if spec.base == "default" else hub_id_of(spec.base)
    datasets = [d for d in (dataset_id_of(spec.train), dataset_id_of(spec.test)) if d]
    data = ModelCardData(
        base_model=base,
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        language=_languages(exp) or None,
        tags=["semrl", "sentence-transformers", *_languages(exp)],
        datasets=datasets or None,
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{encoder_card_body(exp, manifest, base)}")
    return str(card)


def _arm_result(run_root: Path, arm_name: str) -> dict[str, Any] | None:
    path = run_root / "eval" / f"{arm_name}.json"
    return read_json(path) if path.is_file() else None


def remove_foreign_cards(stage_dir: Path) -> None:
    """TRL's card beside final/ (base "None", a quick start about a time machine) and PEFT's
    template cards in checkpoints: a user uploading any of these folders would publish them."""
    for card in [stage_dir / "README.md", *stage_dir.glob("checkpoint-*/README.md")]:
        if card.is_file() and any(
            mark in card.read_text(encoding="utf-8", errors="replace") for mark in FOREIGN_CARD
        ):
            card.unlink()


def write_model_cards(run_root: str | Path) -> list[Path]:
    """final/README.md for every finished stage of every arm; the cards written. A stage two arms
    share lives in one folder and gets one card: the one of an arm that ends there (and was
    evaluated) when there is one, else the first arm's."""
    run_root = Path(run_root)
    exp = load_experiment(run_root / "config.yaml")
    manifest = read_json(run_root / "manifest.json")
    stages = manifest.get("stages", {})
    chosen: dict[Path, tuple[Any, list[StagePlan], StagePlan, dict[str, Any] | None]] = {}
    arms = [(arm, plan_arm(exp, arm)) for arm in exp.arms]
    arms += [  # `semrl train sft|grpo` stages live in train/<stage>
        (ArmSpec(name="train", recipe=stage), [plan_single(exp, stage)])
        for stage in ("sft", "grpo")
        if f"train/{stage}" in stages
    ]
    for arm, plans in arms:
        result = _arm_result(run_root, arm.name)
        for plan in plans:
            folder = run_root / stages.get(plan.key, {}).get("folder", plan.folder)
            if stages.get(plan.key, {}).get("status") != "done" or not (folder / "final").is_dir():
                continue
            evaluated = result if plan == plans[-1] else None
            if folder not in chosen or (evaluated is not None and chosen[folder][3] is None):
                chosen[folder] = (arm, plans, plan, evaluated)
    written: list[Path] = []
    encoder = run_root / "encoder"
    if stages.get("encoder", {}).get("status") == "done" and (encoder / "final").is_dir():
        for folder in (encoder, encoder / "init", *encoder.glob("checkpoint-*")):
            remove_foreign_cards(folder)
        atomic_write_text(encoder / "final" / "README.md", render_encoder_card(run_root, exp, manifest))
        written.append(encoder / "final" / "README.md")
    for folder, (arm, plans, plan, result) in chosen.items():
        remove_foreign_cards(folder)
        card = folder / "final" / "README.md"
        atomic_write_text(card, render_card(run_root, exp, manifest, arm, plans, plan, result))
        written.append(card)
    return written


def card_metadata(card_path: str | Path) -> dict[str, Any]:
    """A card's metadata as the hub reads it (huggingface_hub's parser)."""
    from huggingface_hub import ModelCard

    return ModelCard.load(card_path).data.to_dict()


__all__ = [
    "card_data",
    "card_metadata",
    "dataset_id_of",
    "hub_id_of",
    "remove_foreign_cards",
    "render_card",
    "write_model_cards",
]
