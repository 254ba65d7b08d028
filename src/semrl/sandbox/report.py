"""The sandbox's own tables and figures for the run report: claims with their status, what the base
and the encoder can do before any tuning, the oracle's verdict per arm (with learning evidence),
the trade-off on oracle adequacy and the reward models. The report layer only renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.api import MISSING, Table, build_report, format_interval, read_json, stall_table
from semrl.sandbox.claims import claim_key
from semrl.sandbox.tradeoff import tradeoff_figure


def _num(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _ci(entry: dict[str, Any] | None, digits: int = 3, signed: bool = False) -> str:
    spec = f"{'+' if signed else ''}.{digits}f"
    return format_interval(entry.get("value"), entry.get("ci95"), spec) if entry else MISSING


def claims_table(claims: list[dict[str, Any]]) -> Table:
    rows = []
    for c in claims:
        arms = (c.get("evidence") or {}).get("arms") or {}
        read = (
            ", ".join(f"{k} {v}" for k, v in arms.items() if v)
            if isinstance(arms, dict)
            else ", ".join(map(str, arms))
        ) or "–"
        rows.append(
            [
                claim_key(c),
                c["statement"],
                c["status"],
                read,
                c["reason"][:220],
            ]
        )
    return (
        "Claims of the paper in this run (oracle adequacy is the ground truth). Points read: each method's "
        "best (arm@step) on dev over its learning rates and checkpoints; C2: frontiers over every point",
        ["id", "claim", "status", "points read", "why"],
        rows,
    )


_HACKABLE: dict[Any, str] = {True: "hackable", False: "no"}  # the audit's verdict, absent: "–"


def audit_table(sandbox: dict[str, Any]) -> Table | None:
    """The demo's two rewards audited before any RL: paraphrase vs corruptions, and the constant output."""
    audit = sandbox.get("encoder_audit") or {}
    variants = {k: v for k, v in audit.items() if isinstance(v, dict) and "mean" in v}
    if not variants:
        return None
    rows = []
    for variant, result in variants.items():
        above = result.get("paraphrase_above") or {}
        worst = min(above.items(), key=lambda kv: kv[1]) if above else None
        constant = result.get("constant") or {}
        rows.append(
            [
                variant,
                ", ".join(f"{k} {v:.0%}" for k, v in above.items()) or "–",
                f"{worst[0]} {worst[1]:.0%}" if worst else "–",
                _num(constant.get("share"), 2),
                _num((constant.get("components") or {}).get("semantic"), 2),
                _HACKABLE.get(constant.get("hackable"), "–"),
            ]
        )
    return (
        "Reward audit on the sandbox encoder, before any RL (1.5 x semantic + 1.0 x language, tau 0): how "
        "often a true L paraphrase outranks each corruption, and the constant-output attack (one sentence, "
        "the reference most similar to all others, for every row) as a share of the paraphrase's reward: "
        "total, and the semantic term alone (the language term pays every L output alike and cancels in "
        "GRPO's advantage)",
        [
            "reward",
            "paraphrase above",
            "weakest",
            "constant / paraphrase (total)",
            "(semantic term)",
            "constant",
        ],
        rows,
    )


def selection_table(sandbox: dict[str, Any]) -> Table | None:
    selection = sandbox.get("selection") or {}
    chosen = selection.get("chosen") or {}
    if not chosen:
        return None
    beats = selection.get("beats_cold") or {}
    rows = []
    for method, entry in chosen.items():
        scores = entry.get("dev_adequacy") or {}
        best = sorted(scores.items(), key=lambda item: -item[1])[:3]
        coverage = entry.get("dev_coverage") or {}
        versus = beats.get(method)
        rows.append(
            [
                method,
                entry.get("key") or "none",
                _num(scores.get(entry.get("key") or "")),
                f"{_ci(coverage.get('covered'))} / {_ci(coverage.get('uncovered'))}",
                "–"
                if versus is None
                else ("yes" if versus.get("beats") else "no")
                + f" (cold {_num(versus.get('cold_dev_adequacy'))})",
                f"{len(scores)} points; best: " + ", ".join(f"{k} {_num(v)}" for k, v in best),
            ]
        )
    return (
        "Each method's point chosen on the dev split: the (arm, checkpoint) with the highest oracle adequacy "
        "on dev over every learning rate and kept checkpoint; claims are read on test from these points",
        [
            "method",
            "point",
            "dev adequacy",
            "dev covered / uncovered",
            "beats cold start on dev",
            "candidates",
        ],
        rows,
    )


