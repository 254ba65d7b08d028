"""`semrl demo`: the paper's experiment in the sandbox world, with the real recipes and trainers.

world (cached) -> base model pretrained on H (cached) -> reward encoder trained contrastively on
H paraphrases and some L<->H pairs (cached) -> reward audit -> the arms on L->H translation
(cold-start SFT, strong SFT and semantic GRPO at several learning rates, the reward ablations),
evaluated with the general suite, checkpoint curves and the oracle -> few-shot headline transfer
from the RL and the SFT model -> reward models trained on H vs L pairs, judged on L -> claims.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from rich.console import Console

from semrl.files import atomic_write_json, atomic_write_text
from semrl.sandbox.config import DemoConfig, spec_hash

console = Console(stderr=True)


def cache_root() -> Path:
    return Path(os.environ.get("SEMRL_CACHE", Path.home() / ".cache" / "semrl")) / "sandbox"


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def prepare_world(config: DemoConfig) -> Path:
    from semrl.sandbox.world import write_world

    target = cache_root() / f"world-{spec_hash(config.world)}"
    if not (target / "world.json").exists():
        tmp = target.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        write_world(config.world, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def prepare_base(config: DemoConfig, world: Path) -> tuple[Path, dict[str, Any]]:
    from semrl.sandbox.pretrain import competence, pretrain_base

    target = cache_root() / f"base-{spec_hash(config.world, config.base, config.seed)}"
    if not (target / "final" / "config.json").exists():
        console.print(f"[bold]pretraining the base model[/bold] ({config.base.steps} steps; cached afterwards)")
        texts = json.loads((world / "pretrain.txt").read_text(encoding="utf-8"))
        pretrain_base(texts, config.base, target, config.seed)
    scores_path = target / "competence.json"
    if not scores_path.exists():
        atomic_write_json(scores_path, competence(target / "final", world / "general" / "suite.yaml"))
    return target / "final", json.loads(scores_path.read_text(encoding="utf-8"))


def prepare_encoder(config: DemoConfig, world: Path) -> tuple[Path, dict[str, Any]]:
    from semrl.config import EncoderSpec
    from semrl.data.splits import split_rows
    from semrl.train.encoder import run_encoder

    target = cache_root() / f"encoder-{spec_hash(config.world, config.encoder, config.seed)}"
    if not (target / "final" / "modules.json").exists():
        console.print("[bold]training the reward encoder[/bold] (H paraphrases + L<->H pairs; cached afterwards)")
        pairs = _rows(world / "encoder_pairs.jsonl")
        train, test = split_rows(pairs, 0.1, config.seed)
        spec = EncoderSpec(**{**config.encoder, "save_steps": 10_000})
        shutil.rmtree(target, ignore_errors=True)
        metrics = run_encoder(SimpleNamespace(seed=config.seed, report_to="none"), spec, train, test, target, "cpu")
        atomic_write_json(target / "metrics.json", {k: v for k, v in metrics.items() if k != "final_model"})
    return target / "final", json.loads((target / "metrics.json").read_text(encoding="utf-8"))


def audit_encoder(world: Path, encoder: Path) -> dict[str, Any]:
    """Does the encoder's similarity separate right meanings from wrong ones in this world?"""
    from semrl.rewards.audit import audit
    from semrl.rewards.build import build_reward
    from semrl.rewards.config import RewardConfig

    rows = _rows(world / "mt_test.jsonl")
    reward = build_reward(RewardConfig.model_validate({"rewards": [{"type": "semantic", "encoder": str(encoder)}]}))
    result = audit([{"reference": r["reference"], "source": r["source"]} for r in rows], reward,
                   {"reference": "reference", "source": "source"}, "en")
    return {kind: result["scores"]["total"]["copy_above"][kind] for kind in result["scores"]["total"]["copy_above"]}


