"""Evaluate one model of a run (the base, an arm, a checkpoint) on the task's test split and the
general suite; pipeline/evaluation.py runs it over a whole run (`semrl eval`).

For each model: task metrics with 95% intervals, the general suite, the alignment tax against the
base (base - tuned, positive = lost, paired intervals), drift (NLL shift and per-token KL to the
base), optionally a trade-off curve over intermediate checkpoints and pairwise preference.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from semrl.data.tasks import build_task_examples
from semrl.evaluate.benchmarks import OVERALL, alignment_tax, run_suite
from semrl.evaluate.generation import GenerationSettings, generate
from semrl.evaluate.suite import SuiteConfig, load_suite
from semrl.evaluate.task import evaluate_task, primary_metric
from semrl.experiment_config import ExperimentConfig
from semrl.files import atomic_write_json, atomic_write_jsonl
from semrl.models.loading import load_for_generation
from semrl.names import inside
from semrl.plugins import load_plugins
from semrl.tasks import TASKS
from semrl.train.checkpoints import stage_checkpoints

console = Console(stderr=True)


def target_lang(exp: ExperimentConfig) -> str | None:
    return exp.task.target_lang or exp.task.source_lang


def generation_settings(exp: ExperimentConfig) -> GenerationSettings:
    """The evaluation's decoding (greedy), shared with checkpoint selection (train/select.py);
    decoding.top_k filters whenever a caller samples."""
    return GenerationSettings(
        max_new_tokens=exp.eval.max_new_tokens or exp.decoding.max_new_tokens,
        top_k=exp.decoding.top_k,
        batch_size=exp.eval.batch_size,
        seed=exp.seed,
    )


def load_model(path: str, exp: ExperimentConfig, device: str):
    return load_for_generation(
        path, exp.model.dtype, device, exp.model.trust_remote_code, exp.model.attn_implementation
    )


class Evaluator:
    """Holds what every model's evaluation shares: test rows, suite, base model and its results."""

    def __init__(
        self,
        exp: ExperimentConfig,
        test_rows: list[dict[str, Any]],
        base_path: str,
        out_dir: Path,
        device: str,
        encoder: str | None = None,
    ):
        self.exp, self.rows, self.base_path, self.out_dir, self.device = (
            exp,
            test_rows,
            base_path,
            out_dir,
            device,
        )
        load_plugins(exp.plugins)  # a worker process was handed the config, not the YAML it came from
        self.encoder = encoder or exp.eval.encoder
        self.suite: SuiteConfig | None
        self.suite, self.items = load_suite(exp.eval.suite) if exp.eval.suite else (None, {})
        self._base = None
        self.base_general: dict[str, Any] | None = None
        self._base_point: dict[str, Any] | None = None
        self._curve_cache: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    @property
    def base(self):
        if self._base is None:
            self._base = load_model(self.base_path, self.exp, self.device)
        return self._base

    def task_outputs(self, model, tokenizer) -> list[str]:
        examples = build_task_examples(self.exp.task, tokenizer)
        return generate(
            model, tokenizer, [examples.prompt(row) for row in self.rows], generation_settings(self.exp)
        )

    def score(self, model, tokenizer, resamples: int | None = None) -> tuple[dict[str, Any], list[str], dict]:
        hyps = self.task_outputs(model, tokenizer)
        metrics, segments = evaluate_task(
            self.exp.task.type,
            hyps,
            [row["reference"] for row in self.rows],
            target_lang(self.exp),
            self.encoder,
            self.exp.eval.lang_threshold,
            resamples or self.exp.eval.resamples,
            self.exp.seed,
            self.exp.eval.metrics,
            self.rows,
            self.exp.eval.metric_options,
        )
        return metrics, hyps, segments

    def general(self, model, tokenizer, is_base: bool) -> dict[str, Any]:
        if self.suite is None:
            return {}
        base_model = None if is_base else self.base[0]
        return run_suite(self.suite, self.items, model, tokenizer, base_model, self.exp.seed)

    def evaluate(self, name: str, model_path: str, is_base: bool = False) -> dict[str, Any]:
        start = time.time()
        model, tokenizer = self.base if is_base else load_model(model_path, self.exp, self.device)
        task, hyps, segments = self.score(model, tokenizer)
        general = self.general(model, tokenizer, is_base)
        if is_base:
            self.base_general = general
        result: dict[str, Any] = {
            "name": name,
            "model": model_path,
            "n_test": len(self.rows),
            "task": task,
            "general": {bench: r["metrics"] for bench, r in general.items()},
            "alignment_tax": {}
            if is_base or self.base_general is None
            else alignment_tax(self.base_general, general, self.exp.seed),
            "drift": drift_summary(general, self.base_general if not is_base else None),
            "outputs": f"{name}.outputs.jsonl",
            "seconds": round(time.time() - start, 2),
        }
        outputs = []
        for i, (row, hyp) in enumerate(zip(self.rows, hyps, strict=True)):
            outputs.append(
                {
                    "id": row.get("id", i),
                    "source": row.get("source", row.get("prompt")),
                    "reference": row["reference"],
                    "hypothesis": hyp,
                    **{f"seg_{k}": v[i] for k, v in segments.items()},
                }
            )
        atomic_write_jsonl(inside(self.out_dir, self.out_dir / f"{name}.outputs.jsonl", "outputs"), outputs)
        result["_general_items"] = {bench: r["items"] for bench, r in general.items()}
        return result

    def curve(self, name: str, stages: list[tuple[str, Path]]) -> list[dict[str, Any]]:
        """Target quality, alignment tax and KL at step 0 (the base) and at every kept checkpoint of
        the arm's stages. Each point's outputs and per-item general scores are kept in
        eval/curves/<arm>/step-<N>.json, so analyses can re-score them (e.g. with an oracle) and
        bootstrap over items; a checkpoint shared by several arms is evaluated once."""
        primary = primary_task_metric(self.exp)
        points, offset = [], 0
        if self.base_general is not None and self._base_point is not None:
            points.append(
                {
                    "stage": "base",
                    "step": 0,
                    "target": self._base_point["task"][primary],
                    "tax": {"tax": 0.0, "ci95": [0.0, 0.0], "base": None, "tuned": None},
                    "drift": {},
                    "detail": "curves/base.json",
                }
            )
        for stage, stage_dir in stages:
            last = 0
            for step, checkpoint in stage_checkpoints(stage_dir):
                point, detail = self._checkpoint_point(checkpoint, primary)
                detail_path = f"curves/{name}/step-{offset + step}.json"
                atomic_write_json(self.out_dir / detail_path, detail)
                points.append({"stage": stage, "step": offset + step, **point, "detail": detail_path})
                last = step
            offset += last
        return points

    def _checkpoint_point(self, checkpoint: Path, primary: str) -> tuple[dict[str, Any], dict[str, Any]]:
        key = str(checkpoint.resolve())
        if key not in self._curve_cache:
            model, tokenizer = load_model(str(checkpoint), self.exp, self.device)
            task, hyps, _ = self.score(model, tokenizer, resamples=200)
            general = self.general(model, tokenizer, is_base=False)
            tax = alignment_tax(self.base_general, general, self.exp.seed) if self.base_general else {}
            point = {
                "target": task[primary],
                "tax": primary_tax(tax),
                "drift": drift_summary(general, self.base_general),
            }
            detail = {
                "checkpoint": key,
                "hypotheses": hyps,
                "general_items": {bench: r["items"] for bench, r in general.items()},
            }
            self._curve_cache[key] = (point, detail)
        return self._curve_cache[key]

    def write_base_point(self, base_result: dict[str, Any], hyps: list[str]) -> None:
        """Step 0 of every curve is the base model."""
        self._base_point = base_result
        atomic_write_json(
            self.out_dir / "curves" / "base.json",
            {
                "checkpoint": "base",
                "hypotheses": hyps,
                "general_items": base_result.get("_general_items", {}),
            },
        )


def primary_task_metric(exp: ExperimentConfig) -> str:
    return primary_metric(exp.eval.metrics or TASKS[exp.task.type].metrics)


def primary_tax(tax: dict[str, Any]) -> dict[str, Any] | None:
    """The overall tax (mean over benchmarks of QA F1 / MC accuracy): the curve's x axis."""
    return tax.get(OVERALL, {}).get("score")


def drift_summary(general: dict[str, Any], base_general: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bench, result in general.items():
        metrics = result["metrics"]
        if "kl_mean" in metrics:
            out[bench] = {"kl_mean": metrics["kl_mean"]["value"], "kl_p90": metrics["kl_p90"]["value"]}
        if "nll_mean" in metrics and base_general and bench in base_general:
            base_metrics = base_general[bench]["metrics"]
            if metrics["nll_mean"]["value"] is None or base_metrics["nll_mean"]["value"] is None:
                continue  # no text long enough to score (n = 0 in the benchmark's metrics): no shift
            out[bench] = {
                "nll_shift": metrics["nll_mean"]["value"] - base_metrics["nll_mean"]["value"],
                "nll_p90_shift": metrics["nll_token_p90"]["value"] - base_metrics["nll_token_p90"]["value"],
            }
    return out
