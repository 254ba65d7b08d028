"""`semrl demo`: the paper's experiment in the sandbox world, with the real recipes and trainers.

world (cached) -> base model pretrained on H plus a little bilingual text (cached), and its own
translation ability -> a language-agnostic reward encoder (cached), its audit and code-mixing
property -> the arms on H -> L translation (cold start, strong SFT and GRPO on each reward variant at
learning rates fixed in advance, an SFT-continue control, the reward ablations), each evaluated with
the general suite and checkpoint curves, then judged by the oracle; each method's point chosen on dev
over its arms and checkpoints; a ceiling arm on unbiased data -> few-shot headline transfer from the
chosen RL and SFT points -> reward-model transfer -> claims, each reproduced / not reproduced / not
testable, read on test from the chosen points.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from semrl.api import (
    EncoderSpec,
    StageSettings,
    atomic_write_json,
    atomic_write_text,
    check_output_folder,
    gather_results,
    load_config,
    publish_folder,
    read_json,
    run_encoder,
    run_experiment,
    split_rows,
)
from semrl.sandbox.claims import judge_claims, output_segments
from semrl.sandbox.config import DemoConfig, spec_hash
from semrl.sandbox.evidence import (
    audit_encoder,
    headline_oracle,
    learning_evidence,
    oracle_preference,
    read_rows,
)
from semrl.sandbox.measures import (
    base_translation,
    chance_adequacy,
    load_world,
    mix_property,
    oracle_scores,
    strip_items,
    test_meanings,
)
from semrl.sandbox.pretrain import competence, pretrain_base
from semrl.sandbox.protocol import (
    arm_name,
    monitors_against_oracle,
    points_on_test,
    select_points,
    stall_metrics,
    tau_values,
    tradeoffs,
)
from semrl.sandbox.report import build_demo_report
from semrl.sandbox.rm_claim import c6_claim
from semrl.sandbox.seeds import aggregate_seeds, seed_configs
from semrl.sandbox.side_experiments import headline_transfer, reward_model_transfer
from semrl.sandbox.variants import VARIANTS, rl_prefixes, variant_contrast
from semrl.sandbox.world import write_world

console = Console(stderr=True)


def cache_root() -> Path:
    return Path(os.environ.get("SEMRL_CACHE", Path.home() / ".cache" / "semrl")) / "sandbox"


def prepare_world(config: DemoConfig) -> Path:
    target = cache_root() / f"world-{spec_hash(config.world)}"
    if not (target / "world.json").exists():
        with publish_folder(target) as tmp:
            write_world(config.world, tmp)
    return target


def prepare_base(config: DemoConfig, world: Path) -> tuple[Path, dict[str, Any]]:
    w = config.world  # the base depends on the pretraining text only (world.py draws it from its own stream)
    target = cache_root() / f"base-{spec_hash(w.seed, w.sizes, w.pretrain, config.base, config.seed)}"
    if not (target / "final" / "config.json").exists():
        console.print(
            f"[bold]pretraining the base model[/bold] ({config.base.steps} steps; cached afterwards)"
        )
        texts = read_json(world / "pretrain.txt")
        pretrain_base(texts, config.base, target, config.seed)
    scores_path = target / "competence.json"
    if not scores_path.exists():
        atomic_write_json(scores_path, competence(target / "final", world / "general" / "suite.yaml"))
    return target / "final", read_json(scores_path)


def prepare_encoder(config: DemoConfig, world: Path) -> tuple[Path, dict[str, Any]]:
    target = cache_root() / f"encoder-{spec_hash(config.world, config.encoder, config.seed)}"
    if not (target / "final" / "modules.json").exists():
        console.print(
            "[bold]training the reward encoder[/bold] (H paraphrases + L<->H pairs; cached afterwards)"
        )
        pairs = read_rows(world / "encoder_pairs.jsonl")
        train, test = split_rows(pairs, 0.1, config.seed)
        spec = EncoderSpec(**{**config.encoder, "save_steps": 10_000})
        shutil.rmtree(target, ignore_errors=True)
        metrics = run_encoder(StageSettings(seed=config.seed), spec, train, test, target, "cpu")
        atomic_write_json(target / "metrics.json", {k: v for k, v in metrics.items() if k != "final_model"})
    return target / "final", read_json(target / "metrics.json")


def demo_rewards(config: DemoConfig, encoder: Path) -> dict[str, list[dict[str, Any]]]:
    """Each variant's reward (sandbox/variants.py): 1.5 x semantic + 1.0 x language, the demo's tau
    rule, and the variant's contrast option (none for paper and paper_kl)."""
    semantic = {
        "type": "semantic",
        "weight": 1.5,
        "encoder": str(encoder),
        "against": "reference",
        "tau": config.tau,
    }
    language = {"type": "language", "weight": 1.0, "lang": "bo", "threshold": 0.95}
    out: dict[str, list[dict[str, Any]]] = {}
    for name in config.variants:
        contrast = variant_contrast(name, config.contrast)
        out[name] = [{**semantic, **({"contrast": contrast} if contrast else {})}, language]
    return out


