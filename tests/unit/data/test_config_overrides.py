"""`key=value` overrides and relative paths, applied to the raw YAML before validation
(semrl.experiment_config, in the data layer), so an override is checked exactly like the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig, apply_overrides, resolve_path, resolve_relative_paths


def test_overrides_set_nested_keys_and_list_items_with_yaml_values():
    data = {"grpo": {"learning_rate": 5e-7}, "arms": [{"name": "a", "recipe": "two_stage"}]}
    apply_overrides(
        data,
        [
            "grpo.learning_rate=1e-6",
            "arms.0.recipe=strong_sft",
            "eval.compare=[[a, base]]",
            "grpo.use_vllm=true",
            "task.system=",
            "seed=3",
        ],
    )
    assert data["grpo"]["learning_rate"] in ("1e-6", 1e-6)  # PyYAML (YAML 1.1) keeps 1e-6 a string ...
    assert data["arms"][0]["recipe"] == "strong_sft"
    assert data["eval"] == {"compare": [["a", "base"]]}  # a missing mapping is created
    assert data["grpo"]["use_vllm"] is True and data["task"] == {"system": ""} and data["seed"] == 3


def test_an_override_is_checked_by_the_schema_like_the_file():
    data = {"name": "x", "model": {"tiny": {}}, "task": {"type": "generic"}, "data": {"train": "rows.jsonl"}}
    exp = ExperimentConfig.model_validate(
        apply_overrides(data, ["grpo.learning_rate=1e-6", "task.system=a=b"])
    )
    assert exp.grpo.learning_rate == 1e-6  # ... and validation reads it as the number it means
    assert exp.task.system == "a=b"  # only the first = splits key from value
    with pytest.raises(ValidationError, match="learning_rate"):
        ExperimentConfig.model_validate(apply_overrides(data, ["grpo.learning_rate=fast"]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("grpo.learning_rate", r"override 'grpo.learning_rate': expected key=value"),
        ("arms.5.recipe=sft", r"override 'arms.5.recipe=sft': cannot apply"),
        ("arms.x.recipe=sft", r"override 'arms.x.recipe=sft': cannot apply"),
        ("seed=[1, 2", r"override 'seed=\[1, 2': cannot apply"),
    ],
)
def test_a_bad_override_is_one_user_error_naming_it(override, message):
    with pytest.raises(UserError, match=message):
        apply_overrides({"arms": [{"name": "a"}]}, [override])


def test_relative_paths_are_resolved_against_the_config_folder_but_hub_ids_are_kept(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.jsonl").write_text("{}\n", encoding="utf-8")
    assert resolve_path("data/rows.jsonl", tmp_path) == str(tmp_path / "data" / "rows.jsonl")
    assert resolve_path("missing.jsonl", tmp_path) == str(
        tmp_path / "missing.jsonl"
    )  # "not found" shows where
    assert resolve_path("Qwen/Qwen3-4B", tmp_path) == "Qwen/Qwen3-4B"
    assert resolve_path("/abs/rows.jsonl", tmp_path) == "/abs/rows.jsonl"
    config = {
        "data": {"train": "data/rows.jsonl"},
        "model": {"path": "sentence-transformers/LaBSE"},
        "rewards": {"rewards": [{"type": "semantic", "encoder": "./enc"}]},
        "arms": [{"name": "a", "rewards": {"rewards": [{"type": "reward_model", "model": "../rm"}]}}],
    }
    resolve_relative_paths(config, tmp_path)
    assert config["data"]["train"] == str(tmp_path / "data" / "rows.jsonl")
    assert config["model"]["path"] == "sentence-transformers/LaBSE"
    assert config["rewards"]["rewards"][0]["encoder"] == str(tmp_path / "enc")
    assert config["arms"][0]["rewards"]["rewards"][0]["model"] == str(Path(tmp_path.parent / "rm"))
