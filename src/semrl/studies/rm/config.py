"""The `semrl rm transfer` YAML: which pairs, which languages, how to train (or where to load) each
reward model, and what to measure. Unknown keys are errors; relative paths are relative to the file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from semrl.config_files import StrictModel, load_yaml, validate
from semrl.experiment_config import ModelSpec, RMSpec, apply_overrides, resolve_path


class PairSource(StrictModel):
    """One file of pairs; `language` fills rows without a language column."""

    path: str
    language: str | None = None
    split: Literal["train", "eval", "both"] = Field(
        "both", description="both: held-out part (test_size) for eval"
    )


class TranslationSpec(StrictModel):
    """Build a training language by machine-translating another language's training pairs."""

    source: str = Field(description="language whose training pairs are translated")
    target: str
    model: str = Field(description="local causal LM used as translator")
    template: str = Field(
        "Translate into {target}:\n{text}\n", description="prompt; {text} and {target} are filled"
    )
    max_new_tokens: int = Field(128, ge=1)


class DataSection(StrictModel):
    files: list[PairSource] = Field(min_length=1)
    format: Literal["auto", "jsonl", "csv", "tsv", "parquet", "hf"] = "auto"
    hf_split: str = "train"
    columns: dict[str, str] = Field(
        default_factory=dict, description="role -> column: prompt, chosen, rejected, language, category"
    )
    test_size: float = Field(
        0.3, gt=0.0, description="fraction (<1) or count (>=1) of each language held out for eval"
    )
    translate: list[TranslationSpec] = Field(default_factory=list)


class RepresentationSpec(StrictModel):
    enabled: bool = True
    layer: int = Field(-1, description="hidden-state layer (python index; -1 = last)")
    max_inputs: int = Field(128, ge=2, description="inputs per language (prompt + chosen of eval pairs)")


class RMTransferConfig(StrictModel):
    name: str = "rm-transfer"
    seed: int = 0
    model: ModelSpec = Field(description="base model every RM starts from (path or tiny)")
    data: DataSection
    train_languages: list[str] | None = Field(None, description="default: every language with training pairs")
    eval_languages: list[str] | None = Field(None, description="default: every language with eval pairs")
    reference_language: str | None = Field(
        None, description="the row compared with each diagonal (default: en if trained, else the first)"
    )
    reward_models: dict[str, str] = Field(
        default_factory=dict, description="language -> trained RM folder (skip training)"
    )
    rm: RMSpec = Field(default_factory=RMSpec)
    representation: RepresentationSpec = Field(default_factory=RepresentationSpec)
    resamples: int = Field(1000, ge=10)
    device: str = "auto"
    report_to: Literal["none", "tensorboard", "wandb"] = "none"

    @model_validator(mode="after")
    def _no_rm_data_fields(self):
        if self.rm.train or self.rm.test or self.rm.columns:
            raise ValueError("rm.train/test/columns are not used here; pairs come from data.files")
        return self


def load_transfer_config(path: str | Path, overrides: list[str] | None = None) -> RMTransferConfig:
    data = load_yaml(path)
    apply_overrides(data, overrides or [])
    base = Path(path).resolve().parent

    def fix(value):
        return resolve_path(value, base)

    def listed(value):
        return value if isinstance(value, list) else []  # anything else is reported by validation

    section = data.get("data")
    if isinstance(section, dict):
        for item in listed(section.get("files")):
            if isinstance(item, dict) and "path" in item:
                item["path"] = fix(item["path"])
        for item in listed(section.get("translate")):
            if isinstance(item, dict) and "model" in item:
                item["model"] = fix(item["model"])
    model = data.get("model")
    if isinstance(model, dict):
        if "path" in model:
            model["path"] = fix(model["path"])
        if isinstance(model.get("tiny"), dict) and isinstance(model["tiny"].get("corpus"), list):
            model["tiny"]["corpus"] = [fix(p) for p in model["tiny"]["corpus"]]
    if isinstance(data.get("reward_models"), dict):
        data["reward_models"] = {k: fix(v) for k, v in data["reward_models"].items()}
    return validate(RMTransferConfig, data, path)
