"""Pairwise preference between two arms' outputs on the same inputs, judged in both orders.

A wins an item only if the judge prefers it in both positions (A first, then B first); a split
verdict is a tie, which removes position bias from the count. Judges: a reward model (higher
score wins), a local causal LM prompted as judge, or a Python callable
`module:function(prompt=, a=, b=, reference=, source=)` returning "A", "B", "tie" or a number
(> 0 prefers a). The LM judge asks through the model's chat template when it has one, and either
compares the likelihood of answering A vs B (`mode: logprob`) or generates an answer and reads
the letter from it (`mode: generate`, as LLM-as-a-judge papers do); an answer naming neither or
both letters is a tie, counted as unreadable and reported in one line.

Reports win/tie/loss, the win rate (ties count half) with a 95% CI, and how much the verdicts
depend on position: the share of items where both orders agree on a winner, and the share of
decisive answers that picked whichever response was shown first (0.5 = no position bias).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.evaluate.generation import GenerationSettings, generate
from semrl.evaluate.likelihood import continuation_logprobs
from semrl.evaluate.stats import bootstrap_mean
from semrl.files import read_jsonl
from semrl.models.loading import load_causal_lm, load_scorer, load_tokenizer, score_texts
from semrl.notices import warn

DEFAULT_TEMPLATE = (
    "Task:\n{prompt}\n\nResponse A:\n{a}\n\nResponse B:\n{b}\n\n"
    "Which response is better? Answer with A or B.\nAnswer:"
)
# > 0: first wins, < 0: second wins, 0: tie, NaN: the judge's answer could not be read (a tie, counted)
Verdict = Callable[[str, str, str, dict[str, Any]], float]
LETTER = re.compile(r"\b([AB])\b")


def reward_model_judge(path: str, device: str) -> Verdict:
    model, tokenizer = load_scorer(path, device)

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        first, second = score_texts(model, tokenizer, [prompt + a, prompt + b])
        return first - second

    return verdict


def read_choice(answer: str) -> str | None:
    """ "A" or "B" when the answer names exactly one of them as a standalone letter ("B", "**A**.",
    "Response B is better"), else None: "A and B are both fine" or an empty answer say nothing."""
    letters = set(LETTER.findall(answer))
    return letters.pop() if len(letters) == 1 else None


def _as_user_turn(tokenizer, question: str) -> tuple[str, tuple[str, str]]:
    """The judge question as the model was tuned to be asked: through its chat template when it has
    one (then the answer starts right after the assistant header), else as plain text."""
    if getattr(tokenizer, "chat_template", None):
        context = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        return context, ("A", "B")
    return question, (" A", " B")


def lm_judge(
    path: str, device: str, template: str | None, mode: str = "logprob", max_new_tokens: int = 8
) -> Verdict:
    tokenizer = load_tokenizer(path)
    model = load_causal_lm(path, "auto", device).to(device)
    template = template or DEFAULT_TEMPLATE
    unreadable: list[str] = []

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        question = template.format(prompt=prompt, a=a, b=b)
        context, (say_a, say_b) = _as_user_turn(tokenizer, question)
        if mode == "logprob":
            (score_a, _), (score_b, _) = continuation_logprobs(
                model, tokenizer, [(context, say_a), (context, say_b)]
            )
            return score_a - score_b
        chat = bool(getattr(tokenizer, "chat_template", None))  # encoded as training encodes a prompt
        asked = [{"role": "user", "content": question}] if chat else question
        [answer] = generate(model, tokenizer, [asked], GenerationSettings(max_new_tokens=max_new_tokens))
        choice = read_choice(answer)
        if choice is None:
            unreadable.append(answer)
            return math.nan
        return 1.0 if choice == "A" else -1.0

    verdict.unreadable = unreadable  # type: ignore[attr-defined]
    return verdict


def import_judge(spec: str) -> Callable[..., Any]:
    """The one place semrl imports a module the user names (eval.judge.callable: module:function);
    preflight calls it too, so a typo fails before training rather than after."""
    module_name, function_name = spec.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"eval.judge.callable: cannot import {spec} ({exc})") from None
    if not callable(function):
        raise UserError(f"eval.judge.callable: {spec} is not callable")
    return function


def callable_judge(spec: str) -> Verdict:
    function = import_judge(spec)

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
        return lm_judge(spec.model, device, spec.template, spec.mode, spec.max_new_tokens)
    return callable_judge(spec.callable)


def compare(
    prompts: list[str],
    outputs_a: list[str],
    outputs_b: list[str],
    rows: list[dict[str, Any]],
    verdict: Verdict,
    seed: int = 0,
) -> dict[str, Any]:
    """Win/tie/loss of A against B with both orders judged, and the verdicts' position dependence."""
    per_item, wins, ties, losses = [], 0, 0, 0
    first_shown, decisive, unreadable = 0, 0, 0
    for prompt, a, b, row in zip(prompts, outputs_a, outputs_b, rows, strict=True):
        raw = (verdict(prompt, a, b, row), verdict(prompt, b, a, row))  # A shown first, then B shown first
        unreadable += sum(math.isnan(v) for v in raw)
        shown_first_won = [v > 0 for v in raw if not math.isnan(v) and v != 0]
        decisive, first_shown = decisive + len(shown_first_won), first_shown + sum(shown_first_won)
        first, second = (0.0 if math.isnan(raw[0]) else raw[0]), (0.0 if math.isnan(raw[1]) else -raw[1])
        if first > 0 and second > 0:
            wins, score = wins + 1, 1.0
        elif first < 0 and second < 0:
            losses, score = losses + 1, 0.0
        else:
            ties, score = ties + 1, 0.5
        per_item.append(score)
    n = len(per_item)
    return {
        "n": n,
        "wins": wins,
        "ties": ties,
        "losses": losses,  # no items: win rate and interval null
        "win_rate": sum(per_item) / n if n else None,
        "ci95": bootstrap_mean(per_item, seed=seed),
        "position_agreement": (wins + losses) / n if n else None,  # both orders named one winner
        "first_shown_preferred": first_shown / decisive if decisive else None,
        "unreadable": unreadable,
    }


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
        results[f"{a} vs {b}"] = {
            "a": a,
            "b": b,
            "judge": exp.eval.judge.type,
            **compare(
                prompts,
                [o["hypothesis"] for o in outputs_a],
                [o["hypothesis"] for o in outputs_b],
                test_rows,
                verdict,
                exp.seed,
            ),
        }
    _say_unreadable(
        exp.eval.judge, getattr(verdict, "unreadable", []), 2 * len(test_rows) * len(exp.eval.compare)
    )
    return results


def _say_unreadable(spec: Any, answers: list[str], asked: int) -> None:
    if answers:
        warn(
            f"eval.judge: {len(answers)} of {asked} answers of the lm judge {spec.model} named neither A "
            "nor B "
            f"(first: {answers[0][:60]!r}); they count as ties (`unreadable` in results.json)"
        )