ORACLE_PLUGIN = "semrl.sandbox.oracle_metric"


def experiment_dict(config: DemoConfig, world: Path, base: Path, encoder: Path) -> dict[str, Any]:
    """The MT experiment (H -> L, the low-resource language generated, as the paper's task): cold
    start, strong SFT and GRPO on each reward variant at learning-rate multiples fixed in advance, an
    SFT-continue control (cold start, then SFT on the rows RL sees) and the reward ablations.
    semrl evaluates every model with the oracle too, through the metric plugin `oracle_metric`."""
    rewards = demo_rewards(config, encoder)
    semantic = demo_rewards(config.model_copy(update={"variants": ["paper"]}), encoder)["paper"]
    bleu = {"type": "bleu", "weight": 1.0, "lang": "bo"}
    prefixes = rl_prefixes(config.variants)
    arms: list[dict[str, Any]] = [{"name": "cold_sft", "recipe": "sft"}]
    for factor in config.learning_rates:
        arms.append(
            {
                "name": arm_name("strong_sft", factor),
                "recipe": "strong_sft",
                "sft": {"learning_rate": config.stage("sft")["learning_rate"] * factor},
            }
        )
        for variant, prefix in prefixes.items():
            grpo = {**VARIANTS[variant].grpo, "learning_rate": config.stage("grpo")["learning_rate"] * factor}
            arms.append(
                {
                    "name": arm_name(prefix, factor),
                    "recipe": "two_stage",
                    "grpo": grpo,
                    "rewards": {"rewards": rewards[variant]},
                }
            )
    arms.append({"name": "sft_continue", "recipe": "sft_continue"})
    arms.append({"name": "bleu_sem", "recipe": "two_stage", "rewards": {"rewards": [bleu, semantic[0]]}})
    arms.append({"name": "bleu_sem_lang", "recipe": "two_stage", "rewards": {"rewards": [bleu, *semantic]}})
    curve_prefixes = ("strong_sft", *prefixes.values())
    return {
        "name": "sandbox-mt",
        "seed": config.seed,
        "plugins": [ORACLE_PLUGIN],
        "parallel": "auto",
        "model": {"path": str(base)},
        "task": {
            "type": "translate",
            "source_lang": "en",
            "target_lang": "bo",
            "source_name": "H",
            "target_name": "L",
            "chat_template": "never",
        },
        "data": {"train": str(world / "mt_train.jsonl"), "test": str(world / "mt_test.jsonl")},
        "rewards": {"rewards": semantic},
        "sft": {
            **config.stage("sft"),
            "examples": config.cold_start,
            "save_steps": config.curve_every or 50,
            "logging_steps": 5,
        },
        "grpo": {**config.stage("grpo"), "save_steps": config.curve_every or 50, "logging_steps": 2},
        "decoding": {"max_new_tokens": 32},
        "eval": {
            "suite": str(world / "general" / "suite.yaml"),
            "encoder": str(encoder),
            "metrics": ["bleu", "chrf", "sim", "lang", "oracle"],
            "metric_options": {"oracle": {"world": str(world)}},
            "curve_every": config.curve_every,
            "resamples": 500,
            "curve_arms": [arm_name(m, f) for m in curve_prefixes for f in config.learning_rates],
        },
        "arms": arms,
    }


