"""Collect a run's numbers into results.json and render summary.md, figures/*.png, report.html."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from semrl.config_files import load_yaml
from semrl.errors import UserError
from semrl.evaluate.task import primary_metric
from semrl.evaluate.tradeoff import matched_quality
from semrl.files import DAMAGED_RUN, atomic_write_json, atomic_write_text, read_json
from semrl.report.figures import metrics_figure, tradeoff_figure, training_figure
from semrl.report.monitors import monitors_figure
from semrl.report.tables import all_tables, markdown
from semrl.rewards.base import as_text
from semrl.run_folder import Run
from semrl.run_lock import run_lock
from semrl.train.completions import read_completions


def _evaluation(path: Path, run_root: Path, name: str) -> dict[str, Any]:
    """eval/<name>.json; a damaged one is named, with the command that writes it again."""
    again = f"write it again with: semrl eval {run_root}" + ("" if name == "base" else f" --arm {name}")
    result = read_json(path, remedy=again)
    if not isinstance(result, dict):
        raise UserError(f"{path}: damaged (not a JSON object); {again}")
    return result


def read_run(run_root: Path) -> dict[str, Any]:
    """The run's config, manifest and evaluations, as results.json lists them."""
    eval_dir = run_root / "eval"
    if not (run_root / "config.yaml").exists():
        raise UserError(f"{run_root}: not a semrl run directory (no config.yaml)")
    if not (eval_dir / "base.json").exists():
        raise UserError(f"{run_root}: no evaluation yet; run `semrl eval {run_root}` first")
    config = load_yaml(run_root / "config.yaml")
    path = run_root / "manifest.json"
    manifest = read_json(path, remedy=DAMAGED_RUN) if path.exists() else {}
    if not isinstance(manifest, dict):
        raise UserError(f"{run_root / 'manifest.json'}: damaged (not a JSON object); {DAMAGED_RUN}")
    order = ["base"] + [arm["name"] for arm in config.get("arms", []) if isinstance(arm, dict)]
    arms = {}
    for name in order:
        path = eval_dir / f"{name}.json"
        if path.exists():
            arms[name] = _evaluation(path, run_root, name)
    preference_path = eval_dir / "preference.json"
    return {
        "name": config["name"],
        "run_dir": str(run_root),
        "seed": manifest.get("seed"),
        "git_commit": manifest.get("git_commit"),
        "versions": manifest.get("versions", {}),
        "task": config["task"],
        "arms": arms,
        "alignment_tax": {name: arm.get("alignment_tax", {}) for name, arm in arms.items() if name != "base"},
        "preference": read_json(preference_path) if preference_path.exists() else {},
        "training": {
            key: value for key, value in manifest.get("stages", {}).items() if not key.startswith("_")
        },
        "completions": completions_sample(run_root),
    }


def gather_results(run_root: Path) -> dict[str, Any]:
    """Every number of a run (what results.json holds, less the figure paths): the evaluations
    collected, and the arms compared at matched target quality along their curves."""
    results = read_run(run_root)
    results["matched_quality"] = matched_quality(results)
    return results


def completions_sample(run_root: Path, steps: int = 3, per_step: int = 2) -> dict[str, list[dict[str, Any]]]:
    """Per GRPO stage with a completions.jsonl: `per_step` rows at the first, middle and last logged
    step, prompts and completions as plain text for the report."""
    sample = {}
    for key, folder in Run(run_root).stage_folders().items():
        path = folder / "completions.jsonl"
        if not key.endswith("/grpo") or not path.is_file():
            continue
        rows = read_completions(path)
        logged = sorted({row["step"] for row in rows if isinstance(row.get("step"), int)})
        picked = sorted({logged[0], logged[len(logged) // 2], logged[-1]})[:steps] if logged else []
        sample[key] = [
            {
                **{key: row.get(key) for key in ("step", "reward", "rewards", "advantage")},
                "prompt_text": as_text(row.get("prompt")),
                "completion_text": as_text(row.get("completion")),
            }
            for step in picked
            for row in [r for r in rows if r.get("step") == step][:per_step]
        ]
    return sample


def _primary(results: dict[str, Any]) -> str:
    return primary_metric(list(next(iter(results["arms"].values()))["task"]))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></figure>'


def html_page(title: str, subtitle: str, tables: list, figures: list[Path]) -> str:
    """A self-contained page: tables (title, header, rows) then figures inlined as base64 PNG."""
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{subtitle}</p>"]
    for table_title, header, rows in tables:
        parts.append(
            f"<h2>{html.escape(table_title)}</h2><table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in header)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
            + "</tbody></table>"
        )
    if figures:
        parts.append("<h2>Figures</h2>" + "".join(_img(p) for p in figures))
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}code{background:#f5f5f5}"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>" + "\n".join(parts) + "</body></html>\n"
    )


def render_html(results: dict[str, Any], figures: list[Path], tables: list | None = None) -> str:
    subtitle = (
        f"run <code>{html.escape(results['run_dir'])}</code> · seed {results['seed']} · commit "
        f"<code>{html.escape(str(results['git_commit']))}</code> · trl "
        f"{html.escape(results['versions'].get('trl', '?'))}"
    )
    return html_page(
        f"semrl report: {results['name']}",
        subtitle,
        tables if tables is not None else all_tables(results),
        figures,
    )


def build_report(
    run_root: Path,
    extra_tables: list | None = None,
    extra_figures: list[Path] | None = None,
    extra_results: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """results.json, summary.md and report.html of a run. A caller with its own analysis (the
    sandbox: claims, oracle) passes its results, its tables (shown first) and its figures; the
    report only renders them."""
    run_root = Path(run_root)
    if not (run_root / "config.yaml").exists():
        raise UserError(f"{run_root}: not a semrl run directory (no config.yaml)")
    with run_lock(run_root):
        return _build_report(run_root, extra_tables, extra_figures, extra_results)


def _build_report(
    run_root: Path,
    extra_tables: list | None,
    extra_figures: list[Path] | None,
    extra_results: dict[str, Any] | None,
) -> dict[str, Path]:
    results = {**(extra_results or {}), **gather_results(run_root)}
    figures_dir = run_root / "figures"
    figures_dir.mkdir(exist_ok=True)
    primary = _primary(results)
    figures = [
        f
        for f in (
            tradeoff_figure(results, primary, figures_dir / "tradeoff.png"),
            metrics_figure(results, figures_dir / "task_metrics.png"),
            training_figure(run_root, figures_dir / "training.png"),
            monitors_figure(run_root, figures_dir / "monitors.png"),
        )
        if f is not None
    ] + [f for f in extra_figures or [] if f is not None]
    tables = list(extra_tables or []) + all_tables(results)
    results["figures"] = [str(f.relative_to(run_root)) for f in figures]
    atomic_write_json(run_root / "results.json", results)
    summary = [
        f"# semrl report: {results['name']}",
        "",
        f"Run `{run_root}`, seed {results['seed']}, commit `{results['git_commit']}`. "
        "Intervals are 95% bootstrap percentiles over test items.",
        "",
    ]
    summary += [markdown(table) for table in tables]
    summary += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    atomic_write_text(run_root / "summary.md", "\n".join(summary) + "\n")
    atomic_write_text(run_root / "report.html", render_html(results, figures, tables))
    return {
        "results": run_root / "results.json",
        "summary": run_root / "summary.md",
        "html": run_root / "report.html",
        "figures": figures_dir,
    }
