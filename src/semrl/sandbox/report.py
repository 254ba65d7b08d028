"""The sandbox's own tables and figures for the run report: claims with their status, what the base
and the encoder can do before any tuning, the oracle's verdict per arm (with learning evidence),
the trade-off on oracle adequacy and the reward models. The report layer only renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.files import read_json
from semrl.report import build_report
from semrl.report.tables import Table
from semrl.sandbox.tradeoff import tradeoff_figure



def _num(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _ci(entry: dict[str, Any] | None, digits: int = 3, signed: bool = False) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    text = _num(entry["value"], digits, signed)
    ci = entry.get("ci95")
    return text + (f" [{_num(ci[0], digits, signed)}, {_num(ci[1], digits, signed)}]" if ci else "")


def claims_table(claims: list[dict[str, Any]]) -> Table:
    rows = [[c["id"], c["statement"], c["status"], c["reason"][:220]] for c in claims]
    return ("Claims of the paper in this run (oracle adequacy is the ground truth)", ["id", "claim", "status", "why"], rows)


def before_tuning_table(sandbox: dict[str, Any]) -> Table:
    t = sandbox.get("base_translation") or {}
    mix = sandbox.get("mix") or {}
    audit = sandbox.get("encoder_audit") or {}
    competence = sandbox.get("competence") or {}
    rows = [
        ["chance adequacy (source ignored, one random concept per slot)", _num(sandbox.get("chance"))],
        ["base: own H->L translation, adequacy ('H: <source>' / 'L:', its pretraining format)", _ci(t.get("adequacy"))],
        ["base: adequacy on concepts the narrow data covers / never shows",
         f"{_ci((t.get('coverage') or {}).get('covered'))} / {_ci((t.get('coverage') or {}).get('uncovered'))}"],
        ["base: distinct outputs over the test set", f"{t.get('distinct', '–')} of {t.get('n', '–')}"],
        ["base competence (held-out general suite)", "; ".join(
            f"{bench} " + ", ".join(f"{m} {v:.1f}" for m, v in scores.items()) for bench, scores in competence.items())],
        ["encoder retrieval accuracy before -> after training", f"{_num((sandbox.get('encoder') or {}).get('retrieval_accuracy_before'))}"
                                                              f" -> {_num((sandbox.get('encoder') or {}).get('retrieval_accuracy'))}"],
        ["encoder: a true L paraphrase outranks each corruption", ", ".join(
            f"{k} {v:.0%}" for k, v in (audit.get("paraphrase_above") or {}).items()) or "–"],
        ["encoder: code-mixed (all concepts right) vs pure L, similarity to the reference", ", ".join(
            f"{k} {v:.3f}" for k, v in (mix.get("similarity") or {}).items())],
        ["encoder: code-mixed outscores pure L with one / two wrong concepts",
         f"{_num(mix.get('mixed_above_pure_one_wrong'), 2)} / {_num(mix.get('mixed_above_pure_two_wrong'), 2)} of items"],
    ]
    return ("Before any tuning: the world, the base model and the reward encoder", ["what", "value"], rows)


def arms_table(sandbox: dict[str, Any]) -> Table:
    oracle, trends, movement = sandbox.get("oracle") or {}, sandbox.get("trend") or {}, sandbox.get("weight_movement") or {}
    rows = []
    for arm, scores in oracle.items():
        if not scores:
            continue
        coverage = scores.get("coverage") or {}
        trend = trends.get(arm)
        trend_text = "–"
        if trend and trend.get("value") is not None:
            trend_text = _ci(trend, 3, signed=True) + ("" if trend.get("learned") else " (did not learn)")
        move = (movement.get(arm) or {})
        moved = (move.get("grpo_from_cold_start") or move.get("from_base") or {}).get("relative")
        rows.append([arm, _ci(scores.get("adequacy")), _ci(coverage.get("covered")), _ci(coverage.get("uncovered")),
                     _num((scores.get("grammatical") or {}).get("value"), 2),
                     _num((scores.get("purity") or {}).get("value"), 2),
                     f"{scores.get('distinct', '–')}/{scores.get('n', '–')}", trend_text, _num(moved, 4)])
    return (f"Oracle verdict per arm on the test set (chance adequacy {_num(sandbox.get('chance'))}); reward trend = mean "
            "reward of the last 20% of GRPO steps minus the first 20%; weights moved = ||Δθ||/||θ|| of the last stage "
            "(GRPO: from the cold start)",
            ["arm", "adequacy", "covered concepts", "uncovered concepts", "grammatical", "L purity", "distinct outputs",
             "reward trend", "weights moved"], rows)


def tradeoff_table(sandbox: dict[str, Any]) -> Table | None:
    analysis = sandbox.get("tradeoff") or {}
    rows = [[_num(level["adequacy"]), _num(level["tax_rl"], 2), _num(level["tax_sft"], 2),
             _num(level["difference"], 2, signed=True) + (f" [{level['ci95'][0]:+.2f}, {level['ci95'][1]:+.2f}]"
                                                          if level.get("ci95") else "")]
            for level in analysis.get("levels") or []]
    if not rows:
        return None
    mean = analysis.get("mean_difference") or {}
    rows.append(["mean over the overlap", "", "", _ci(mean, 2, signed=True)])
    excluded = ", ".join(f"{a} ({why})" for a, why in (analysis.get("excluded") or {}).items())
    return (f"C2: alignment tax at matched oracle adequacy (RL arms pooled: {', '.join(analysis['methods']['rl'])}; "
            f"SFT arms pooled: {', '.join(analysis['methods']['sft'])}{'; excluded: ' + excluded if excluded else ''}). "
            f"{analysis.get('tax_axis', '')}: the sandbox's stand-ins for the paper's reading-comprehension tax; "
            "NLL and KL measure drift, not ability, and are reported beside it, not averaged in. "
            "Joint bootstrap over test and general items.",
            ["oracle adequacy", "tax RL", "tax SFT", "RL - SFT"], rows)


def reward_model_table(sandbox: dict[str, Any]) -> Table | None:
    rm = sandbox.get("reward_models") or {}
    if not rm:
        return None
    rows = []
    for key, label in (("rm_h", "trained on native H"), ("rm_l", "trained on machine-translated L"),
                       ("rm_l_native", "trained on native L (the ceiling)")):
        entry = rm.get(key)
        if isinstance(entry, dict):
            rows.append([label, _num(entry.get("accuracy_on_h"), 3), _num(entry.get("accuracy_on_l"), 3)])
    return ("Reward models: pair accuracy on held-out native pairs", ["reward model", "on H", "on L"], rows) if rows else None


def sandbox_tables(claims: list[dict[str, Any]], sandbox: dict[str, Any]) -> list[Table]:
    tables = [claims_table(claims), before_tuning_table(sandbox), arms_table(sandbox), tradeoff_table(sandbox),
              reward_model_table(sandbox)]
    return [t for t in tables if t is not None]


def sandbox_figures(sandbox: dict[str, Any], figures_dir: Path) -> list[Path]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = tradeoff_figure(sandbox.get("tradeoff") or {}, figures_dir / "tradeoff_oracle.png")
    return [path] if path else []


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
    return build_report(run_dir, extra_tables=sandbox_tables(claims, sandbox),
                        extra_figures=sandbox_figures(sandbox, run_dir / "figures"),
                        extra_results={"claims": claims, "sandbox": sandbox})
