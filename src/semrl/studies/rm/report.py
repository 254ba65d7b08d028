"""Tables, summary.md and report.html of `semrl rm transfer` (the figures live in rm/figures.py)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from semrl.evaluate.intervals import MISSING, format_interval
from semrl.files import atomic_write_text
from semrl.report.build import html_page
from semrl.report.tables import Table, markdown


def _acc(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("accuracy") is None or not cell.get("ci95"):  # no pairs: accuracy is null
        return MISSING if not cell else f"{MISSING} (n={cell.get('n', 0)})"
    return f"{format_interval(cell['accuracy'], cell['ci95'], '.3f')} (n={cell['n']})"


def matrix_table(result: dict[str, Any]) -> Table:
    langs = result["languages"]["eval"]
    rows = [
        [f"RM({train})"] + [_acc(result["matrix"][train].get(lang)) for lang in langs]
        for train in result["matrix"]
    ]
    return ("Pair accuracy: trained on (row) × evaluated on (column)", ["RM"] + langs, rows)


def category_table(result: dict[str, Any]) -> Table:
    rows = []
    for train, row in result["matrix"].items():
        for lang, cell in row.items():
            for category, entry in cell["categories"].items():
                rows.append([f"RM({train})", lang, category, _acc(entry)])
    return ("Pair accuracy per category", ["RM", "eval language", "category", "accuracy [95% CI]"], rows)


def comparison_table(result: dict[str, Any]) -> Table | None:
    comparison = result["reference_vs_native"]
    ref = comparison["reference"]
    if not comparison["languages"]:
        return None
    rows = [
        [
            lang,
            f"{v['reference_rm']:.3f}",
            f"{v['native_rm']:.3f}",
            format_interval(v["difference"], v["ci95"], "+.3f"),
            str(v["n"]),
        ]
        for lang, v in comparison["languages"].items()
    ]
    rows.append(["mean", "", "", f"{comparison['mean_difference']:+.3f}", ""])
    return (
        f"RM({ref}) vs. each language's own RM, on that language",
        ["language", f"RM({ref})", "own-language RM", "difference (paired 95% CI)", "pairs"],
        rows,
    )


def representation_table(result: dict[str, Any]) -> Table | None:
    rep = result.get("representation")
    if not rep:
        return None
    rows = []
    for model, per_language in rep["models"].items():
        for lang, entry in per_language.items():
            shift = rep["shift"].get(model, {}).get(lang)
            rows.append(
                [
                    model,
                    lang,
                    f"{entry['f']:.4f}",
                    f"{shift['delta_f']:+.4f}" if shift else "–",
                    f"{entry['norm']['mean']:.2f} ± {entry['norm']['std']:.2f}",
                    f"{shift['norm_ratio']:.3f}" if shift and shift["norm_ratio"] is not None else "–",
                ]
            )
    return (
        f"Representation shift (layer {rep['layer']}, last token): f = σ₁/Σσᵢ",
        ["model", "language", "f", "f − f(base)", "norm mean ± sd", "norm / base"],
        rows,
    )


def all_tables(result: dict[str, Any]) -> list[Table]:
    tables = [
        matrix_table(result),
        comparison_table(result),
        category_table(result),
        representation_table(result),
    ]
    return [t for t in tables if t is not None]


def write_report(out: Path, result: dict[str, Any], figures: list[Path]) -> None:
    tables = all_tables(result)
    summary = [
        f"# semrl rm transfer: {result['name']}",
        "",
        "Accuracy = share of pairs whose chosen response the RM scores strictly above the rejected one; "
        "intervals are 95% bootstrap percentiles over pairs.",
        "",
    ]
    summary += [markdown(table) for table in tables]
    summary += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    atomic_write_text(out / "summary.md", "\n".join(summary) + "\n")
    subtitle = f"output <code>{html.escape(str(out))}</code> · seed {result['seed']}"
    atomic_write_text(
        out / "report.html", html_page(f"semrl rm transfer: {result['name']}", subtitle, tables, figures)
    )