def monitors_table(sandbox: dict[str, Any]) -> Table | None:
    monitors = sandbox.get("monitors") or {}
    arms = monitors.get("arms") or {}
    if not arms:
        return None
    rows = []
    for arm, entry in arms.items():
        check, oracle = entry.get("monitors") or {}, entry.get("oracle") or {}
        trends = check.get("trends") or {}
        rows.append(
            [
                arm,
                _ci(trends.get("reward"), 3, True),
                _ci(trends.get("monitor/retrieval"), 3, True),
                _ci(trends.get("monitor/distinct"), 3, True),
                _ci(trends.get("monitor/hub"), 3, True),
                "WARNING" if entry.get("warning") else "–",
                f"{oracle.get('class') or '–'} ({oracle.get('reason', '')})",
            ]
        )
    return (
        "Hacking monitors (no oracle: logged during GRPO, last fifth of steps minus first) against the "
        "oracle (learned = test adequacy rose over the cold start; hacked = reward rose while adequacy "
        "did not; flat = neither)",
        ["arm", "reward trend", "retrieval trend", "distinct trend", "hub trend", "monitors", "oracle"],
        rows,
    )


def confusion_table(sandbox: dict[str, Any]) -> Table | None:
    confusion = (sandbox.get("monitors") or {}).get("confusion")
    if not confusion:
        return None
    kinds = ("hacked", "learned", "flat")
    rows = [
        [label, *(str(confusion[flag][kind]) for kind in kinds)]
        for flag, label in (("flagged", "monitors warned"), ("not_flagged", "no warning"))
    ]
    return (
        "The monitors' confusion table over every RL arm: the warning (no oracle) against the oracle's class",
        ["", *kinds],
        rows,
    )


def before_tuning_table(sandbox: dict[str, Any]) -> Table:
    t = sandbox.get("base_translation") or {}
    mix = sandbox.get("mix") or {}
    competence = sandbox.get("competence") or {}
    rows = [
        ["chance adequacy (source ignored, one random concept per slot)", _num(sandbox.get("chance"))],
        [
            "base: own H->L translation, adequacy ('H: <source>' / 'L:', its pretraining format)",
            _ci(t.get("adequacy")),
        ],
        [
            "base: adequacy on concepts the narrow data covers / never shows",
            f"{_ci((t.get('coverage') or {}).get('covered'))} / "
            f"{_ci((t.get('coverage') or {}).get('uncovered'))}",
        ],
        ["base: distinct outputs over the test set", f"{t.get('distinct', '–')} of {t.get('n', '–')}"],
        [
            "base competence (held-out general suite)",
            "; ".join(
                f"{bench} " + ", ".join(f"{m} {v:.1f}" for m, v in scores.items())
                for bench, scores in competence.items()
            ),
        ],
        [
            "encoder retrieval accuracy before -> after training",
            f"{_num((sandbox.get('encoder') or {}).get('retrieval_accuracy_before'))}"
            f" -> {_num((sandbox.get('encoder') or {}).get('retrieval_accuracy'))}",
        ],
        [
            "encoder: code-mixed (all concepts right) vs pure L, similarity to the reference",
            ", ".join(f"{k} {v:.3f}" for k, v in (mix.get("similarity") or {}).items()),
        ],
        [
            "encoder: code-mixed outscores pure L with one / two wrong concepts",
            f"{_num(mix.get('mixed_above_pure_one_wrong'), 2)} / "
            f"{_num(mix.get('mixed_above_pure_two_wrong'), 2)} of items",
        ],
    ]
    return ("Before any tuning: the world, the base model and the reward encoder", ["what", "value"], rows)


def arms_table(sandbox: dict[str, Any]) -> Table:
    oracle, trends, movement = (
        sandbox.get("oracle") or {},
        sandbox.get("trend") or {},
        sandbox.get("weight_movement") or {},
    )
    rows = []
    for arm, scores in oracle.items():
        if not scores:
            continue
        coverage = scores.get("coverage") or {}
        trend = trends.get(arm)
        trend_text = "–"
        if trend and trend.get("value") is not None:
            trend_text = _ci(trend, 3, signed=True) + ("" if trend.get("learned") else " (interval spans 0)")
        move = movement.get(arm) or {}
        moved = (move.get("grpo_from_cold_start") or move.get("from_base") or {}).get("relative")
        rows.append(
            [
                arm,
                _ci(scores.get("adequacy")),
                _ci(coverage.get("covered")),
                _ci(coverage.get("uncovered")),
                _num((scores.get("grammatical") or {}).get("value"), 2),
                _num((scores.get("purity") or {}).get("value"), 2),
                f"{scores.get('distinct', '–')}/{scores.get('n', '–')}",
                trend_text,
                _num(moved, 4),
            ]
        )
    return (
        f"Oracle verdict per arm on the test set (chance adequacy {_num(sandbox.get('chance'))}); reward "
        "trend = mean reward of the last 20% of GRPO steps minus the first 20%; weights moved = "
        "||Δθ||/||θ|| of the last stage (GRPO: from the cold start)",
        [
            "arm",
            "adequacy",
            "covered concepts",
            "uncovered concepts",
            "grammatical",
            "L purity",
            "distinct outputs",
            "reward trend",
            "weights moved",
        ],
        rows,
    )


