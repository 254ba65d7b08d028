"""How far training moved a reward model's representations from its base (Hong et al. §5).

For the same inputs in one language, take the hidden state at a chosen layer of the last real token
of each input (the position a sequence-classification head reads), stack them into an n x d matrix
H and report f = σ₁ / Σσᵢ, the share of the top singular value: near 1 the representations have
collapsed onto one direction (homogenised), lower means they stay spread out. Also the distribution
of the vectors' L2 norms. Compared between each RM and the base it was trained from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from semrl.text.surrogates import encodable


def top_singular_share(matrix: np.ndarray) -> float:
    """σ₁ / Σσᵢ of a matrix: in (0, 1], exactly 1 for a rank-1 matrix, 1/k for k equal singular values."""
    values = np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)
    total = float(values.sum())
    if not np.isfinite(total) or total <= 0.0:
        raise ValueError("top_singular_share: matrix is all zeros or not finite")
    return float(values[0] / total)


def last_token_states(
    model, tokenizer, texts: Sequence[str], layer: int = -1, batch_size: int = 16, max_length: int = 512
) -> np.ndarray:
    """n x d hidden states at `layer` of each text's last non-padding token (right padding)."""
    import torch

    previous = tokenizer.padding_side
    tokenizer.padding_side = "right"
    model.eval()
    rows: list[np.ndarray] = []
    try:
        for start in range(0, len(texts), batch_size):
            chunk = [encodable(text) for text in texts[start : start + batch_size]]
            batch = tokenizer(
                chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length
            )
            batch = batch.to(model.device)
            with torch.inference_mode():
                hidden = model(**batch, output_hidden_states=True).hidden_states
            if not -len(hidden) <= layer < len(hidden):
                raise ValueError(
                    f"representation.layer {layer}: the model has {len(hidden)} hidden-state layers "
                    f"(embeddings + {len(hidden) - 1} blocks)"
                )
            last = batch["attention_mask"].sum(dim=1) - 1
            states = hidden[layer][torch.arange(len(chunk), device=model.device), last]
            rows.append(states.float().cpu().numpy())
    finally:
        tokenizer.padding_side = previous
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, 0))


def describe(states: np.ndarray) -> dict[str, Any]:
    """f and the norm distribution of one model's states on one language's inputs."""
    norms = np.linalg.norm(states, axis=1)
    q05, q25, q50, q75, q95 = (float(x) for x in np.quantile(norms, [0.05, 0.25, 0.5, 0.75, 0.95]))
    return {
        "f": top_singular_share(states),
        "n": int(states.shape[0]),
        "dim": int(states.shape[1]),
        "norm": {
            "mean": float(norms.mean()),
            "std": float(norms.std()),
            "q05": q05,
            "q25": q25,
            "median": q50,
            "q75": q75,
            "q95": q95,
        },
        "norms": [round(float(x), 5) for x in norms],
    }


def shift_table(
    described: dict[str, dict[str, dict[str, Any]]], base: str = "base"
) -> dict[str, dict[str, Any]]:
    """f(RM) - f(base) and the ratio of mean norms, per RM and language."""
    table: dict[str, dict[str, Any]] = {}
    for model, per_language in described.items():
        if model == base:
            continue
        for lang, entry in per_language.items():
            ref = described[base][lang]
            table.setdefault(model, {})[lang] = {
                "f": entry["f"],
                "f_base": ref["f"],
                "delta_f": entry["f"] - ref["f"],
                "norm_ratio": entry["norm"]["mean"] / ref["norm"]["mean"] if ref["norm"]["mean"] else None,
            }
    return table
