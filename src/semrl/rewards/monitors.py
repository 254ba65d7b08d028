"""Reward-hacking monitors that need no oracle, from the embeddings a semantic reward already has.

On real data nobody can judge adequacy during GRPO, and a hacked reward still rises. What a hack
does to the outputs can be seen without an oracle: different inputs get the same output
(`monitor/distinct` falls),
they drift toward sentences close to every reference (`monitor/hub` rises), and an output stops
identifying its own input (`monitor/retrieval` falls: its nearest reference among the batch's is
another item's). The semantic reward logs these on every call (rewards/semantic.py); the run's
hacking warning reads them back from the log history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def distinct_share(completions: Sequence[str], groups: Sequence[str]) -> float:
    """Distinct completions of the call over the sum, per input, of that input's distinct completions.

    RL sharpens: a policy that learns converges on one answer per prompt, so the plain share of
    distinct completions falls to 1/num_generations in an honest run. A generic sentence is the same
    output for *different* inputs; only that lowers this share (1.0 while no two inputs share an output,
    1/inputs when all share one)."""
    per_group: dict[str, set[str]] = {}
    for text, group in zip(completions, groups, strict=True):
        per_group.setdefault(group, set()).add(text)
    total = sum(len(texts) for texts in per_group.values())
    return len(set(completions)) / total if total else 1.0


def monitor_values(
    completion_vecs: torch.Tensor,
    reference_vecs: torch.Tensor,
    ref_texts: Sequence[str],
    completions: Sequence[str],
    k: int,
    groups: Sequence[str] | None = None,
) -> dict[str, float]:
    """The call's monitors. Row i of both tensors belongs to item i (completions[i], ref_texts[i]);
    an empty completion has no embedding (any row will do): it counts in `distinct`, as a miss in
    `retrieval`, and not in `hub`.

    distinct:  distinct_share over the inputs (`groups`: each completion's prompt; default its reference).
    hub:       mean over non-empty completions of the mean of their top-k cosines to the call's
               other distinct references (k capped at their number; left out when all are empty).
    retrieval: share of completions whose most similar distinct reference of the call is their own
               (ties count as found).
    With one distinct reference in the call (one prompt per reward call) hub and retrieval say
    nothing, so they are left out rather than logged as a reassuring constant.
    """
    import torch

    n = len(completions)
    if n == 0:
        return {}
    values = {
        "distinct": distinct_share(completions, list(groups) if groups is not None else list(ref_texts))
    }
    first: dict[str, int] = {}
    for i, text in enumerate(ref_texts):
        first.setdefault(text, i)
    distinct_refs = list(first)
    if len(distinct_refs) < 2:
        return {"monitor/distinct": values["distinct"]}
    column = {text: j for j, text in enumerate(distinct_refs)}
    own = torch.tensor([column[t] for t in ref_texts], dtype=torch.long)
    present = torch.tensor([bool(text.strip()) for text in completions])
    refs = reference_vecs[[first[t] for t in distinct_refs]]
    sims = (completion_vecs.float() @ refs.float().T).clamp(-1.0, 1.0)  # (n, distinct refs)
    rows = torch.arange(n)
    own_sim = sims[rows, own]
    found = (own_sim >= sims.max(dim=1).values) & present
    values["retrieval"] = float(found.float().mean())
    if bool(present.any()):
        masked = sims.clone()
        masked[rows, own] = float("-inf")
        hub = masked.topk(min(k, len(distinct_refs) - 1), dim=1).values.mean(dim=1)
        values["hub"] = float(hub[present].mean())
    return {f"monitor/{name}": value for name, value in values.items()}