def ceiling_dict(config: DemoConfig, world: Path, base: Path, encoder: Path) -> dict[str, Any]:
    """What the world allows: SFT to convergence on unbiased parallel data of the same size."""
    exp = experiment_dict(config, world, base, encoder)
    return {
        **exp,
        "name": "sandbox-mt-ceiling",
        "parallel": 1,
        "data": {"train": str(world / "mt_train_unbiased.jsonl"), "test": str(world / "mt_test.jsonl")},
        "sft": {**exp["sft"], "examples": None, "epochs": config.ceiling_epochs, "save_steps": 10_000},
        "eval": {**exp["eval"], "suite": None, "curve_every": None, "curve_arms": None},
        "arms": [{"name": "ceiling", "recipe": "strong_sft"}],
    }


def _cached_json(path: Path, compute) -> Any:
    if not path.exists():
        atomic_write_json(path, compute())
    return read_json(path)


def run_demo(out: Path, quick: bool = False, config_path: Path | None = None) -> dict[str, Any]:
    start = time.time()
    check_output_folder(out, "--out")
    config = load_config(DemoConfig, config_path) if config_path else DemoConfig()
    if quick:
        config = config.quickened()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.time() - t0, 1)
        return time.time()

    t = time.time()
    world = prepare_world(config)
    t = lap("world", t)
    base, competence = prepare_base(config, world)
    translation = _cached_json(base.parent / "translation.json", lambda: base_translation(base, world))
    t = lap("base_model", t)
    encoder, encoder_metrics = prepare_encoder(config, world)
    # one audit per distinct reward (paper_kl trains on the paper's reward)
    contrasts: dict[str, dict[str, Any] | None] = {
        v: variant_contrast(v, config.contrast) for v in config.variants if v != "paper_kl"
    }
    encoder_audit = _cached_json(
        encoder.parent / f"audit-v3-{spec_hash(contrasts)}.json",
        lambda: audit_encoder(world, encoder, contrasts),
    )
    mix = _cached_json(encoder.parent / "mix.json", lambda: mix_property(encoder, world, config.seed))
    t = lap("encoder", t)
    out.mkdir(parents=True, exist_ok=True)
    mt_dir, ceiling_dir = out / "mt", out / "ceiling"
    for path, exp in (
        (out / "experiment.yaml", experiment_dict(config, world, base, encoder)),
        (out / "ceiling.yaml", ceiling_dict(config, world, base, encoder)),
    ):
        atomic_write_text(path, yaml.safe_dump(exp, sort_keys=False))
    run_experiment(
        out / "experiment.yaml",
        [],
        mt_dir,
        resume=(mt_dir / "manifest.json").exists(),
        dry_run=False,
        report=False,
    )  # build_demo_report below writes the one report, with the claims
    run_experiment(
        out / "ceiling.yaml", [], ceiling_dir, resume=(ceiling_dir / "manifest.json").exists(), dry_run=False
    )
    t = lap("arms", t)
    results = gather_results(mt_dir)
    oracle = oracle_scores(mt_dir / "eval", world)
    oracle["ceiling"] = oracle_scores(ceiling_dir / "eval", world).get("ceiling")
    trends, movement = learning_evidence(mt_dir, results, base)
    prefixes = rl_prefixes(config.variants)
    rl_arms = [arm_name(prefix, f) for prefix in prefixes.values() for f in config.learning_rates]
    world_obj, meanings = load_world(world), test_meanings(world)
    selection = select_points(mt_dir, world, config.learning_rates, prefixes)
    chosen = selection["points"]
    on_test = points_on_test(mt_dir, world, selection["chosen"])
    oracle.update(on_test["oracle"])
    segments = {**output_segments(mt_dir / "eval", list(results["arms"])), **on_test["segments"]}
    test_order = [meanings[row["id"]] for row in read_rows(mt_dir / "eval" / "base.outputs.jsonl")]
    tradeoff = tradeoffs(
        mt_dir / "eval", results, selection, world_obj, test_order, config.seed, bool(config.curve_every)
    )
    monitors = monitors_against_oracle(
        mt_dir, [*rl_arms, "bleu_sem", "bleu_sem_lang"], oracle, trends
    )  # every RL arm
    pairs = [
        (chosen[v], other) for v in prefixes for other in (chosen["sft"], "cold_sft") if chosen[v] and other
    ]
    preference = oracle_preference(mt_dir, world, pairs)
    atomic_write_json(mt_dir / "eval" / "preference.json", preference)
    t = lap("evaluation", t)
    starts = {
        name: Path(entry["model"])
        for name, entry in selection["chosen"].items()
        if entry["model"] is not None
    }
    transfer = headline_transfer(config, world, encoder, mt_dir, out / "transfer", starts)
    transfer_oracle = headline_oracle(world, transfer)
    t = lap("transfer", t)
    rm = reward_model_transfer(config, world, base, out / "rm")
    t = lap("reward_models", t)
    evidence = {
        "oracle": oracle,
        "segments": segments,
        "trends": trends,
        "tradeoffs": tradeoff,
        "transfer_oracle": transfer_oracle,
        "mix": mix,
        "selection": chosen,
        "selection_reasons": selection["reasons"],
        "beats_cold": selection["beats_cold"],
        "c6": c6_claim(rm),
    }
    claims = judge_claims(evidence)
    sandbox = {
        "quick": quick,
        "world_seed": config.world.seed,
        "seed": config.seed,
        "competence": competence,
        "base_translation": translation,
        "chance": chance_adequacy(world_obj),
        "encoder": encoder_metrics,
        "encoder_audit": encoder_audit,
        "mix": mix,
        "oracle": strip_items(oracle),
        "coverage": {arm: v["coverage"] for arm, v in strip_items(oracle).items() if v},
        "trend": trends,
        "weight_movement": movement,
        "variants": {v: VARIANTS[v].description for v in config.variants},
        "tradeoffs": tradeoff,
        "selection": selection,
        "monitors": monitors,
        "tau_cold_start": tau_values(mt_dir, rl_arms),
        "stall": stall_metrics(mt_dir, [*rl_arms, "bleu_sem", "bleu_sem_lang"]),
        "transfer": transfer,
        "transfer_oracle": strip_items(transfer_oracle),
        "reward_models": rm,
        "ceiling": (rm or {}).get("ceiling"),
        "timings": {**timings, "total": round(time.time() - start, 1)},
    }
    atomic_write_json(mt_dir / "claims.json", claims)
    atomic_write_json(mt_dir / "sandbox.json", sandbox)
    build_demo_report(mt_dir)
    return {"claims": claims, "sandbox": sandbox, "report": mt_dir / "report.html"}


