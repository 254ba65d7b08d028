"""PNG figures (matplotlib, Agg backend): the trade-off between target quality and alignment tax,
training curves (reward components, KL, completion length), and per-metric bars."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

from semrl.files import atomic_savefig, read_json
from semrl.run_folder import Run

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _err(entry: dict[str, Any]) -> list[list[float]]:
    ci = entry.get("ci95") or [entry["value"], entry["value"]]
    return [[entry["value"] - ci[0]], [ci[1] - entry["value"]]]


def tradeoff_figure(results: dict[str, Any], primary: str, path: Path) -> Path | None:
    """Target quality (y) against alignment tax (x) per arm, with 95% error bars; curves when kept."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    plotted = False
    palette = plt.get_cmap("tab10" if len(results["arms"]) <= 10 else "tab20")
    for index, (name, arm) in enumerate(results["arms"].items()):
        target = arm["task"].get(primary)
        if target is None:
            continue
        color = palette(index % palette.N)  # the arm's endpoint and its checkpoint curve share a colour
        tax = first_tax(arm)
        x = tax["tax"] if tax else 0.0
        xerr = [[x - tax["ci95"][0]], [tax["ci95"][1] - x]] if tax else None
        ax.errorbar(
            [x], [target["value"]], yerr=_err(target), xerr=xerr, fmt="o", capsize=4, label=name, color=color
        )
        curve = arm.get("curve") or []
        points = [p for p in curve if p.get("tax")]
        if points:
            ax.plot(
                [p["tax"]["tax"] for p in points],
                [p["target"]["value"] for p in points],
                "-",
                alpha=0.5,
                color=color,
            )
        plotted = True
    if not plotted:
        plt.close(fig)
        return None
    ax.axvline(0.0, color="grey", lw=0.8, ls=":")
    has_suite = any(first_tax(arm) for arm in results["arms"].values())
    ax.set_xlabel(
        "alignment tax: mean over benchmarks of QA F1 / MC accuracy lost (points)"
        if has_suite
        else "alignment tax (no general suite: shown at 0)"
    )
    ax.set_ylabel(f"target quality: {primary}")
    ax.set_title("Target quality vs alignment tax (95% CI; lines: checkpoints)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def first_tax(arm: dict[str, Any]) -> dict[str, Any] | None:
    """The overall alignment tax of an arm (mean over benchmarks of QA F1 / MC accuracy)."""
    return arm.get("alignment_tax", {}).get("overall", {}).get("score")


def metrics_figure(results: dict[str, Any], path: Path) -> Path | None:
    arms = results["arms"]
    metrics = list(next(iter(arms.values()))["task"]) if arms else []
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        names = list(arms)
        values = [arms[n]["task"][metric]["value"] for n in names]
        errors = [
            [v - arms[n]["task"][metric]["ci95"][0] for n, v in zip(names, values, strict=True)],
            [arms[n]["task"][metric]["ci95"][1] - v for n, v in zip(names, values, strict=True)],
        ]
        ax.bar(names, values, yerr=errors, capsize=4, color="#4c72b0")
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def training_figure(run_root: Path, path: Path) -> Path | None:
    """Reward components, KL and completion length over GRPO steps, one line per stage."""
    histories = {}
    for stage, folder in Run(run_root).stage_folders().items():
        log = folder / "log_history.json"
        entries = read_json(log) if log.is_file() else []
        if any("reward" in e for e in entries):
            histories[stage] = [e for e in entries if "reward" in e]
    if not histories:
        return None
    keys = sorted(
        {
            k
            for entries in histories.values()
            for e in entries
            for k in e
            if k.startswith("reward/") or k in ("reward", "kl", "completions/mean_length")
        }
    )
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for stage, entries in histories.items():
            # null (TRL's mean over no valid values, or a non-finite value the guard stopped on) is a gap
            points = [(e["step"], math.nan if e[key] is None else e[key]) for e in entries if key in e]
            if points:
                ax.plot(*zip(*points, strict=True), label=stage)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path