def tradeoff_tables(sandbox: dict[str, Any]) -> list[Table]:
    analyses = sandbox.get("tradeoffs") or {}
    tables = []
    for variant, analysis in analyses.items():
        table = tradeoff_table(analysis or {}, f"{variant} reward, frontiers")
        if table is not None:
            tables.append(table)
    return tables


def tradeoff_table(analysis: dict[str, Any], label: str = "") -> Table | None:
    rows = [
        [
            _num(level["adequacy"]),
            _num(level["tax_rl"], 2),
            _num(level["tax_sft"], 2),
            format_interval(level["difference"], level.get("ci95"), "+.2f"),
        ]
        for level in analysis.get("levels") or []
    ]
    if not rows:
        return None
    mean = analysis.get("mean_difference") or {}
    rows.append(["mean over the overlap", "", "", _ci(mean, 2, signed=True)])
    return (
        f"C2 ({label}): alignment tax at matched oracle adequacy (RL arms pooled: "
        f"{', '.join(analysis['methods']['rl'])}; SFT arms pooled: "
        f"{', '.join(analysis['methods']['sft'])}). "
        f"{analysis.get('tax_axis', '')}: the sandbox's stand-ins for the paper's reading-comprehension tax; "
        "NLL and KL measure drift, not ability, and are reported beside it, not averaged in. Joint "
        "bootstrap over test and general items.",
        ["oracle adequacy", "tax RL", "tax SFT", "RL - SFT"],
        rows,
    )


def reward_model_table(sandbox: dict[str, Any]) -> Table | None:
    rm = sandbox.get("reward_models") or {}
    if not rm:
        return None
    rows = []
    for key, label in (
        ("rm_h", "trained on native H"),
        ("rm_l", "trained on machine-translated L"),
        ("rm_l_native", "trained on native L (the ceiling)"),
    ):
        entry = rm.get(key)
        if isinstance(entry, dict):
            rows.append([label, _num(entry.get("accuracy_on_h"), 3), _num(entry.get("accuracy_on_l"), 3)])
    return (
        ("Reward models: pair accuracy on held-out native pairs", ["reward model", "on H", "on L"], rows)
        if rows
        else None
    )


def sandbox_tables(claims: list[dict[str, Any]], sandbox: dict[str, Any]) -> list[Table]:
    tables = [
        claims_table(claims),
        before_tuning_table(sandbox),
        audit_table(sandbox),
        arms_table(sandbox),
        selection_table(sandbox),
        stall_table(sandbox.get("stall") or {}, "arm"),
        monitors_table(sandbox),
        confusion_table(sandbox),
        *tradeoff_tables(sandbox),
        reward_model_table(sandbox),
    ]
    return [t for t in tables if t is not None]


def sandbox_figures(sandbox: dict[str, Any], figures_dir: Path) -> list[Path]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    analyses = sandbox.get("tradeoffs") or {}
    paths = [
        tradeoff_figure(analysis or {}, figures_dir / f"tradeoff_oracle_{variant}.png", variant)
        for variant, analysis in analyses.items()
    ]
    return [p for p in paths if p]


def demo_run_dir(path: Path) -> Path | None:
    """The demo's MT run inside `path` (the `--out` folder or its `mt/`), when the demo wrote its
    claims there; None for any other run directory."""
    for candidate in (Path(path), Path(path) / "mt"):
        if (candidate / "claims.json").exists() and (candidate / "sandbox.json").exists():
            return candidate
    return None


def build_demo_report(run_dir: Path) -> dict[str, Path]:
    """The demo's report with its own tables and figure, from the claims.json and sandbox.json it
    wrote; `semrl report` on a demo folder rebuilds the same report the demo wrote."""
    claims, sandbox = read_json(run_dir / "claims.json"), read_json(run_dir / "sandbox.json")
    return build_report(
        run_dir,
        extra_tables=sandbox_tables(claims, sandbox),
        extra_figures=sandbox_figures(sandbox, run_dir / "figures"),
        extra_results={"claims": claims, "sandbox": sandbox},
    )
