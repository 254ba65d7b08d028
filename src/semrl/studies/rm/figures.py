"""Figures of `semrl rm transfer`: the accuracy heatmap and the representation-shift panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

from semrl.files import atomic_savefig

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return path


def _or_nan(value: float | None) -> float:
    """A cell's accuracy for plotting; null (no pairs) becomes NaN, which imshow leaves blank."""
    return np.nan if value is None else value


def heatmap_figure(matrix: dict[str, dict[str, Any]], path: Path) -> Path:
    """Rows: the RM's training language; columns: evaluation language; cells: accuracy [95% CI]."""
    rows = list(matrix)
    cols = list(dict.fromkeys(lang for row in matrix.values() for lang in row))
    values = np.array(
        [[_or_nan(matrix[r].get(c, {}).get("accuracy")) for c in cols] for r in rows], dtype=float
    )
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(cols), 1.2 + 0.9 * len(rows)))
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell = matrix[r].get(c)
            if not cell or cell.get("accuracy") is None or not cell.get("ci95"):  # no pairs: an empty cell
                continue
            lo, hi = cell["ci95"]
            ax.text(
                j,
                i,
                f"{cell['accuracy']:.2f}\n[{lo:.2f}, {hi:.2f}]",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if cell["accuracy"] < 0.6 else "black",
            )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), [f"RM({r})" for r in rows])
    ax.set_xlabel("evaluation language")
    ax.set_ylabel("trained on")
    fig.colorbar(image, ax=ax, label="pair accuracy")
    ax.set_title("Reward-model transfer")
    return _save(fig, path)


def representation_figure(described: dict[str, dict[str, dict[str, Any]]], path: Path) -> Path:
    """Left: f = σ₁/Σσᵢ per model and language. Right: norm distributions of the same states."""
    models = list(described)
    langs = list(dict.fromkeys(lang for per in described.values() for lang in per))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / max(len(models), 1)
    for k, model in enumerate(models):
        xs = np.arange(len(langs)) + k * width
        left.bar(xs, [described[model].get(lang, {}).get("f", np.nan) for lang in langs], width, label=model)
    left.set_xticks(np.arange(len(langs)) + 0.4 - width / 2, langs)
    left.set_ylabel("f = σ₁ / Σσᵢ")
    left.set_title("top-singular-value share (higher = more homogeneous)")
    left.legend(fontsize=8)
    data, labels = [], []
    for lang in langs:
        for model in models:
            if lang in described[model]:
                data.append(described[model][lang]["norms"])
                labels.append(f"{model}\n{lang}")
    right.boxplot(data, showfliers=False)
    right.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
    right.set_ylabel("L2 norm of hidden state")
    right.set_title("embedding norms")
    return _save(fig, path)
