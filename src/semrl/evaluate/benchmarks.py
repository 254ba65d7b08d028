"""The general suite on one model, and the alignment tax against the base model.

Each benchmark yields metrics with 95% intervals and the per-item values behind them, so the tax
(base - tuned, positive = lost) gets a paired-bootstrap interval over the same items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semrl.evaluate.generation import GenerationSettings, generate
from semrl.evaluate.likelihood import multiple_choice, token_kl, token_nll
from semrl.evaluate.lm_eval_tasks import run_lm_eval
from semrl.evaluate.qa import exact_match, f1_score, qa_prompt
from semrl.evaluate.stats import (
    bootstrap_mean,
    bootstrap_paired_difference,
    mean_with_interval,
    percentile_interval,
)
from semrl.evaluate.suite import BenchmarkSpec, SuiteConfig

# metric -> True when higher is better (the tax is then base - tuned)
HIGHER_IS_BETTER = {
    "em": True,
    "f1": True,
    "accuracy": True,
    "accuracy_norm": True,
    "nll_mean": False,
    "nll_p90": False,
}


BASE_ZERO = "base scores 0"  # why a relative tax is null: a change relative to 0 has no value


def relative_tax(tax: float, base_value: float) -> dict[str, Any]:
    """{"relative": tax / |base|} or, when the base scores 0, {"relative": None, "relative_reason": ...}."""
    if base_value == 0:
        return {"relative": None, "relative_reason": BASE_ZERO}
    return {"relative": tax / abs(base_value)}


def run_benchmark(
    spec: BenchmarkSpec, items: list[dict[str, Any]], model, tokenizer, base=None, seed: int = 0
) -> dict[str, Any]:
    """{"metrics": {...}, "items": {metric: per-item values}} for one benchmark on one model."""
    if spec.type == "qa":
        prompts: list[Any] = [qa_prompt(item["context"], item["question"]) for item in items]
        if spec.chat_template and getattr(tokenizer, "chat_template", None):
            prompts = [[{"role": "user", "content": p}] for p in prompts]
        outputs = generate(
            model,
            tokenizer,
            prompts,
            GenerationSettings(max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size),
        )
        answers = [o.splitlines()[0].strip() if o.strip() else "" for o in outputs]
        em = [exact_match(a, item["answers"], spec.lang) for a, item in zip(answers, items, strict=True)]
        f1 = [f1_score(a, item["answers"], spec.lang) for a, item in zip(answers, items, strict=True)]
        return {
            "metrics": {
                "em": mean_with_interval(em, 100.0, seed=seed),
                "f1": mean_with_interval(f1, 100.0, seed=seed),
            },
            "items": {"em": [100.0 * v for v in em], "f1": [100.0 * v for v in f1]},
            "outputs": answers,
        }
    if spec.type == "mc":
        correct = multiple_choice(
            model, tokenizer, items, spec.k_shot, spec.batch_size, spec.max_length, spec.length_normalize
        )
        return {
            "metrics": {"accuracy": mean_with_interval(correct, 100.0, seed=seed)},
            "items": {"accuracy": [100.0 * v for v in correct]},
        }
    texts = [item["text"] for item in items]
    if spec.type == "nll":
        per_text = token_nll(model, tokenizer, texts, spec.batch_size, spec.max_length)
        means = [float(t.mean()) for t in per_text if len(t)]
        p90s = [float(np.quantile(t, 0.9)) for t in per_text if len(t)]
        all_tokens = np.concatenate([t for t in per_text if len(t)])
        return {
            "metrics": {
                "nll_mean": mean_with_interval(means, seed=seed),
                "nll_p90": mean_with_interval(p90s, seed=seed),
                "nll_token_p90": {"value": float(np.quantile(all_tokens, 0.9)), "n": int(all_tokens.size)},
            },
            "items": {"nll_mean": means, "nll_p90": p90s},
        }
    if spec.type == "kl":
        if base is None:
            return {
                "metrics": {"kl_mean": {"value": 0.0, "n": 0}, "kl_p90": {"value": 0.0, "n": 0}},
                "items": {},
            }
        per_text = token_kl(model, base, tokenizer, texts, spec.batch_size, spec.max_length)
        tokens = np.concatenate([t for t in per_text if len(t)])
        return {
            "metrics": {
                "kl_mean": {
                    "value": float(tokens.mean()),
                    "ci95": bootstrap_mean([float(t.mean()) for t in per_text if len(t)], seed=seed),
                    "n": int(tokens.size),
                },
                "kl_p90": {"value": float(np.quantile(tokens, 0.9)), "n": int(tokens.size)},
            },
            "items": {},
        }

    return run_lm_eval(spec, model, tokenizer, seed)


def run_suite(
    suite: SuiteConfig, items: dict[str, list[dict[str, Any]]], model, tokenizer, base=None, seed: int = 0
) -> dict[str, Any]:
    """Every benchmark of the general suite on `model` (against `base` for the drift measures)."""
    return {
        spec.name: run_benchmark(spec, items[spec.name], model, tokenizer, base, seed)
        for spec in suite.benchmarks
    }


def alignment_tax(base: dict[str, Any], tuned: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Per benchmark and metric: base - tuned for scores (tuned - base for NLL); positive = lost.
    Absolute, relative to the base, and a paired-bootstrap 95% interval over the same items."""
    out: dict[str, Any] = {}
    for name, result in tuned.items():
        for metric, higher in HIGHER_IS_BETTER.items():
            if metric not in result.get("items", {}) or metric not in base.get(name, {}).get("items", {}):
                continue
            b, t = base[name]["items"][metric], result["items"][metric]
            if not b or not t:
                continue  # no items scored (both models ran the same suite, so both are empty): no tax
            first, second = (b, t) if higher else (t, b)
            tax = float(np.mean(first) - np.mean(second))
            base_value = float(np.mean(b))
            out.setdefault(name, {})[metric] = {
                "base": base_value,
                "tuned": float(np.mean(t)),
                "tax": tax,
                **relative_tax(tax, base_value),
                "ci95": bootstrap_paired_difference(first, second, seed=seed),
            }
    overall = overall_tax(base, tuned, seed)
    if overall is not None:
        out[OVERALL] = {"score": overall}
    return out


OVERALL = "overall"
PRIMARY = ("f1", "accuracy")  # one score per benchmark for the overall tax (QA F1, MC accuracy)


def overall_tax(base: dict[str, Any], tuned: dict[str, Any], seed: int = 0, resamples: int = 1000):
    """Mean over benchmarks of each one's primary-score tax (like the paper's CMRC average), with a
    bootstrap interval that resamples items within every benchmark."""
    pairs = []
    for name, result in tuned.items():
        metric = next((m for m in PRIMARY if m in result.get("items", {})), None)
        if metric and base.get(name, {}).get("items", {}).get(metric) and result["items"][metric]:
            pairs.append((np.asarray(base[name]["items"][metric]), np.asarray(result["items"][metric])))
    if not pairs:
        return None
    rng = np.random.default_rng(seed)
    samples = np.zeros(resamples)
    for b, t in pairs:
        idx = rng.integers(0, len(b), size=(resamples, len(b)))
        samples += (b[idx] - t[idx]).mean(axis=1) / len(pairs)
    base_mean = float(np.mean([b.mean() for b, _ in pairs]))
    tax = float(np.mean([b.mean() - t.mean() for b, t in pairs]))

    return {
        "base": base_mean,
        "tuned": float(np.mean([t.mean() for _, t in pairs])),
        "tax": tax,
        **relative_tax(tax, base_mean),
        "ci95": percentile_interval(samples),
        "benchmarks": len(pairs),
    }
