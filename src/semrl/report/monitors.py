"""The no-oracle side of a run's report: each GRPO stage's monitors (monitor/distinct, monitor/hub,
monitor/retrieval) over its steps, the reward-hacking warning when it fired, and the tau each
`tau: cold_start` component took from the stage's starting model. On real data these are all a
user has to tell a reward that rose for the right reason from one that was gamed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

from semrl.evaluate.intervals import MISSING, format_interval
from semrl.files import atomic_savefig, read_json
from semrl.run_folder import Run

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Table = tuple[str, list[str], list[list[str]]]


def _trend(trend: dict[str, Any] | None) -> str:
    if not trend or trend.get("ci95") is None:
        return MISSING
    return format_interval(trend.get("value"), trend["ci95"], "+.3f")


def _first_last(entry: dict[str, Any] | None) -> str:
    if not entry or not all(isinstance(entry.get(k), (int, float)) for k in ("first", "last")):
        return "–"
    return f"{entry['first']:.3f} → {entry['last']:.3f}"


def _grpo_stages(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Stage key -> metrics of each stage that went through the hacking check (GRPO stages)."""
    return {
        key: stage.get("metrics", {})
        for key, stage in results.get("training", {}).items()
        if "hacking" in stage.get("metrics", {})
    }


def monitors_table(results: dict[str, Any]) -> Table | None:
    """Per GRPO stage: the reward, retrieval and distinct trends (last fifth of logged steps minus
    the first, 95% bootstrap), hub first → last, and the hacking warning when it fired."""
    rows = []
    for key, metrics in _grpo_stages(results).items():
        trends = metrics["hacking"].get("trends", {})
        rows.append(
            [
                key,
                _trend(trends.get("reward")),
                _trend(trends.get("monitor/retrieval")),
                _trend(trends.get("monitor/distinct")),
                _first_last(metrics.get("monitor/hub")),
                metrics["hacking"].get("message") or "none",
            ]
        )
    if not rows:
        return None
    return (
        "Reward hacking monitors (GRPO stages; trend = last fifth of logged steps − first, 95% CI)",
        ["stage", "reward trend", "retrieval trend", "distinct trend", "hub (first → last)", "warning"],
        rows,
    )


def tau_table(results: dict[str, Any]) -> Table | None:
    """tau of every `tau: cold_start` component: the q-quantile of the cold start's adequacy."""
    rows = [
        [
            key,
            name,
            f"{entry['quantile']:g}",
            str(entry["n"]),
            f"{entry['value']:.4f}",
            f"{key}/{entry.get('sample_file', 'tau_cold_start.jsonl')}",
        ]
        for key, metrics in _grpo_stages(results).items()
        for name, entry in (metrics.get("tau_cold_start") or {}).items()
    ]
    if not rows:
        return None
    return (
        "tau from the cold start (q-quantile of the starting model's adequacy on a seeded prompt sample)",
        ["stage", "component", "q", "n", "tau", "sample"],
        rows,
    )


def monitors_figure(run_root: Path, path: Path) -> Path | None:
    """One panel per monitor, one line per GRPO stage; a stage whose warning fired is marked."""
    histories, warned = {}, {}
    for stage, folder in Run(Path(run_root)).stage_folders().items():
        log = folder / "log_history.json"
        if not log.is_file():
            continue
        entries = [e for e in read_json(log) if any(k.startswith("monitor/") for k in e)]
        if not entries:
            continue
        histories[stage] = entries
        metrics = log.parent / "metrics.json"
        hacking = read_json(metrics).get("hacking") or {} if metrics.exists() else {}
        if hacking.get("warning"):
            warned[stage] = hacking.get("steps") or {}
    if not histories:
        return None
    keys = sorted(
        {k for entries in histories.values() for e in entries for k in e if k.startswith("monitor/")}
    )
    fig, axes = plt.subplots(1, len(keys), figsize=(max(3.4 * len(keys), 6.0), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for stage, entries in histories.items():
            points = [(e["step"], math.nan if e[key] is None else e[key]) for e in entries if key in e]
            if points:
                label = f"{stage} (hacking warning)" if stage in warned else stage
                ax.plot(*zip(*points, strict=True), label=label, ls="--" if stage in warned else "-")
        for windows in warned.values():  # the two windows the warning compared
            for span in windows.values():
                ax.axvspan(span[0], span[1], color="tab:red", alpha=0.08)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("No-oracle monitors per GRPO stage (dashed, shaded windows: hacking warning)", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path
