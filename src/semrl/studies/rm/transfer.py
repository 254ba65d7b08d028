"""`semrl rm transfer`: one reward model per training language, every RM judged on every evaluation
language, and how far each RM's representations moved from the base (Hong et al., 2024).

Order of work: validate every file and path, build the pairs per language (held-out split, machine
translations), build the tiny base if asked, train the RMs that are not given (each into its own
folder; a finished one is reused on a rerun), score every eval pair with every RM, measure
representations, then write rm_transfer.json, scores.jsonl, figures, summary.md and report.html.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from semrl.checks.models import check_policy, check_scorer, model_config
from semrl.data.preferences import by_language, load_preferences, translate_pairs
from semrl.data.splits import split_rows
from semrl.devices import pick_device
from semrl.errors import UserError
from semrl.files import atomic_write_json, atomic_write_jsonl, check_output_folder, read_json
from semrl.models.families import build_tiny_base
from semrl.models.loading import check_model_reference, load_scorer, score_texts
from semrl.studies.rm.config import RMTransferConfig, load_transfer_config
from semrl.studies.rm.figures import heatmap_figure, representation_figure
from semrl.studies.rm.matrix import correct, reference_vs_native, transfer_matrix
from semrl.studies.rm.report import write_report
from semrl.studies.rm.representation import describe, last_token_states, shift_table
from semrl.studies.rm.translator import model_translator
from semrl.train.rm import run_rm
from semrl.train.settings import StageSettings
from semrl.weights import check_weights

KEEP = ("prompt", "chosen", "rejected")
MIN_TRAIN_PAIRS = 2  # pairs a reward model is trained on, at least


def gather_pairs(
    cfg: RMTransferConfig,
) -> tuple[dict[str, list[dict]], dict[str, list[dict]], dict[str, list[str]]]:
    """(train, eval) pairs per language from every file, before any translation, and the files each
    language's training pairs come from. A language of a `split: both` file must keep a pair to
    judge with: one with none would drop out of the matrix."""
    train: dict[str, list[dict]] = {}
    evaluate: dict[str, list[dict]] = {}
    files: dict[str, list[str]] = {}
    for source in cfg.data.files:
        pairs = load_preferences(
            source.path, cfg.data.columns, source.language, cfg.data.format, cfg.data.hf_split
        )
        for lang, group in by_language(pairs).items():
            if source.split == "train":
                part_train, part_eval = group, []
            elif source.split == "eval":
                part_train, part_eval = [], group
            else:
                part_train, part_eval = split_rows(group, cfg.data.test_size, cfg.seed)
                if not part_eval:
                    raise UserError(
                        f"{source.path}: language {lang!r} has {len(group)} pair(s) and none is held out "
                        f"to judge with (data.test_size {cfg.data.test_size:g}); "
                        f"{_both_minimum(cfg.data.test_size)}, or mark the file split: train"
                    )
            train.setdefault(lang, []).extend(part_train)
            evaluate.setdefault(lang, []).extend(part_eval)
            if part_train:
                files.setdefault(lang, []).append(str(source.path))
    return {k: v for k, v in train.items() if v}, {k: v for k, v in evaluate.items() if v}, files


def _both_minimum(test_size: float) -> str:
    """The fewest pairs a `split: both` language needs under `test_size` (as split_rows splits)."""
    for n in range(1, 10_000):
        held = int(round(test_size * n)) if test_size < 1 else int(test_size)
        held = min(held, n - 1)
        if held >= 1 and n - held >= MIN_TRAIN_PAIRS:
            return f"give it at least {n} pairs ({n - held} to train a reward model, {held} held out)"
    return "raise data.test_size so that a pair is held out"


def check_training_pairs(
    cfg: RMTransferConfig, train: dict[str, list[dict]], files: dict[str, list[str]], langs: list[str]
) -> None:
    """Every reward model trained here gets at least MIN_TRAIN_PAIRS pairs: one pair teaches a score
    head nothing about the language, yet its row would sit in the matrix like the others."""
    translated = {spec.target for spec in cfg.data.translate}
    for lang in langs:
        if lang in cfg.reward_models or lang in translated:
            continue
        n = len(train.get(lang, []))
        if n < MIN_TRAIN_PAIRS:
            where = ", ".join(files.get(lang, [])) or "data.files"
            raise UserError(
                f"{where}: language {lang!r} has {n} training pair(s); a reward model needs at least "
                f"{MIN_TRAIN_PAIRS} (add pairs, or leave {lang!r} out of train_languages)"
            )


def plan_languages(
    cfg: RMTransferConfig, train: dict[str, list], evaluate: dict[str, list]
) -> tuple[list[str], list[str], str]:
    targets = [t.target for t in cfg.data.translate]
    for spec in cfg.data.translate:
        if spec.source not in train:
            raise UserError(
                f"data.translate: no training pairs in {spec.source!r} to translate "
                f"(languages with training pairs: {', '.join(train) or 'none'})"
            )
        if spec.target in train:
            raise UserError(
                f"data.translate: {spec.target!r} already has training pairs; name the translated "
                f"copy differently (e.g. {spec.target}-mt)"
            )
    available = list(dict.fromkeys([*train, *targets, *cfg.reward_models]))
    train_langs = cfg.train_languages or available
    missing = [lang for lang in train_langs if lang not in available]
    if missing:
        raise UserError(
            f"train_languages: no training pairs or reward_models entry for {', '.join(missing)} "
            f"(have: {', '.join(available) or 'none'})"
        )
    eval_langs = cfg.eval_languages or list(evaluate)
    missing = [lang for lang in eval_langs if lang not in evaluate]
    if missing or not eval_langs:
        raise UserError(
            f"eval_languages: no evaluation pairs for {', '.join(missing) or 'any language'} "
            f"(have: {', '.join(evaluate) or 'none'}; check data.files[].split and data.test_size)"
        )
    reference = cfg.reference_language or ("en" if "en" in train_langs else train_langs[0])
    if reference not in train_langs:
        raise UserError(
            f"reference_language: {reference!r} is not one of the training languages "
            f"({', '.join(train_langs)})"
        )
    return train_langs, eval_langs, reference


def check_paths(cfg: RMTransferConfig) -> None:
    """Every model the study loads, whole and of the right kind, before the first RM trains."""
    if cfg.model.path:
        check_model_reference(cfg.model.path, cfg.model.trust_remote_code, "model.path")
    for lang, path in cfg.reward_models.items():
        if not (Path(path) / "config.json").exists():
            raise UserError(f"reward_models.{lang}: {path} is not a model folder (no config.json)")
        check_weights(path, f"reward_models.{lang}")
        check_scorer(path, f"reward_models.{lang}")
    for i, spec in enumerate(cfg.data.translate):
        check_model_reference(spec.model, cfg.model.trust_remote_code, f"data.translate.{i}.model")
        check_policy(spec.model, f"data.translate.{i}.model")
    if cfg.representation.enabled:
        check_layer(cfg)


def check_layer(cfg: RMTransferConfig) -> None:
    """representation.layer indexes the hidden states (layers + 1) of the base and of every RM."""
    layer = cfg.representation.layer
    models = {"model.tiny": cfg.model.tiny.num_layers} if cfg.model.tiny is not None else {}
    for field, path in [
        ("model.path", cfg.model.path),
        *((f"reward_models.{lang}", path) for lang, path in cfg.reward_models.items()),
    ]:
        config = model_config(path) if path else None
        if config is not None and isinstance(config.get("num_hidden_layers"), int):
            models[field] = config["num_hidden_layers"]
    for field, layers in models.items():
        if not -(layers + 1) <= layer < layers + 1:
            raise UserError(
                f"representation.layer: {layer} is out of range for {field} ({layers} layers: "
                f"{layers + 1} hidden states, -{layers + 1} to {layers})"
            )


def base_model(cfg: RMTransferConfig, out: Path, texts: list[str]) -> str:
    if cfg.model.path:
        return cfg.model.path

    return build_tiny_base(out / "base_model", cfg.model.tiny, cfg.seed, texts)


def stage_spec(cfg: RMTransferConfig) -> StageSettings:
    """What run_rm needs besides its spec (seed, dtype, logging), from this config."""
    return StageSettings(
        seed=cfg.seed,
        report_to=cfg.report_to,
        dtype=cfg.model.dtype,
        trust_remote_code=cfg.model.trust_remote_code,
    )


def train_reward_models(
    cfg: RMTransferConfig,
    out: Path,
    base: str,
    train: dict[str, list],
    evaluate: dict[str, list],
    langs: list[str],
    device: str,
    resume: bool,
) -> dict[str, dict[str, Any]]:
    settings = stage_spec(cfg)
    models: dict[str, dict[str, Any]] = {}
    for lang in langs:
        if lang in cfg.reward_models:
            models[lang] = {"path": cfg.reward_models[lang], "trained": False}
            continue
        stage = out / f"rm-{lang}"
        done = stage / "metrics.json"
        if done.exists():
            models[lang] = read_json(done)
            continue
        pairs = [{k: p[k] for k in KEEP} for p in train[lang]]
        held_out = [{k: p[k] for k in KEEP} for p in evaluate.get(lang, [])]
        metrics = run_rm(
            settings, cfg.rm, base, pairs, held_out, stage, device, resume=resume, label=f"rm ({lang})"
        )
        models[lang] = {
            "path": metrics.pop("final_model"),
            "trained": True,
            "train_pairs": len(pairs),
            "translated": any("translated_from" in p for p in train[lang]),
            **metrics,
        }
        atomic_write_json(done, models[lang])
    return models


def load_rm(path: str, cfg: RMTransferConfig, device: str):
    """(model, tokenizer) of a reward model (or the base, read as one) on `device`."""
    return load_scorer(path, device, cfg.model.dtype, cfg.model.trust_remote_code)


def score_pairs(
    model, tokenizer, pairs: list[dict], cfg: RMTransferConfig
) -> tuple[list[float], list[float]]:
    chosen = score_texts(
        model, tokenizer, [p["prompt"] + p["chosen"] for p in pairs], max_length=cfg.rm.max_length
    )
    rejected = score_texts(
        model, tokenizer, [p["prompt"] + p["rejected"] for p in pairs], max_length=cfg.rm.max_length
    )
    return chosen, rejected


def represent(
    cfg: RMTransferConfig, models: dict[str, str], evaluate: dict[str, list], langs: list[str], device: str
) -> dict[str, Any]:
    spec = cfg.representation
    described: dict[str, dict[str, Any]] = {}
    for name, path in models.items():
        model, tokenizer = load_rm(path, cfg, device)
        for lang in langs:
            texts = [p["prompt"] + p["chosen"] for p in evaluate[lang][: spec.max_inputs]]
            try:
                states = last_token_states(model, tokenizer, texts, spec.layer, max_length=cfg.rm.max_length)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            described.setdefault(name, {})[lang] = describe(states)
    return {
        "layer": spec.layer,
        "inputs": "prompt + chosen of eval pairs, last token",
        "models": described,
        "shift": shift_table(described),
    }


def run_rm_transfer(
    config: Path, out: Path, overrides: list[str] | None = None, resume: bool = False
) -> dict[str, Any]:
    """`semrl rm transfer`: reward models trained on some languages' preferences, judged on others."""
    start = time.time()
    check_output_folder(out, "--out")
    cfg = load_transfer_config(config, overrides)
    train, evaluate, files = gather_pairs(cfg)
    train_langs, eval_langs, reference = plan_languages(cfg, train, evaluate)
    check_training_pairs(cfg, train, files, train_langs)
    check_paths(cfg)
    device = pick_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)
    texts = [p[k] for group in (*train.values(), *evaluate.values()) for p in group for k in KEEP if p[k]]
    base = base_model(cfg, out, texts)
    for spec in cfg.data.translate:
        finished = (out / f"rm-{spec.target}" / "metrics.json").exists()
        if spec.target in train_langs and spec.target not in cfg.reward_models and not finished:
            template = spec.template.replace("{target}", spec.target)
            translator = model_translator(
                spec.model, template, spec.max_new_tokens, device, cfg.model.trust_remote_code
            )
            train[spec.target] = translate_pairs(train[spec.source], translator, spec.target)
            atomic_write_jsonl(out / f"translated-{spec.target}.jsonl", train[spec.target])
    trained = train_reward_models(cfg, out, base, train, evaluate, train_langs, device, resume)

    hits: dict[str, dict[str, list[float]]] = {}
    score_rows = []
    for train_lang in train_langs:
        model, tokenizer = load_rm(trained[train_lang]["path"], cfg, device)  # once per RM, not per language
        for lang in eval_langs:
            pairs = evaluate[lang]
            chosen, rejected = score_pairs(model, tokenizer, pairs, cfg)
            hits.setdefault(train_lang, {})[lang] = correct(chosen, rejected)
            score_rows += [
                {
                    "rm": train_lang,
                    "language": lang,
                    "category": p["category"],
                    "line": p["__line__"],
                    "chosen_score": c,
                    "rejected_score": r,
                }
                for p, c, r in zip(pairs, chosen, rejected, strict=True)
            ]
    cats = {lang: [p["category"] for p in evaluate[lang]] for lang in eval_langs}
    result: dict[str, Any] = {
        "name": cfg.name,
        "seed": cfg.seed,
        "base_model": base,
        "languages": {"train": train_langs, "eval": eval_langs, "reference": reference},
        "pairs": {
            lang: {"train": len(train.get(lang, [])), "eval": len(evaluate.get(lang, []))}
            for lang in dict.fromkeys([*train_langs, *eval_langs])
        },
        "reward_models": trained,
        "matrix": transfer_matrix(hits, cats, cfg.resamples, cfg.seed),
        "reference_vs_native": reference_vs_native(hits, reference, cfg.resamples, cfg.seed),
    }
    figures = [heatmap_figure(result["matrix"], out / "figures" / "rm_transfer_heatmap.png")]
    if cfg.representation.enabled:
        models = {"base": base, **{f"rm-{lang}": trained[lang]["path"] for lang in train_langs}}
        result["representation"] = represent(cfg, models, evaluate, eval_langs, device)
        figures.append(
            representation_figure(
                result["representation"]["models"], out / "figures" / "representation_shift.png"
            )
        )
    result["figures"] = [str(f.relative_to(out)) for f in figures]
    result["seconds"] = round(time.time() - start, 1)
    atomic_write_jsonl(out / "scores.jsonl", score_rows)
    atomic_write_json(out / "rm_transfer.json", result)
    write_report(out, result, figures)
    return result
