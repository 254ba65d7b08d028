"""The sandbox's oracle as a semrl task metric: the worked example of a metric plugin.

The sandbox's experiment YAML names this module under `plugins:` and asks for `oracle` in
`eval.metrics`, with the world it judges in `eval.metric_options.oracle.world`. semrl then scores
every evaluated model with it (95% interval, per-output scores in `<name>.outputs.jsonl`, a column
in the report) as it does BLEU. A user's metric is the same few lines: a `MetricType` whose
`segments` returns one score per output, registered with `register_metric`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from semrl.api import CorpusScore, MetricInputs, MetricType, register_metric
from semrl.sandbox.grammar import Meaning
from semrl.sandbox.measures import load_world, test_meanings
from semrl.sandbox.oracle import judge
from semrl.sandbox.world import World


@lru_cache(maxsize=4)
def _world(folder: str) -> tuple[World, dict[int, Meaning]]:
    return load_world(Path(folder)), test_meanings(Path(folder))


def _check(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - {"world"})
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r}; the oracle takes world")
    folder = options.get("world")
    if not isinstance(folder, str) or not (Path(folder) / "world.json").is_file():
        raise ValueError(f"world: {folder!r} is not a sandbox world folder (no world.json)")


def adequacy(hyps: Sequence[str], refs: Sequence[str], inputs: MetricInputs) -> list[float]:
    """The share of the meaning's slots each output expresses in L; the meaning is the test row's
    (found by its id), not one parsed from the reference."""
    world, meanings = _world(str(inputs.options["world"]))
    if len(inputs.rows) != len(hyps):
        raise ValueError("oracle: needs the scored rows (their ids), one per output")
    return [
        judge(hyp, meanings[row["id"]], world.lexicon, "l").adequacy
        for hyp, row in zip(hyps, inputs.rows, strict=True)
    ]


SIGNATURE = "oracle|adequacy|slots:5"


def _corpus(hyps: Sequence[str], refs: Sequence[str], inputs: MetricInputs) -> CorpusScore:
    scores = adequacy(hyps, refs, inputs)
    return CorpusScore(sum(scores) / len(scores), SIGNATURE)


ORACLE = register_metric(
    MetricType(
        "oracle",
        "fraction 0..1",
        corpus=_corpus,
        segments=adequacy,
        signature=lambda hyps, refs, inputs: SIGNATURE,
        check_options=_check,
    )
)
