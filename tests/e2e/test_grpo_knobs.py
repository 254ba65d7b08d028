"""TRL's own GRPO settings passed through by TRL's names: refused up front when TRL would refuse them
(or when semrl cannot honour them), and doing what TRL documents when accepted. The completions
log shows what the policy wrote, with each reward term, in the run folder and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_cli
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
EXAMPLE = ROOT / "configs" / "examples" / "tiny-bo-zh.yaml"
GENERATIONS = 4
WEIGHTS = {"language": 1.5, "chrf": 1.0}


def write_config(path: Path, grpo: dict, gate: bool = False) -> Path:
    """zh -> bo with two reward terms of different kinds: a language share and syllable chrF."""
    rewards = {
        "rewards": [
            {"type": "language", "weight": WEIGHTS["language"], "lang": "bo", "mode": "continuous"},
            {"type": "chrf", "weight": WEIGHTS["chrf"], "lang": "bo"},
        ]
    }
    if gate:
        rewards["gate"] = {"type": "language", "lang": "bo"}
    config = {
        "name": "knobs",
        "model": {"tiny": {}},
        "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
        "data": {
            "train": str(BO_ZH),
            "columns": {"source": "reference", "reference": "source"},
            "test_size": 4,
        },
        "rewards": rewards,
        "grpo": {
            "max_steps": 2,
            "learning_rate": 1.0e-3,
            "num_generations": GENERATIONS,
            "prompts_per_step": 2,
            "max_completion_length": 12,
            "temperature": 1.0,
            "logging_steps": 1,
            "save_steps": 10,
            **grpo,
        },
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def one_line_refusal(result, *needles: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    for needle in needles:
        assert needle in line, line
    return line


def test_bogus_aggregation_is_refused_at_preflight_with_the_accepted_values(tmp_path):
    result = run_cli(
        "run",
        str(EXAMPLE),
        "--dry-run",
        "--out",
        str(tmp_path / "run"),
        "grpo.multi_objective_aggregation=bogus",
    )
    one_line_refusal(
        result, "grpo.multi_objective_aggregation", "'bogus'", "sum_then_normalize", "normalize_then_sum"
    )
    assert not (tmp_path / "run").exists()


def test_normalize_then_sum_with_a_gate_is_refused(tmp_path):
    config = write_config(
        tmp_path / "gated.yaml", {"multi_objective_aggregation": "normalize_then_sum"}, gate=True
    )
    result = run_cli("train", "grpo", "--config", str(config), "--out", str(tmp_path / "run"))
    one_line_refusal(result, "grpo.multi_objective_aggregation", "gate")


@pytest.mark.parametrize(
    "grpo, needles",
    [
        ({"generation_batch_size": 12}, ("grpo.generation_batch_size", "multiple", "8")),
        (
            {"generation_batch_size": 16, "steps_per_generation": 2},
            ("generation_batch_size", "steps_per_generation", "not both"),
        ),
    ],
)
def test_generation_batch_relations_are_refused(tmp_path, grpo, needles):
    config = write_config(tmp_path / "gen.yaml", grpo)
    one_line_refusal(
        run_cli("train", "grpo", "--config", str(config), "--out", str(tmp_path / "run")), *needles
    )


def logged(run: Path) -> list[dict]:
    lines = (run / "train" / "grpo" / "completions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def group_normalised(values: np.ndarray) -> np.ndarray:
    """(x - group mean) / (group std + 1e-4), std with Bessel's correction, as TRL computes it."""
    groups = values.reshape(-1, GENERATIONS)
    return ((groups - groups.mean(1, keepdims=True)) / (groups.std(1, ddof=1, keepdims=True) + 1e-4)).reshape(
        -1
    )


def expected_advantages(rows: list[dict], aggregation: str) -> np.ndarray:
    """TRL's documented rules. sum_then_normalize: sum w_i c_i, then normalise within each group.
    normalize_then_sum: normalise each c_i within its group, sum with the weights, then over the batch."""
    terms = {name: np.array([row["rewards"][name] for row in rows]) for name in WEIGHTS}
    if aggregation == "sum_then_normalize":
        return group_normalised(sum(WEIGHTS[name] * values for name, values in terms.items()))
    summed = sum(WEIGHTS[name] * group_normalised(values) for name, values in terms.items())
    return (summed - summed.mean()) / (summed.std(ddof=1) + 1e-4)