def chosen_points(sandbox: dict[str, Any]) -> dict[str, Any]:
    """Per method: its point chosen on dev, with its dev and test adequacy (comparable across seeds,
    where the point's name is not)."""
    out = {}
    for method, entry in sandbox["selection"]["chosen"].items():
        key = entry.get("key")
        test = ((sandbox["oracle"].get(key) or {}).get("adequacy") or {}).get("value") if key else None
        out[method] = {
            "point": key,
            "dev_adequacy": (entry.get("dev_adequacy") or {}).get(key) if key else None,
            "test_adequacy": test,
        }
    return out


def run_seeds(out: Path, seeds: int, quick: bool = False, config_path: Path | None = None) -> dict[str, Any]:
    """The demo over several seeds; each seed regenerates the world too (world, base model, encoder
    and arms all re-seeded), and every piece of evidence is aggregated with t-intervals over seeds."""
    check_output_folder(out, "--out")
    base_config = load_config(DemoConfig, config_path) if config_path else DemoConfig()
    runs = []
    for offset, seed_dict in enumerate(seed_configs(base_config, seeds)):
        seed_config = out / f"seed-{offset}" / "demo.yaml"
        seed_config.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(seed_config, yaml.safe_dump(seed_dict, sort_keys=False))
        result = run_demo(out / f"seed-{offset}", quick, seed_config)
        sandbox = result["sandbox"]
        runs.append(
            {
                "seed": sandbox["seed"],
                "world_seed": sandbox["world_seed"],
                "claims": result["claims"],
                "evidence": {
                    **{
                        k: sandbox[k]
                        for k in (
                            "oracle",
                            "trend",
                            "base_translation",
                            "mix",
                            "chance",
                            "competence",
                            "transfer_oracle",
                        )
                    },
                    "points": chosen_points(sandbox),
                    "monitor_confusion": sandbox["monitors"].get("confusion"),
                },
            }
        )
    result = {"seeds": seeds, **aggregate_seeds(runs)}
    atomic_write_json(out / "seeds.json", result)
    return result