def experiment_dict(config: DemoConfig, world: Path, base: Path, encoder: Path) -> dict[str, Any]:
    semantic = [{"type": "semantic", "weight": 1.5, "encoder": str(encoder), "against": "reference", "tau": 0.0},
                {"type": "language", "weight": 1.0, "lang": "en", "threshold": 0.95}]
    bleu = {"type": "bleu", "weight": 1.5, "lang": "en"}
    arms: list[dict[str, Any]] = [{"name": "cold_sft", "recipe": "sft"}]
    for i, factor in enumerate(config.learning_rates):
        suffix = "" if i == 0 else f"_x{factor:g}"
        sft_lr = config.sft.get("learning_rate", 1e-3) * factor
        grpo_lr = config.grpo.get("learning_rate", 2e-5) * factor
        arms.append({"name": f"strong_sft{suffix}", "recipe": "strong_sft", "sft": {"learning_rate": sft_lr}})
        arms.append({"name": f"semantic_rl{suffix}", "recipe": "two_stage", "grpo": {"learning_rate": grpo_lr}})
    arms.append({"name": "bleu_sem", "recipe": "two_stage",
                 "rewards": {"rewards": [{**bleu, "weight": 1.0}, semantic[0]]}})
    if len(config.learning_rates) > 1:  # the full demo also runs the other two ablations
        arms.append({"name": "bleu_lang", "recipe": "two_stage", "rewards": {"rewards": [bleu, semantic[1]]}})
        arms.append({"name": "bleu_sem_lang", "recipe": "two_stage",
                     "rewards": {"rewards": [{**bleu, "weight": 1.0}, *semantic]}})
    return {
        "name": "sandbox-mt", "seed": config.seed,
        "model": {"path": str(base)},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "en", "source_name": "L",
                 "target_name": "H", "chat_template": "never"},
        "data": {"train": str(world / "mt_train.jsonl"), "test": str(world / "mt_test.jsonl")},
        "rewards": {"rewards": semantic},
        "sft": {"epochs": 4, "learning_rate": 1e-3, "batch_size": 16, **config.sft, "examples": config.cold_start,
                "save_steps": config.curve_every or 50, "logging_steps": 5},
        "grpo": {"max_steps": 120, "learning_rate": 2e-5, "num_generations": 4, "prompts_per_step": 8,
                 "max_completion_length": 32, **config.grpo, "save_steps": config.curve_every or 50,
                 "logging_steps": 2},
        "decoding": {"max_new_tokens": 32},
        "eval": {"suite": str(world / "general" / "suite.yaml"), "encoder": str(encoder),
                 "curve_every": config.curve_every, "resamples": 500},
        "arms": arms,
    }


def oracle_scores(run_dir: Path, world: Path) -> dict[str, Any]:
    """Adequacy, grammaticality and purity of every arm's test outputs, judged by the oracle."""
    from semrl.evaluate.stats import bootstrap_mean
    from semrl.sandbox.grammar import Meaning
    from semrl.sandbox.lexicon import build_lexicon
    from semrl.sandbox.world import WorldSpec

    spec = WorldSpec.model_validate(json.loads((world / "world.json").read_text(encoding="utf-8"))["spec"])
    lexicon = build_lexicon(spec.seed, spec.sizes or None)
    meanings = {row["id"]: Meaning(*row["meaning"]) for row in _rows(world / "mt_test.jsonl")}
    from semrl.sandbox.oracle import judge

    out: dict[str, Any] = {}
    for path in sorted((run_dir / "eval").glob("*.outputs.jsonl")):
        name = path.name[: -len(".outputs.jsonl")]
        verdicts = [judge(row["hypothesis"], meanings[row["id"]], lexicon, "h") for row in _rows(path)]
        series = {"adequacy": [v.adequacy for v in verdicts], "grammatical": [float(v.grammatical) for v in verdicts],
                  "purity": [v.purity for v in verdicts]}
        out[name] = {k: {"value": sum(v) / len(v), "ci95": bootstrap_mean(v), "items": v} for k, v in series.items()}
    return out


