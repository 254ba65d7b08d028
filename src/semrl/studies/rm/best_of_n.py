"""`semrl rm best-of-n`: pick, for each prompt, the candidate a reward model scores highest.

Candidates come either as one row per prompt with a `candidates` list, or as one row per
candidate (`prompt`, `completion`, optional `id`) grouped by id (or by prompt when there is no id).
The output keeps every score so the choice can be audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.checks.models import check_scorer
from semrl.data.loading import LINE, load_table
from semrl.errors import UserError
from semrl.files import atomic_write_jsonl, check_output_file
from semrl.rewards.config import RewardModelSpec
from semrl.rewards.reward_model import RewardModelReward
from semrl.text.visible import blank


def group_candidates(rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """[{id, prompt, candidates}] in first-seen order; raises naming the line and field."""
    groups: dict[Any, dict[str, Any]] = {}
    for row in rows:
        line = row.get(LINE, "?")
        prompt = row.get("prompt", "")
        if not isinstance(prompt, (str, list)):
            raise UserError(f"{source}: line {line}: field 'prompt' must be text or a message list")
        if "candidates" in row:
            candidates = row["candidates"]
            if (
                not isinstance(candidates, list)
                or not candidates
                or not all(isinstance(c, str) for c in candidates)
            ):
                raise UserError(
                    f"{source}: line {line}: field 'candidates' must be a non-empty list of texts"
                )
            empty = next((i for i, c in enumerate(candidates) if blank(c)), None)
            if empty is not None:
                raise UserError(f"{source}: line {line}: field 'candidates': item {empty + 1} is empty text")
            key = row.get("id", f"line {line}")
            if key in groups:
                raise UserError(f"{source}: line {line}: duplicate id {key!r}")
            groups[key] = {"id": key, "prompt": prompt, "candidates": list(candidates)}
            continue
        if "completion" not in row:
            raise UserError(f"{source}: line {line}: needs field 'candidates' (a list) or 'completion'")
        if not isinstance(row["completion"], str):
            raise UserError(f"{source}: line {line}: field 'completion' must be text")
        if blank(row["completion"]):
            raise UserError(f"{source}: line {line}: field 'completion' is empty text")
        key = row.get("id", str(prompt))
        group = groups.setdefault(key, {"id": key, "prompt": prompt, "candidates": []})
        group["candidates"].append(row["completion"])
    if not groups:
        raise UserError(f"{source}: no rows")
    return list(groups.values())


def best_of_n(
    model: str,
    candidates_file: Path,
    out: Path | None,
    batch_size: int = 16,
    max_length: int = 1024,
    device: str | None = None,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Every prompt's best candidate under `model`; the model is checked (a one-label sequence
    classifier with whole weights), the output path and the candidates read before anything is scored."""
    check_scorer(model, "--model")
    if out is not None:
        check_output_file(out, "--out")
    groups = group_candidates(load_table(str(candidates_file)), str(candidates_file))
    reward = RewardModelReward(
        RewardModelSpec(
            type="reward_model",
            model=model,
            transform="raw",
            batch_size=batch_size,
            max_length=max_length,
            device=device,
            trust_remote_code=trust_remote_code,
        )
    )
    prompts = [g["prompt"] for g in groups for _ in g["candidates"]]
    texts = [c for g in groups for c in g["candidates"]]
    scores = reward.raw_scores(prompts, texts)
    rows, cursor = [], 0
    for group in groups:
        mine = scores[cursor : cursor + len(group["candidates"])]
        cursor += len(group["candidates"])
        best = max(range(len(mine)), key=lambda i: (mine[i], -i))  # ties: the earlier candidate
        rows.append(
            {
                "id": group["id"],
                "prompt": group["prompt"],
                "best": group["candidates"][best],
                "best_index": best,
                "best_score": mine[best],
                "scores": mine,
                "candidates": group["candidates"],
            }
        )
    if out is not None:
        atomic_write_jsonl(out, rows)
    n = len(rows)
    return {
        "prompts": n,
        "candidates": len(texts),
        "mean_best_score": sum(r["best_score"] for r in rows) / n,
        "mean_score": sum(scores) / len(scores),
        "first_is_best": sum(r["best_index"] == 0 for r in rows) / n,
        "output": str(out) if out else None,
        "rows": rows,
    }
