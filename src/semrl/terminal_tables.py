"""Readable terminal tables (rich) for the score, reward and audit commands."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from semrl.evaluate.intervals import format_interval
from semrl.studies.rm.report import comparison_table, matrix_table

console = Console()

_LABELS = {
    "bleu": ("BLEU", "0-100"),
    "chrf": ("chrF++", "0-100"),
    "rougeL": ("ROUGE-L F1", "0-100"),
    "sim": ("semantic similarity (to reference)", "cosine, -1..1"),
    "sim_src": ("semantic similarity (to source)", "cosine, -1..1"),
    "lang": ("language consistency", "fraction, 0..1"),
}


def score_table(result: dict[str, Any]) -> None:
    table = Table(title=f"semrl score  (n = {result['n']} segments)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("scale")
    table.add_column("signature", overflow="fold")
    for key, (label, scale) in _LABELS.items():
        if key in result:
            table.add_row(label, f"{result[key]:.4f}", scale, result["signatures"].get(key, ""))
    console.print(table)


def reward_summary_table(summary: dict[str, Any]) -> None:
    table = Table(title=f"semrl reward  (n = {summary['n']} rows -> {summary['output']})")
    table.add_column("term")
    table.add_column("batch mean", justify="right")
    table.add_row("reward", f"{summary['reward']:.4f}")
    for name, value in summary["components"].items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)


def audit_tables(result: dict[str, Any]) -> None:
    kinds = [k for k in result["candidates"] if any(k in e["mean"] for e in result["scores"].values())]
    for name, entry in result["scores"].items():
        title = f"{name}" + ("" if name == "total" else f"  (weight {entry['weight']:g})")
        table = Table(title=f"reward audit: {title}  ({result['n_rows']} references)")
        table.add_column("candidate")
        table.add_column("mean score", justify="right")
        table.add_column("copy ranked above", justify="right")
        table.add_column("ties", justify="right")
        has_paraphrase = bool(entry.get("paraphrase_above"))
        if has_paraphrase:
            table.add_column("paraphrase ranked above", justify="right")
        shares = entry.get("share") or {}
        if shares:
            table.add_column(f"share of {entry['share_of']}", justify="right")
        for kind in kinds:
            if kind not in entry["mean"]:
                continue
            above = entry["copy_above"].get(kind)
            ties = entry["ties"].get(kind)
            cells = [
                kind,
                f"{entry['mean'][kind]:.3f}",
                "" if above is None else f"{above:.0%}",
                "" if ties is None else f"{ties:.0%}",
            ]
            if has_paraphrase:
                para = entry["paraphrase_above"].get(kind)
                cells.append("" if para is None else f"{para:.0%}")
            if shares:
                cells.append(f"{shares[kind]:.0%}")
            table.add_row(*cells)
        console.print(table)
    if result["hackable"]:
        for item in result["hackable"]:
            console.print(
                f"[yellow]hackable:[/yellow] the total reward ranks the {item.get('against', 'copy')} above "
                f"'{item['candidate']}' only {item.get('rate', item['copy_above']):.0%} of the time"
            )
    else:
        console.print("[green]no corruption reaches the reference's total reward[/green]")
    constant = result.get("constant")
    if constant:
        console.print(constant_line(constant), soft_wrap=True)


def constant_line(constant: dict[str, Any]) -> str:
    """One line on the constant-output attack: its share of a true translation's reward, the flag."""
    if constant["text"] is None:
        return f"constant: not tried ({constant['chosen_by']})"
    if constant["share"] is None:
        amount = (
            f"mean {constant['mean']:.3f} against the {constant['baseline']}'s "
            f"{constant['baseline_mean']:.3f}"
        )
    else:
        amount = f"{constant['share']:.0%} of the {constant['baseline']}'s total reward"
    flag = "[yellow]hackable[/yellow]" if constant["hackable"] else "[green]not hackable[/green]"
    return (
        f"constant: one output for every row, {constant['text']!r}, earns {amount}: {flag} "
        f"(limit {constant['limit']:.0%})"
    )


def transfer_table(summary: dict[str, Any]) -> None:
    metrics = list(next(iter(summary["starts"].values()))["task"])
    table = Table(title=f"few-shot transfer: arm {summary['arm']}, k = {summary['k']}")
    table.add_column("start")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for name, entry in summary["starts"].items():
        cells = []
        for metric in metrics:
            m = entry["task"][metric]
            cells.append(format_interval(m["value"], m["ci95"], ".4g"))
        table.add_row(name, *cells)
    console.print(table)
    for key, diff in summary["differences"].items():
        low, high = diff["ci95"]
        console.print(
            f"{key} ({diff['metric']}): {diff['difference']:+.4f}  95% CI [{low:+.4f}, {high:+.4f}]"
        )


def claims_summary(result: dict[str, Any]) -> None:
    table = Table(title="semrl demo: the paper's claims in the sandbox")
    for name in ("id", "claim", "status", "why"):
        table.add_column(name)
    colour = {"reproduced": "green", "not reproduced": "red", "not testable": "yellow"}
    for claim in result["claims"]:
        status = claim["status"]
        key = claim["id"] + (f" ({claim['variant']})" if claim.get("variant") else "")
        table.add_row(
            key, claim["statement"], f"[{colour[status]}]{status}[/{colour[status]}]", claim["reason"]
        )
    console.print(table)
    timings = result["sandbox"]["timings"]
    console.print(
        f"time: {timings['total']:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items() if k != 'total')})"
    )
    console.print(f"report: {result['report']}")


def seeds_summary(result: dict[str, Any]) -> None:
    table = Table(
        title=f"semrl demo over {result['seeds']} seeds (world regenerated per seed): claim status counts"
    )
    for name in ("id", "claim", "reproduced", "not reproduced", "not testable"):
        table.add_column(name, justify="right" if name not in ("id", "claim") else "left")
    for claim_id, claim in result["claims"].items():
        counts = claim["counts"]
        table.add_row(
            claim_id,
            claim["statement"],
            *(str(counts.get(s, 0)) for s in ("reproduced", "not reproduced", "not testable")),
        )
    console.print(table)


def rm_transfer_summary(result: dict[str, Any], out: str) -> None:
    for title, header, rows in [t for t in (matrix_table(result), comparison_table(result)) if t]:
        table = Table(title=title)
        for name in header:
            table.add_column(name)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(
        f"written: {out}/rm_transfer.json, summary.md, report.html, figures/ ({result['seconds']:.0f} s)"
    )


def best_of_n_summary(result: dict[str, Any]) -> None:
    console.print(
        f"best-of-n: {result['prompts']} prompts, {result['candidates']} candidates; mean score "
        f"{result['mean_score']:.4f}, mean best {result['mean_best_score']:.4f}; first candidate best in "
        f"{result['first_is_best']:.0%}" + (f"; written {result['output']}" if result["output"] else "")
    )
