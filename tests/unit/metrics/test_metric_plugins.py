"""A metric from outside semrl: named under `plugins:`, registered on import, then scored by
evaluation like semrl's own, with the rows and the options it reads; mistakes refused before a run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import cli_in_process, experiment, stderr_lines
from semrl.evaluate.task import evaluate_task
from semrl.experiment_config import load_experiment
from semrl.metrics.registry import MetricType, metric_names, metric_type, register_metric

PLUGIN = Path(__file__).resolve().parents[2] / "data" / "plugins" / "length_ratio.py"


def refused(config: Path, *fragments: str) -> None:
    result = cli_in_process("run", str(config), "--dry-run", "--out", str(config.parent / "run"))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not (config.parent / "run").exists()


def test_a_plugin_file_relative_to_the_config_registers_a_metric_evaluation_scores(tmp_path):
    relative = os.path.relpath(PLUGIN, tmp_path)
    config = experiment(
        tmp_path,
        plugins=[relative],
        eval={"metrics": ["chrf", "length_ratio"], "metric_options": {"length_ratio": {"against": "source"}}},
    )
    exp = load_experiment(config)
    assert exp.plugins == [str(PLUGIN)]  # resolved against the config's folder, not the working one
    assert "length_ratio" in metric_names()
    rows = [{"id": 0, "source": "abcd", "reference": "ab"}, {"id": 1, "source": "ab", "reference": "abcd"}]
    results, segments = evaluate_task(
        "translate",
        ["ab", "ab"],
        [row["reference"] for row in rows],
        "zh",
        resamples=20,
        metrics=exp.eval.metrics,
        rows=rows,
        options=exp.eval.metric_options,
    )
    assert segments["length_ratio"] == [0.5, 1.0]  # against the sources, as the options ask
    assert results["length_ratio"]["value"] == pytest.approx(0.75)
    assert (
        results["length_ratio"]["scale"] == "ratio"
        and results["length_ratio"]["signature"] == "length_ratio|chars"
    )
    assert list(results) == ["chrf", "length_ratio"]
    by_reference, _ = evaluate_task(
        "translate", ["ab", "ab"], ["ab", "abcd"], "zh", resamples=20, metrics=["length_ratio"], rows=rows
    )
    assert by_reference["length_ratio"]["value"] == pytest.approx(0.75)


def test_the_dry_run_refuses_a_plugin_it_cannot_import(tmp_path):
    refused(experiment(tmp_path, plugins=["no_such_plugin_module"]), "plugins", "no_such_plugin_module")
    refused(experiment(tmp_path, plugins=["./missing.py"]), "plugins", "missing.py", "no such file")


def test_the_dry_run_refuses_options_no_metric_reads(tmp_path):
    plugin = {"plugins": [str(PLUGIN)]}
    refused(
        experiment(tmp_path, **plugin, eval={"metrics": ["chrf"], "metric_options": {"length_ratio": {}}}),
        "eval.metric_options: 'length_ratio' is not among the metrics evaluated",
    )
    refused(
        experiment(
            tmp_path,
            **plugin,
            eval={"metrics": ["length_ratio"], "metric_options": {"length_ratio": {"against": "nothing"}}},
        ),
        "eval.metric_options.length_ratio: ",
        "against: reference | source",
    )
    refused(
        experiment(tmp_path, eval={"metrics": ["chrf"], "metric_options": {"chrf": {"order": 4}}}),
        "eval.metric_options.chrf: this metric takes no options",
    )
    refused(experiment(tmp_path, eval={"metrics": ["chrf", "nope"]}), "eval.metrics: unknown metric 'nope'")


def test_a_taken_name_is_not_registered_again():
    with pytest.raises(ValueError, match="'bleu' is already registered"):
        register_metric(
            MetricType("bleu", "0-100", corpus=metric_type("chrf").corpus, segments=lambda h, r, i: [])
        )
    assert register_metric(metric_type("bleu")) is metric_type("bleu")  # the same entry twice: harmless
