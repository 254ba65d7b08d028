"""Pairwise preference between two arms' outputs on the same inputs, judged in both orders.

A wins an item only if the judge prefers it in both positions (A first, then B first); a split
verdict is a tie, which removes position bias from the count. Judges: a reward model (higher
score wins), a local causal LM prompted as judge (log-likelihood of " A" vs " B"), or a Python
callable `module:function(prompt=, a=, b=, reference=, source=)` returning "A", "B", "tie" or a
number (> 0 prefers a). Reports win/tie/loss and the win rate (ties count half) with a 95% CI.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from semrl.errors import UserError
from semrl.evaluate.likelihood import continuation_logprobs
from semrl.evaluate.stats import bootstrap_mean
from semrl.files import read_jsonl
from semrl.models.loading import load_causal_lm, load_scorer, load_tokenizer, score_texts

DEFAULT_TEMPLATE = ("Task:\n{prompt}\n\nResponse A:\n{a}\n\nResponse B:\n{b}\n\n"
                    "Which response is better? Answer with A or B.\nAnswer:")
Verdict = Callable[[str, str, str, dict[str, Any]], float]  # > 0: first wins, < 0: second wins, 0: tie


def reward_model_judge(path: str, device: str) -> Verdict:
    model, tokenizer = load_scorer(path, device)

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        first, second = score_texts(model, tokenizer, [prompt + a, prompt + b])
        return first - second

    return verdict


def lm_judge(path: str, device: str, template: str | None) -> Verdict:
    tokenizer = load_tokenizer(path)
    model = load_causal_lm(path, "auto", device).to(device)
    template = template or DEFAULT_TEMPLATE

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        context = template.format(prompt=prompt, a=a, b=b)
        (score_a, _), (score_b, _) = continuation_logprobs(model, tokenizer, [(context, " A"), (context, " B")])
        return score_a - score_b

    return verdict


def callable_judge(spec: str) -> Verdict:
    module_name, function_name = spec.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"eval.judge.callable: cannot import {spec} ({exc})") from None

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        answer = function(prompt=prompt, a=a, b=b, reference=row.get("reference"), source=row.get("source"))
        if isinstance(answer, str):
            return {"a": 1.0, "b": -1.0}.get(answer.strip().lower(), 0.0)
        return float(answer)

    return verdict


def build_judge(spec, device: str) -> Verdict:
    if spec.type == "reward_model":
        return reward_model_judge(spec.model, device)
    if spec.type == "lm":
        return lm_judge(spec.model, device, spec.template)
    return callable_judge(spec.callable)


def compare(prompts: list[str], outputs_a: list[str], outputs_b: list[str], rows: list[dict[str, Any]],
            verdict: Verdict, seed: int = 0) -> dict[str, Any]:
    """Win/tie/loss of A against B with both orders judged."""
    per_item, wins, ties, losses = [], 0, 0, 0
    for prompt, a, b, row in zip(prompts, outputs_a, outputs_b, rows):
        first = verdict(prompt, a, b, row)  # A shown first
        second = -verdict(prompt, b, a, row)  # B shown first, sign flipped back to A's view
        if first > 0 and second > 0:
            wins, score = wins + 1, 1.0
        elif first < 0 and second < 0:
            losses, score = losses + 1, 0.0
        else:
            ties, score = ties + 1, 0.5
        per_item.append(score)
    n = len(per_item)
    return {"n": n, "wins": wins, "ties": ties, "losses": losses,  # no items: win rate and interval null
            "win_rate": sum(per_item) / n if n else None, "ci95": bootstrap_mean(per_item, seed=seed)}


def _outputs(out_dir: Path, name: str) -> list[dict[str, Any]]:
    path = out_dir / f"{name}.outputs.jsonl"
    if not path.exists():
        raise UserError(f"{path}: missing; evaluate arm {name} first")
    return read_jsonl(path, numbered=False, allow_empty=True)


def judge_pairs(exp, out_dir: Path, test_rows: list[dict[str, Any]], device: str) -> dict[str, Any]:
    verdict = build_judge(exp.eval.judge, device)
    prompts = [str(row.get("source", row.get("prompt", ""))) for row in test_rows]
    results = {}
    for a, b in exp.eval.compare:
        outputs_a, outputs_b = _outputs(out_dir, a), _outputs(out_dir, b)
        results[f"{a} vs {b}"] = {"a": a, "b": b, "judge": exp.eval.judge.type, **compare(
            prompts, [o["hypothesis"] for o in outputs_a], [o["hypothesis"] for o in outputs_b], test_rows, verdict,
            exp.seed)}
    return results
