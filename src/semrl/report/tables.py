"""The paper-style tables, as (title, header, rows) so markdown and HTML render the same content."""

from __future__ import annotations

from typing import Any

from semrl.evaluate.intervals import MISSING, format_interval, is_number
from semrl.report.monitors import monitors_table, tau_table
from semrl.report.stall import run_stall_table
from semrl.train.select import describe as describe_selection

Table = tuple[str, list[str], list[list[str]]]


def _fmt(entry: dict[str, Any] | None, digits: int = 2) -> str:
    return format_interval(entry.get("value"), entry.get("ci95"), f".{digits}f") if entry else MISSING


def _num(value: Any, spec: str) -> str:
    return format(value, spec) if is_number(value) else "–"


def _relative(entry: dict[str, Any]) -> str:
    """The relative tax in percent, or "–" with its reason (e.g. the base scores 0)."""
    if is_number(entry.get("relative")):
        return f"{100 * entry['relative']:.1f}%"
    reason = entry.get("relative_reason")
    return f"– ({reason})" if reason else "–"


def _digits(entry: dict[str, Any] | None) -> int:
    """Two decimals on a 0-100 scale (BLEU, chrF++, ROUGE-L), four on a fraction or a cosine."""
    return 2 if entry and entry.get("scale") == "0-100" else 4


def task_table(results: dict[str, Any]) -> Table:
    arms = results["arms"]
    metrics = list(next(iter(arms.values()))["task"]) if arms else []
    rows = [
        [name] + [_fmt(arm["task"].get(m), _digits(arm["task"].get(m))) for m in metrics]
        for name, arm in arms.items()
    ]
    return ("Task quality on the test split (95% bootstrap intervals)", ["arm"] + metrics, rows)


def general_table(results: dict[str, Any]) -> Table | None:
    columns = []
    for arm in results["arms"].values():
        for bench, metrics in arm.get("general", {}).items():
            for metric in metrics:
                if metric not in ("kl_mean", "kl_p90", "nll_token_p90") and (bench, metric) not in columns:
                    columns.append((bench, metric))
    if not columns:
        return None
    rows = [
        [name] + [_fmt(arm.get("general", {}).get(b, {}).get(m)) for b, m in columns]
        for name, arm in results["arms"].items()
    ]
    return ("General competence", ["arm"] + [f"{b} {m}" for b, m in columns], rows)


def tax_table(results: dict[str, Any]) -> Table | None:
    rows = []
    for name, arm in results["arms"].items():
        for bench, metrics in arm.get("alignment_tax", {}).items():
            for metric, entry in metrics.items():
                rows.append(
                    [
                        name,
                        bench,
                        metric,
                        _num(entry.get("base"), ".2f"),
                        _num(entry.get("tuned"), ".2f"),
                        _fmt({"value": entry.get("tax"), "ci95": entry.get("ci95")}),
                        _relative(entry),
                    ]
                )
    if not rows:
        return None
    return (
        "Alignment tax (base − tuned; positive = lost; NLL: tuned − base)",
        ["arm", "benchmark", "metric", "base", "tuned", "tax [95% CI]", "relative"],
        rows,
    )


def drift_table(results: dict[str, Any]) -> Table | None:
    rows = []
    for name, arm in results["arms"].items():
        for bench, entry in arm.get("drift", {}).items():
            rows.append(
                [name, bench]
                + [
                    f"{entry[k]:+.4f}" if k in entry else "–"
                    for k in ("nll_shift", "nll_p90_shift", "kl_mean", "kl_p90")
                ]
            )
    if not rows:
        return None
    return (
        "Drift from the base model",
        ["arm", "benchmark", "NLL shift", "NLL P90 shift", "KL mean", "KL P90"],
        rows,
    )


def preference_table(results: dict[str, Any]) -> Table | None:
    pref = results.get("preference") or {}

    def percent(value: Any) -> Any:
        return 100 * value if is_number(value) else None

    def share(value: Any) -> str:
        return f"{100 * value:.0f}" if is_number(value) else "n/a"

    rows = [
        [
            key,
            entry["judge"],
            str(entry["wins"]),
            str(entry["ties"]),
            str(entry["losses"]),
            _fmt(
                {
                    "value": percent(entry.get("win_rate")),
                    "ci95": [percent(c) for c in entry.get("ci95") or []],
                },
                1,
            ),
            share(entry.get("position_agreement")),
            share(entry.get("first_shown_preferred")),
            str(entry.get("unreadable", 0)),
        ]
        for key, entry in pref.items()
    ]
    if not rows:
        return None
    return (
        "Pairwise preference (both orders; ties count half; orders agree: both orders name the same winner; "
        "first shown: share of decisive answers that chose the response shown first)",
        [
            "pair",
            "judge",
            "wins",
            "ties",
            "losses",
            "win rate % [95% CI]",
            "orders agree %",
            "first shown %",
            "unreadable",
        ],
        rows,
    )