def oracle_preference(run_dir: Path, world: Path, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Pairwise preference judged by the oracle (the sandbox's stand-in for the paper's LLM judge):
    the output with the higher adequacy wins, then grammaticality, then purity; both orders."""
    from semrl.evaluate.preference import compare
    from semrl.sandbox.grammar import Meaning
    from semrl.sandbox.lexicon import build_lexicon
    from semrl.sandbox.oracle import judge
    from semrl.sandbox.world import WorldSpec

    spec = WorldSpec.model_validate(json.loads((world / "world.json").read_text(encoding="utf-8"))["spec"])
    lexicon = build_lexicon(spec.seed, spec.sizes or None)
    meanings = {row["id"]: Meaning(*row["meaning"]) for row in _rows(world / "mt_test.jsonl")}

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        ja, jb = judge(a, meanings[row["id"]], lexicon, "h"), judge(b, meanings[row["id"]], lexicon, "h")
        return ((ja.adequacy - jb.adequacy) * 100 + (ja.grammatical - jb.grammatical) * 10
                + (ja.purity - jb.purity))

    results = {}
    for a, b in pairs:
        path_a, path_b = run_dir / "eval" / f"{a}.outputs.jsonl", run_dir / "eval" / f"{b}.outputs.jsonl"
        if path_a.exists() and path_b.exists():
            rows_a, rows_b = _rows(path_a), _rows(path_b)
            results[f"{a} vs {b}"] = {"a": a, "b": b, "judge": "oracle", **compare(
                [r["source"] for r in rows_a], [r["hypothesis"] for r in rows_a], [r["hypothesis"] for r in rows_b],
                rows_a, verdict)}
    return results


def run_demo(out: Path, quick: bool = False, config_path: Path | None = None) -> dict[str, Any]:
    from semrl.configs import load_config
    from semrl.experiment import run_experiment
    from semrl.sandbox.claims import judge_claims
    from semrl.sandbox.extras import headline_transfer, reward_model_transfer

    start = time.time()
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
    t = lap("base_model", t)
    encoder, encoder_metrics = prepare_encoder(config, world)
    encoder_audit = audit_encoder(world, encoder)
    t = lap("encoder", t)
    out.mkdir(parents=True, exist_ok=True)
    exp_path = out / "experiment.yaml"
    atomic_write_text(exp_path, yaml.safe_dump(experiment_dict(config, world, base, encoder), sort_keys=False))
    mt_dir = out / "mt"
    run_experiment(exp_path, [], mt_dir, resume=(mt_dir / "manifest.json").exists(), dry_run=False)
    t = lap("arms", t)
    oracle = oracle_scores(mt_dir, world)
    preference = oracle_preference(mt_dir, world, [("semantic_rl", "strong_sft"), ("semantic_rl", "cold_sft")])
    atomic_write_json(mt_dir / "eval" / "preference.json", preference)
    transfer = headline_transfer(config, world, encoder, mt_dir, out / "transfer")
    t = lap("transfer", t)
    rm = reward_model_transfer(config, world, base, out / "rm")
    t = lap("reward_models", t)
    results = json.loads((mt_dir / "results.json").read_text(encoding="utf-8"))
    from semrl.sandbox.claims import output_segments

    claims = judge_claims(results, oracle, transfer, rm, output_segments(mt_dir, list(results["arms"])))
    sandbox = {"quick": quick, "competence": competence, "encoder": encoder_metrics, "encoder_audit": encoder_audit,
               "oracle": {arm: {k: {kk: vv for kk, vv in v.items() if kk != "items"} for k, v in m.items()}
                          for arm, m in oracle.items()},
               "transfer": transfer, "reward_models": rm, "timings": {**timings, "total": round(time.time() - start, 1)}}
    atomic_write_json(mt_dir / "claims.json", claims)
    atomic_write_json(mt_dir / "sandbox.json", sandbox)
    from semrl.report import build_report

    build_report(mt_dir)
    return {"claims": claims, "sandbox": sandbox, "report": mt_dir / "report.html"}


def run_seeds(out: Path, seeds: int, quick: bool = False, config_path: Path | None = None) -> dict[str, Any]:
    """The demo over several seeds (same world; base model, encoder and arms re-seeded), with each
    claim's reproduction count and every arm's task metrics as mean and 95% interval over seeds."""
    import numpy as np

    from semrl.configs import load_config

    base_config = load_config(DemoConfig, config_path) if config_path else DemoConfig()
    runs = []
    for offset in range(seeds):
        seed_config = out / f"seed-{offset}" / "demo.yaml"
        seed_config.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(seed_config, yaml.safe_dump(
            base_config.model_copy(update={"seed": base_config.seed + offset}).model_dump(), sort_keys=False))
        runs.append(run_demo(out / f"seed-{offset}", quick, seed_config))
    claims = {}
    for claim in runs[0]["claims"]:
        hits = [next(c for c in r["claims"] if c["id"] == claim["id"])["reproduced"] for r in runs]
        claims[claim["id"]] = {"statement": claim["statement"], "reproduced_in": sum(hits), "seeds": seeds}
    metrics: dict[str, Any] = {}
    for r in runs:
        results = json.loads((Path(str(r["report"])).parent / "results.json").read_text(encoding="utf-8"))
        for arm, entry in results["arms"].items():
            for metric, value in entry["task"].items():
                metrics.setdefault(arm, {}).setdefault(metric, []).append(value["value"])
    summary = {arm: {m: {"mean": float(np.mean(v)), "ci95": [float(np.mean(v) - 1.96 * np.std(v, ddof=1) / np.sqrt(len(v))),
                                                               float(np.mean(v) + 1.96 * np.std(v, ddof=1) / np.sqrt(len(v)))]
                          if len(v) > 1 else None, "values": v} for m, v in ms.items()} for arm, ms in metrics.items()}
    result = {"seeds": seeds, "claims": claims, "task_metrics": summary}
    atomic_write_json(out / "seeds.json", result)
    return result