def test_aggregations_give_the_advantages_trl_documents_and_differ(tmp_path):
    """The same first generation batch (same seed, untrained model) under both aggregations: each run's
    logged advantages follow its documented rule from the logged reward terms, and they differ."""
    first_batch = {}
    for aggregation in ("sum_then_normalize", "normalize_then_sum"):
        config = write_config(
            tmp_path / f"{aggregation}.yaml",
            {"multi_objective_aggregation": aggregation, "log_completions": True},
        )
        run = tmp_path / aggregation
        result = run_cli("train", "grpo", "--config", str(config), "--out", str(run))
        assert result.returncode == 0, result.stderr[-3000:]
        rows = logged(run)
        assert sorted({row["step"] for row in rows}) == [1, 2]
        for step in (1, 2):
            batch = [row for row in rows if row["step"] == step]
            assert len(batch) == 2 * GENERATIONS and all(set(row["rewards"]) == set(WEIGHTS) for row in batch)
            total = [sum(WEIGHTS[name] * row["rewards"][name] for name in WEIGHTS) for row in batch]
            assert [row["reward"] for row in batch] == pytest.approx(total, abs=1e-6)
            assert [row["advantage"] for row in batch] == pytest.approx(
                list(expected_advantages(batch, aggregation)), abs=2e-3
            )
        first_batch[aggregation] = [row for row in rows if row["step"] == 1]
        history = json.loads((run / "train" / "grpo" / "log_history.json").read_text(encoding="utf-8"))
        assert all(f"reward/{name}" in history[0] for name in WEIGHTS)  # both modes log each term
    plain, normalised = first_batch["sum_then_normalize"], first_batch["normalize_then_sum"]
    assert [row["completion"] for row in plain] == [row["completion"] for row in normalised]
    assert not np.allclose(
        [row["advantage"] for row in plain], [row["advantage"] for row in normalised], atol=1e-2
    )


@pytest.mark.slow  # the whole example (~20 s); test_logging and test_training check its parts in CI
def test_example_with_tensorboard_and_normalize_then_sum_logs_terms_and_completions(tmp_path):
    """The example: event files with each reward term, and the completions log (on by default)
    with each term per completion, shown in the report."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(EXAMPLE),
        "--out",
        str(out),
        "report_to=tensorboard",
        "grpo.multi_objective_aggregation=normalize_then_sum",
        "grpo.max_steps=4",
        "grpo.logging_steps=2",
        "grpo.num_completions_to_print=3",
        "eval.resamples=20",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = sorted((Run(out).arm_stage("semantic_rl", "grpo") / "runs").glob("*/events.out.tfevents.*"))
    assert events
    tags = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    assert {"train/reward/semantic", "train/reward/language", "train/reward"} <= set(tags)
    rows = [
        json.loads(line)
        for line in (Run(out).arm_stage("semantic_rl", "grpo") / "completions.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    assert [row["step"] for row in rows] == [2, 2, 2, 4, 4, 4]  # capped by num_completions_to_print
    assert all(isinstance(row["completion"], str) and row["prompt"] for row in rows)
    assert all(set(row["rewards"]) == {"semantic", "language"} for row in rows)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    sample = results["completions"]["semantic_rl/grpo"]
    assert {row["step"] for row in sample} == {2, 4}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Completions during GRPO" in html and "<th>semantic</th>" in html and "<th>language</th>" in html
    assert "Completions during GRPO" in (out / "summary.md").read_text(encoding="utf-8")


def test_completions_log_can_be_turned_off(tmp_path):
    config = write_config(tmp_path / "off.yaml", {"max_steps": 1, "log_completions": False})
    result = run_cli("train", "grpo", "--config", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "train" / "grpo" / "final").is_dir()
    assert not (tmp_path / "run" / "train" / "grpo" / "completions.jsonl").exists()
