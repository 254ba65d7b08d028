"""Model-card metadata without a run: base_model and datasets for hub ids and local paths, and the
metadata huggingface_hub's own parser reads back from the rendered YAML."""

from __future__ import annotations

import json
from pathlib import Path

from semrl.experiment_config import ExperimentConfig
from semrl.models.gguf import DONE_MARKER, SMOLLM2_FILE
from semrl.recipes.plan import plan_arm
from semrl.report.model_card import card_data, hub_id_of


def experiment(
    model_path: str | None, train: str = "data/train.jsonl", lora: bool = False
) -> ExperimentConfig:
    model = {"path": model_path} if model_path else {"tiny": {}}
    if lora:
        model["lora"] = {"r": 8, "alpha": 16}
    return ExperimentConfig.model_validate(
        {
            "name": "x",
            "model": model,
            "task": {"type": "headline", "source_lang": "bo"},
            "data": {"train": train},
            "sft": {"examples": 4},
            "rewards": {"rewards": [{"type": "language", "lang": "bo"}]},
            "arms": [{"name": "rl", "recipe": "two_stage"}],
        }
    )


def metadata(exp: ExperimentConfig, result: dict | None = None) -> dict:
    from huggingface_hub import ModelCard

    plans = plan_arm(exp, exp.arms[0])
    data = card_data(exp, plans, plans[-1], result)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\nbody\n").data.to_dict()  # the hub's parser


def test_hub_id_base_is_named_and_a_local_folder_is_not(tmp_path):
    assert (
        metadata(experiment("HuggingFaceTB/SmolLM2-135M-Instruct"))["base_model"]
        == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    local = tmp_path / "my-model"
    local.mkdir()
    assert "base_model" not in metadata(experiment(str(local)))
    assert "base_model" not in metadata(experiment(None))  # the tiny model semrl builds


def test_a_local_folder_that_names_a_hub_model_gives_that_id(tmp_path):
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen3-4B" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert hub_id_of(str(snapshot)) == "Qwen/Qwen3-4B"
    converted = tmp_path / "SmolLM2-135M-Instruct-Q4_1"
    converted.mkdir()
    (converted / DONE_MARKER).write_text(json.dumps({"source": Path(SMOLLM2_FILE).name}), encoding="utf-8")
    assert metadata(experiment(str(converted)))["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_id_of("./relative/folder") is None and hub_id_of("not a/hub id") is None


def test_datasets_tags_and_results():
    exp = experiment(None, train="org/tibetan-headlines", lora=True)
    result = {
        "task": {"rougeL": {"value": 0.25, "ci95": [0.2, 0.3], "signature": "rougeL|resolved:/home/u/x|a"}}
    }
    meta = metadata(exp, result)
    assert meta["datasets"] == ["org/tibetan-headlines"] and meta["library_name"] == "transformers"
    assert meta["tags"] == ["semrl", "sft", "grpo", "trl", "lora", "bo"] and meta["language"] == ["bo"]
    [entry] = meta["model-index"][0]["results"]
    assert entry["task"]["type"] == "summarization" and entry["dataset"]["type"] == "org/tibetan-headlines"
    assert entry["metrics"] == [
        {"type": "rougeL", "value": 0.25, "name": "rougeL", "config": "rougeL|a", "verified": False}
    ]
    assert "datasets" not in metadata(experiment(None))  # a local file is not a hub dataset