def training_table(results: dict[str, Any]) -> Table | None:
    """Each stage's loss and reward, and the KL to the reference where a GRPO stage had beta > 0."""
    rows = []
    stages = results.get("training", {})
    with_kl = any("kl" in stage.get("metrics", {}) for stage in stages.values())
    for key, stage in stages.items():
        metrics = stage.get("metrics", {})
        reward = metrics.get("reward", {})
        loss = metrics.get("loss", {})
        kl = metrics.get("kl", {})
        rows.append(
            [
                key,
                str(metrics.get("steps", "–")),
                f"{stage.get('seconds', 0):.1f}",
                f"{_num(loss.get('first'), '.3f')} → {_num(loss.get('last'), '.3f')}" if loss else "–",
                f"{_num(reward.get('first'), '.3f')} → {_num(reward.get('last'), '.3f')}" if reward else "–",
                *(
                    [f"{_num(kl.get('first'), '.3g')} → {_num(kl.get('last'), '.3g')}" if kl else "–"]
                    * with_kl
                ),
            ]
        )
    if not rows:
        return None
    return (
        "Training stages",
        ["stage", "steps", "seconds", "loss (first → last)", "reward (first → last)"]
        + ["KL to reference (first → last)"] * with_kl,
        rows,
    )


def _frontier_cell(side: dict[str, Any]) -> str:
    """A frontier tax with its interval and the checkpoint it comes from."""
    text = _fmt({"value": side["tax"], "ci95": side["ci95"]})
    return text if side.get("step") is None else f"{text} (step {side['step']})"


def selection_table(results: dict[str, Any]) -> Table | None:
    """GRPO stages with grpo.select: the checkpoint that became final/, its dev score, and why."""
    rows = []
    for key, stage in results.get("training", {}).items():
        selection = stage.get("metrics", {}).get("selection")
        if selection:
            scores = ", ".join(f"{c['step']}: {_num(c.get('score'), '.4g')}" for c in selection["candidates"])
            rows.append([key, str(selection["chosen_step"]), scores, describe_selection(selection)])
    if not rows:
        return None
    return ("Checkpoint selection (dev split)", ["stage", "chosen step", "dev score by step", "why"], rows)


def matched_table(results: dict[str, Any]) -> Table | None:
    rows = []
    for pair, entries in (results.get("matched_quality") or {}).items():
        a, b = pair.split(" vs ")
        for entry in entries:
            rows.append(
                [
                    pair,
                    f"{entry['target']:.4f}",
                    _frontier_cell(entry[a]),
                    _frontier_cell(entry[b]),
                    f"{entry['difference']:+.2f}",
                ]
            )
    if not rows:
        return None
    return (
        "Alignment tax at matched target quality: each arm's lowest tax among its checkpoints that "
        "reach the quality, with that checkpoint's own interval (no joint bootstrap)",
        ["pair", "target quality", "tax of first", "tax of second", "difference"],
        rows,
    )


def _cell(text: Any, width: int) -> str:
    """One line of at most `width` characters (a table cell in markdown and HTML alike)."""
    line = " ".join(str(text).split()).replace("|", "/")
    return line if len(line) <= width else line[: width - 1] + "…"


def completions_table(results: dict[str, Any]) -> Table | None:
    """What the policy wrote during GRPO (completions.jsonl): a few rows at a few steps, with each
    reward term, so a reward that rises for the wrong reason shows in its outputs."""
    samples = results.get("completions") or {}
    terms = list(
        dict.fromkeys(name for rows in samples.values() for row in rows for name in row.get("rewards", {}))
    )
    rows = []
    for stage, sample in samples.items():
        for row in sample:
            rows.append(
                [
                    stage,
                    str(row.get("step", "–")),
                    _cell(row.get("prompt_text", ""), 60),
                    _cell(row.get("completion_text", ""), 90),
                    _num(row.get("reward"), ".3f"),
                    *[_num(row.get("rewards", {}).get(term), ".3f") for term in terms],
                    _num(row.get("advantage"), "+.2f"),
                ]
            )
    if not rows:
        return None
    return (
        "Completions during GRPO (a sample of completions.jsonl)",
        ["stage", "step", "prompt", "completion", "reward", *terms, "advantage"],
        rows,
    )


def all_tables(results: dict[str, Any]) -> list[Table]:
    tables = [
        task_table(results),
        general_table(results),
        tax_table(results),
        drift_table(results),
        matched_table(results),
        preference_table(results),
        training_table(results),
        selection_table(results),
        tau_table(results),
        monitors_table(results),
        run_stall_table(results),
        completions_table(results),
    ]
    return [t for t in tables if t is not None]


def markdown(table: Table) -> str:
    title, header, rows = table
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
