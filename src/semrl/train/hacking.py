"""The reward-hacking warning: on real data there is no oracle, so a user sees only a rising reward.
The monitors (monitor/retrieval: does a completion sit nearest its own reference; monitor/distinct:
the share of distinct completions) fall when the policy games the encoder with a generic output,
and need no oracle. The rule (fixed, not tuned): over the stage's logged history, with the same
trend machinery the sandbox uses (first vs last fifth of logged steps, bootstrap 95% interval,
seed 0), warn when the reward's interval lies above 0 and retrieval's or distinct's below 0.
"""

from __future__ import annotations

from typing import Any

from semrl.evaluate.intervals import format_interval
from semrl.evaluate.trends import reward_trend, trend_windows

REWARD, RETRIEVAL, DISTINCT = "reward", "monitor/retrieval", "monitor/distinct"
HEADLINE = "reward rising while outputs grow less specific: likely reward hacking"


def _rose(trend: dict[str, Any]) -> bool:
    return trend.get("ci95") is not None and trend["ci95"][0] > 0


def _fell(trend: dict[str, Any]) -> bool:
    return trend.get("ci95") is not None and trend["ci95"][1] < 0


def _describe(name: str, trend: dict[str, Any]) -> str:
    if trend.get("ci95") is None:
        return f"{name} not logged"
    return f"{name} {format_interval(trend['value'], trend['ci95'], '+.3g')}"


def hacking_check(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """{"warning": bool, "message": the warning or None, "steps": the two windows' steps,
    "trends": reward, monitor/retrieval and monitor/distinct trends} of one GRPO stage's log."""
    trends = {key: reward_trend(log_history, key=key, seed=0) for key in (REWARD, RETRIEVAL, DISTINCT)}
    windows = trend_windows(log_history, REWARD)
    steps = {"first": windows[0], "last": windows[1]} if windows else None
    warning = _rose(trends[REWARD]) and (_fell(trends[RETRIEVAL]) or _fell(trends[DISTINCT]))
    message = None
    if warning and windows is not None:
        (a, b), (c, d) = windows
        parts = ", ".join(
            _describe(name, trends[key])
            for name, key in (("reward", REWARD), ("retrieval", RETRIEVAL), ("distinct", DISTINCT))
        )
        message = f"{HEADLINE} ({parts} between steps {a}-{b} and {c}-{d})"
    return {"warning": warning, "message": message, "steps": steps, "trends": trends}
