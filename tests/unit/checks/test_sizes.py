"""Size relations that cannot work are refused by `semrl run --dry-run` (exit 2, one line naming the
field and the numbers, nothing written), and a configuration it accepts really trains: every stage
has rows, every GRPO step whole prompt batches, every completion room in the context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from conftest import BO_ZH, cli_in_process, stderr_lines

CHRF = {"rewards": [{"type": "chrf", "weight": 1.0, "lang": "zh"}]}
BO_ZH_ROWS = BO_ZH.read_text(encoding="utf-8").splitlines()  # 84 rows
POSITIONS = 64  # context of the small tiny models below


def config(folder: Path, arms: list[dict[str, Any]] | None = None, **sections: Any) -> Path:
    """An experiment on the 84 Tibetan-Chinese rows (1 held out), tiny model; `sections` replace the
    top-level sections, except `data`, whose keys are merged in."""
    exp: dict[str, Any] = {
        "name": "sizes",
        "model": {"tiny": {}},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 1},
        "rewards": CHRF,
        "arms": arms or [{"name": "s", "recipe": "strong_sft"}],
    }
    exp.update(sections)
    exp["data"] = {"train": str(BO_ZH), "test_size": 1, **sections.get("data", {})}
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(exp, allow_unicode=True), encoding="utf-8")
    return path


def dry(path: Path) -> list[str]:
    return ["run", str(path), "--dry-run"]


def refused(tmp_path: Path, args: list[str], *fragments: str) -> str:
    """The CLI refuses with exit 2, one `semrl: error:` line holding every fragment, and no run dir."""
    out = tmp_path / "run"
    result = cli_in_process(*args, "--out", str(out))
    lines = stderr_lines(result)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists()
    return lines[0]


# ---- one test per relation ---------------------------------------------------------------------


def test_test_size_that_leaves_no_training_row(tmp_path):
    refused(
        tmp_path,
        dry(config(tmp_path, data={"test_size": 84})),
        "data.test_size: 84 holds out 84 of the 84 rows",
    )


def test_test_fraction_that_holds_out_nothing_while_evaluating(tmp_path):
    refused(
        tmp_path,
        dry(config(tmp_path, data={"test_size": 0.004})),
        "data.test_size: 0.004 x 84 rows rounds to 0",
    )


def test_no_test_rows_are_fine_without_evaluation(tmp_path):
    path = config(tmp_path, data={"test_size": 0}, eval={"enabled": False})
    assert cli_in_process("run", str(path), "--dry-run", "--out", str(tmp_path / "run")).returncode == 0


def test_test_count_must_be_whole(tmp_path):
    refused(tmp_path, dry(config(tmp_path, data={"test_size": 2.5})), "data.test_size: 2.5 is neither")


def test_cold_start_larger_than_the_data(tmp_path):
    path = config(tmp_path, sft={"examples": 100}, arms=[{"name": "rl", "recipe": "two_stage"}])
    refused(tmp_path, dry(path), "sft.examples: 100 cold-start examples", "83 training rows", "at most 82")


@pytest.mark.parametrize("recipe, later", [("two_stage", "grpo"), ("sft_continue", "continue")])
def test_arm_cold_start_that_leaves_no_rest(tmp_path, recipe, later):
    path = config(
        tmp_path, sft={"examples": 10}, arms=[{"name": "rl", "recipe": recipe, "sft": {"examples": 83}}]
    )
    refused(tmp_path, dry(path), "arms.rl.sft.examples: 83", f"its {later} stage has rows after them")


def test_few_shot_larger_than_the_training_rows(tmp_path):
    path = config(tmp_path, data={"few_shot": 90})
    refused(tmp_path, dry(path), "data.few_shot: 90 examples, but only 83 training rows")


def test_grpo_step_needs_more_prompts_than_the_stage_has(tmp_path):
    path = config(
        tmp_path,
        sft={"examples": 78},
        grpo={"prompts_per_step": 6},
        arms=[{"name": "rl", "recipe": "two_stage"}],
    )
    refused(
        tmp_path, dry(path), "grpo.prompts_per_step: 6 prompts x 1 process = 6 prompts per step", "has only 5"
    )


def test_grpo_prompts_count_every_process(tmp_path, monkeypatch):
    path = config(
        tmp_path,
        sft={"examples": 78},
        grpo={"prompts_per_step": 2, "grad_accum": 2},
        arms=[{"name": "rl", "recipe": "two_stage"}],
    )
    assert (
        cli_in_process("run", str(path), "--dry-run", "--out", str(tmp_path / "run")).returncode == 0
    )  # 4 <= 5
    monkeypatch.setenv("WORLD_SIZE", "2")
    refused(tmp_path, dry(path), "2 prompts x 2 processes x 2 (grpo.grad_accum) = 8 prompts per step")


def test_completion_longer_than_the_tiny_context(tmp_path):
    path = config(
        tmp_path,
        model={"tiny": {"max_positions": POSITIONS}},
        arms=[{"name": "rl", "recipe": "grpo", "grpo": {"max_completion_length": 64}}],
    )
    refused(
        tmp_path,
        dry(path),
        "arms.rl.grpo.max_completion_length: 64 tokens",
        "64 positions (model.tiny.max_positions)",
    )


def test_eval_generation_longer_than_a_local_models_context(tmp_path, tiny_lm):
    positions = json.loads((tiny_lm / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"]
    path = config(tmp_path, model={"path": str(tiny_lm)}, decoding={"max_new_tokens": positions})
    refused(
        tmp_path, dry(path), f"decoding.max_new_tokens: {positions} tokens", "max_position_embeddings in "
    )


def test_curve_every_beyond_every_stage(tmp_path):
    path = config(tmp_path, sft={"max_steps": 3}, eval={"curve_every": 5})
    refused(tmp_path, dry(path), "eval.curve_every: 5 steps", "arm s (sft 3)")


def test_run_encoder_split_that_leaves_no_training_pair(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"anchor": a, "positive": b}, ensure_ascii=False) + "\n"
            for a, b in [("ཀ", "一"), ("ཁ", "二"), ("ག", "三")]
        ),
        encoding="utf-8",
    )
    semantic = {
        "rewards": [{"type": "semantic", "weight": 1.0, "encoder": "run:encoder", "against": "reference"}]
    }
    path = config(
        tmp_path,
        rewards=semantic,
        encoder={"train": str(pairs), "test_size": 0.9},
        sft={"examples": 40},
        arms=[{"name": "rl", "recipe": "two_stage"}],
    )
    refused(tmp_path, dry(path), "encoder.test_size: 0.9 holds out 3 of the 3 rows of encoder.train")


def test_rm_split_that_holds_out_nothing(tmp_path):
    prefs = Path(BO_ZH).parent / "tiny-prefs.jsonl"
    path = config(tmp_path, rm={"train": str(prefs), "test_size": 0.001})
    refused(tmp_path, ["train", "rm", "--config", str(path)], "rm.test_size: 0.001 x 168 rows rounds to 0")


# ---- properties: refused cleanly, or accepted and trainable ------------------------------------

RECIPES = ["strong_sft", "sft", "two_stage", "sft_continue", "grpo"]


def sizes(**narrower: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    """Rows, split, cold start, few-shot, GRPO batch, lengths vs a 64-position model, steps, curve;
    values cluster at the boundaries where a relation starts to fail."""
    return st.fixed_dictionaries(
        {
            "rows": st.integers(2, 12),
            "test_size": st.sampled_from([1, 1, 2, 0.3, 0.05, 0, 12, 2.5]),
            "recipe": st.sampled_from(RECIPES),
            "examples": st.sampled_from([None, 2, 4, 8, 12]),
            "few_shot": st.sampled_from([None, None, None, 3, 12]),
            "prompts_per_step": st.integers(1, 4),
            "num_generations": st.integers(2, 3),
            "grad_accum": st.sampled_from([1, 1, 2]),
            "max_completion_length": st.sampled_from([8, 8, 63, 64]),
            "max_new_tokens": st.sampled_from([8, 8, 63, 64]),
            "max_steps": st.integers(1, 2),
            "curve_every": st.sampled_from([None, None, 1, 2, 3]),
            "eval": st.booleans(),
            **narrower,
        }
    )


def cannot_work(s: dict[str, Any]) -> str | None:
    """The field a run of these sizes fails on (or trains nothing in), from the sizes alone; None if it works.
    The specification the dry run is held to, written out from the relations, one process."""
    if s["examples"] is None and s["recipe"] in ("two_stage", "sft_continue"):
        return "needs sft.examples"  # the plan is checked first
    ts, rows = s["test_size"], s["rows"]
    if ts >= 1 and ts != int(ts):
        return "data.test_size"
    held = int(round(ts * rows)) if ts < 1 else int(ts)
    if held >= rows or (s["eval"] and held == 0):
        return "data.test_size"
    train = rows - held
    if s["few_shot"] and s["few_shot"] > train:
        return "data.few_shot"
    train = min(train, s["few_shot"] or train)
    n, recipe = s["examples"], s["recipe"]
    if n is not None and recipe in ("sft", "two_stage", "sft_continue") and n > train - (recipe != "sft"):
        return "sft.examples"
    grpo_rows = {"grpo": train, "two_stage": train - (n or 0)}.get(recipe)
    if grpo_rows is not None and grpo_rows < s["prompts_per_step"] * s["grad_accum"]:
        return "grpo.prompts_per_step"
    if grpo_rows is not None and s["max_completion_length"] >= POSITIONS:
        return "grpo.max_completion_length"
    if s["eval"] and s["max_new_tokens"] >= POSITIONS:
        return "decoding.max_new_tokens"
    if s["curve_every"] and s["max_steps"] < s["curve_every"]:
        return "eval.curve_every"
    return None


def sized_config(folder: Path, s: dict[str, Any]) -> Path:
    """A config of the drawn sizes on the first `rows` rows; a 64-position tiny model."""
    data = folder / "data.jsonl"
    data.write_text("\n".join(BO_ZH_ROWS[: s["rows"]]) + "\n", encoding="utf-8")
    few_shot = {"few_shot": s["few_shot"]} if s["few_shot"] else {}
    return config(
        folder,
        model={"tiny": {"max_positions": POSITIONS}},
        data={"train": str(data), "test_size": s["test_size"], **few_shot},
        sft={"examples": s["examples"], "max_steps": s["max_steps"], "batch_size": 4},
        grpo={
            "max_steps": s["max_steps"],
            "prompts_per_step": s["prompts_per_step"],
            "num_generations": s["num_generations"],
            "grad_accum": s["grad_accum"],
            "max_completion_length": s["max_completion_length"],
        },
        decoding={"max_new_tokens": s["max_new_tokens"]},
        eval={"enabled": s["eval"], "curve_every": s["curve_every"]},
        arms=[{"name": "a", "recipe": s["recipe"]}],
    )


def dry_run(folder: Path, path: Path):
    """`semrl run --dry-run`: refused in the one documented way (nothing written), or accepted."""
    out = folder / "run"
    result = cli_in_process("run", str(path), "--dry-run", "--out", str(out))
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        lines = stderr_lines(result)
        assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
    assert not out.exists()
    return result


def outcome(result) -> str:
    """For --hypothesis-show-statistics: accepted, or the field that was refused."""
    return f"refused: {result.stderr.split(':')[2].strip()}" if result.returncode else "accepted"


# Every relation just inside and just past its boundary, then 25 drawn combinations. BASE: 9
# training rows, a cold start of 4, GRPO on the other 5 at 2 prompts a step.
BASE = {
    "rows": 10,
    "test_size": 1,
    "recipe": "two_stage",
    "examples": 4,
    "few_shot": None,
    "prompts_per_step": 2,
    "num_generations": 2,
    "grad_accum": 1,
    "max_completion_length": 8,
    "max_new_tokens": 8,
    "max_steps": 2,
    "curve_every": None,
    "eval": True,
}
BOUNDARIES = [
    {},
    {"test_size": 10},
    {"test_size": 9, "recipe": "strong_sft"},
    {"test_size": 0.05},
    {"test_size": 0.06},
    {"test_size": 0, "eval": False},
    {"few_shot": 9},
    {"few_shot": 10},
    {"examples": 8, "prompts_per_step": 1},
    {"examples": 9},
    {"recipe": "sft", "examples": 9},
    {"recipe": "sft", "examples": 10},
    {"recipe": "strong_sft", "examples": 12},
    {"recipe": "sft_continue", "examples": 9},
    {"prompts_per_step": 5},
    {"prompts_per_step": 6},
    {"prompts_per_step": 3, "grad_accum": 2},
    {"recipe": "grpo", "max_completion_length": 63},
    {"recipe": "grpo", "max_completion_length": 64},
    {"max_new_tokens": 64},
    {"max_new_tokens": 64, "eval": False},
    {"curve_every": 2},
    {"curve_every": 3},
]


def at_boundaries(test):
    for change in BOUNDARIES:
        test = example({**BASE, **change})(test)
    return test


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes())
@at_boundaries
def test_drawn_sizes_are_refused_exactly_when_they_cannot_work(tmp_path_factory, sizes):
    from semrl.data.task_rows import load_task_rows
    from semrl.experiment_config import load_experiment
    from semrl.pipeline.experiment import stage_rows
    from semrl.recipes.plan import plan_experiment

    folder = tmp_path_factory.mktemp("sizes")
    path = sized_config(folder, sizes)
    result = dry_run(folder, path)
    event(outcome(result))
    reason = cannot_work(sizes)
    if reason is not None:
        assert result.returncode == 2 and reason in result.stderr, (reason, result.stderr)
        return
    assert result.returncode == 0, result.stderr
    exp = load_experiment(path)
    train, test = load_task_rows(exp)
    assert test or not exp.eval.enabled
    for plan in plan_experiment(exp):  # what the run does once its folder exists: none of it may fail
        arm = exp.arms[0]
        rows = stage_rows(plan, train, exp.stage_spec(arm, "sft").examples)
        if plan.trainer == "grpo":
            spec = exp.stage_spec(arm, "grpo")
            assert len(rows) >= spec.prompts_per_step * spec.grad_accum


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes(
        rows=st.integers(8, 12),
        test_size=st.sampled_from([1, 2]),
        examples=st.integers(2, 4),
        few_shot=st.none(),
        prompts_per_step=st.integers(1, 3),
        num_generations=st.just(2),
        grad_accum=st.just(1),
        max_completion_length=st.just(8),
        max_steps=st.just(1),
        curve_every=st.none(),
    )
)
def test_accepted_sizes_really_train(tmp_path_factory, sizes):
    """The real run of an accepted config (one step a stage, no evaluation) finishes, and every
    stage took at least one optimizer step: TRL's silent 0-step GRPO would fail here."""
    folder = tmp_path_factory.mktemp("train")
    path = sized_config(folder, {**sizes, "eval": False})
    result = dry_run(folder, path)
    event(outcome(result))
    if result.returncode == 2:
        return
    out = folder / "run"
    result = cli_in_process("run", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    stages = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["stages"]
    trained = {key: stage["metrics"]["steps"] for key, stage in stages.items() if key.startswith("a/")}
    assert trained and all(steps >= 1 for steps in trained.values()), trained
