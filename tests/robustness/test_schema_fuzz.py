"""A schema-wide fuzz of `semrl run`: every field of ExperimentConfig (arms' overrides and every reward
component included) gets each boundary value of its type, and `--dry-run` must either refuse it (exit 2,
one line naming the field or the value, no traceback, nothing written) or accept it. An accepted config
must hold no NaN, infinity or integer beyond int64, and every folder it names must stay inside the run
folder; and an accepted value must train and evaluate in a real run without a traceback. `make test`
runs the dry-run walk over every pair and real runs for a seeded sample; the real runs of the whole
walk are marked slow (`make test-all`)."""

from __future__ import annotations

import math
import random
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from conftest import BO_ZH, cli_in_process, run_cli, sample_lines, stderr_lines
from semrl.experiment_config import ArmSpec, ExperimentConfig, GRPOSpec, SFTSpec

NAN = float("nan")
DELETE = object()
SCALARS: dict[str, Any] = {
    "nan": NAN,
    "+inf": math.inf,
    "-inf": -math.inf,
    "-1": -1,
    "0": 0,
    "2^64": 2**64,
    "empty": "",
    "dotdot": "..",
    "wrong_type": ["wrong", "type"],
}
KINDS = ("encoder_folder", "lm_folder", "text_file")  # paths to a file or folder of a (usually) wrong kind
OVERRIDES = {"sft": SFTSpec, "grpo": GRPOSpec, "recover": SFTSpec}
# fields that only mean something without another one: setting them also drops it
CONTEXT = {
    "model.path": {"model.tiny": DELETE},
    "arms.0.name": {"eval.compare": []},
}  # compare names the arm: the new name itself must be judged


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_lm, tiny_classifier) -> dict[str, Path]:
    from semrl.models import build_tiny_encoder
    from semrl.models.tiny import TinySpec

    folder = tmp_path_factory.mktemp("fuzz_models")
    texts = sample_lines("en.txt") * 2 + sample_lines("zh.txt") * 2
    encoder = build_tiny_encoder(
        folder / "encoder",
        texts,
        TinySpec(vocab_size=300, hidden_size=16, intermediate_size=16, num_layers=1, num_heads=2),
    )
    text = folder / "notes.txt"
    text.write_text("not a model, not a table\n", encoding="utf-8")
    return {"lm_folder": tiny_lm, "classifier": tiny_classifier, "encoder_folder": encoder, "text_file": text}


def base_config(models: dict[str, Path]) -> dict[str, Any]:
    """Every section present (so each field is reached), trains in seconds: one arm through SFT, GRPO
    and recovery, a reward of every component type, an LM judge against the base."""
    quick = {"max_steps": 1, "batch_size": 4, "logging_steps": 1, "save_steps": 1, "learning_rate": 1.0e-3}
    return {
        "name": "fuzz",
        "seed": 0,
        "output_dir": "runs",
        "report_to": "none",
        "device": "cpu",
        "parallel": 1,
        "model": {
            "tiny": {
                "vocab_size": 320,
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_layers": 1,
                "num_heads": 2,
                "max_positions": 64,
                "corpus": [],
                "family": "llama",
            },
            "dtype": "auto",
            "lora": {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
            "trust_remote_code": False,
        },
        "task": {
            "type": "translate",
            "source_lang": "bo",
            "target_lang": "zh",
            "source_name": "Tibetan",
            "target_name": "Chinese",
            "template": "{source_name} to {target_name}: {source}",
            "system": "Translate.",
            "chat_template": "auto",
        },
        "data": {
            "train": str(BO_ZH),
            "format": "auto",
            "hf_split": "train",
            "columns": {},
            "test_size": 4,
            "max_chars": 1000,
        },
        "rewards": {
            "rewards": [
                {
                    "type": "semantic",
                    "weight": 1.0,
                    "name": "sim",
                    "encoder": "default",
                    "against": "reference",
                    "tau": {"from": "cold_start", "quantile": 0.5, "sample": 2},
                    "contrast": {"bank": 8, "k": 2, "mode": "csls"},
                    "batch_size": 8,
                    "device": "cpu",
                },
                {"type": "language", "weight": 1.0, "lang": "zh", "threshold": 0.5, "mode": "binary"},
                {"type": "chrf", "weight": 0.5, "lang": "zh"},
                {"type": "length", "weight": -0.1, "start": 2.5, "end": 5.0, "relative_to": "batch"},
                {"type": "repetition", "weight": -0.05, "n": 3, "threshold": 0.2},
                {
                    "type": "reward_model",
                    "weight": 0.1,
                    "model": str(models["classifier"]),
                    "transform": "batch_z",
                    "batch_size": 4,
                    "max_length": 64,
                    "device": "cpu",
                },
            ],
            "gate": {"type": "language", "lang": "zh", "threshold": 0.1},
            "columns": {"reference": "reference", "source": "source"},
        },
        "decoding": {"temperature": 0.8, "top_p": 0.9, "top_k": 20, "max_new_tokens": 8},
        "sft": {
            **quick,
            "examples": 16,
            "epochs": 1.0,
            "grad_accum": 1,
            "warmup_ratio": 0.0,
            "weight_decay": 0.0,
            "max_length": 64,
            "scheduler": "constant",
        },
        "grpo": {
            "max_steps": 1,
            "learning_rate": 1.0e-4,
            "num_generations": 2,
            "prompts_per_step": 2,
            "beta": 0.0,
            "epsilon": 0.2,
            "max_completion_length": 8,
            "temperature": 0.9,
            "top_p": 0.95,
            "logging_steps": 1,
            "save_steps": 1,
            "loss_type": "dapo",
            "scale_rewards": "group",
        },
        "recover": {**quick, "epochs": 1.0},
        "rm": {"test_size": 0.1, "epochs": 1.0, "learning_rate": 1.0e-5, "batch_size": 8, "max_length": 64},
        "encoder": {
            "test_size": 0.2,
            "epochs": 1.0,
            "learning_rate": 5.0e-5,
            "batch_size": 8,
            "max_length": 32,
            "tiny": {"hidden_size": 16, "num_layers": 1, "num_heads": 2},
        },
        "eval": {
            "enabled": True,
            "encoder": "default",
            "metrics": ["chrf", "lang"],
            "batch_size": 4,
            "max_new_tokens": 8,
            "resamples": 10,
            "lang_threshold": 0.5,
            "compare": [["rl", "base"]],
            "judge": {
                "type": "lm",
                "model": str(models["lm_folder"]),
                "template": "{prompt}\nA: {a}\nB: {b}\nBetter:",
                "mode": "logprob",
                "max_new_tokens": 2,
            },
        },
        "arms": [
            {
                "name": "rl",
                "recipe": "two_stage",
                "sft": {"learning_rate": 1.0e-3, "max_steps": 1},
                "grpo": {"temperature": 0.9, "max_steps": 1},
                "recover": {"max_steps": 1},
            }
        ],
    }


# ---- the walk ----------------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _component_class(item: dict[str, Any]) -> type[BaseModel]:
    from semrl.rewards import config as reward_config

    return next(
        cls
        for cls in (
            reward_config.SemanticSpec,
            reward_config.LanguageSpec,
            reward_config.OverlapSpec,
            reward_config.LengthSpec,
            reward_config.RepetitionSpec,
            reward_config.RewardModelSpec,
        )
        if item["type"] in typing.get_args(cls.model_fields["type"].annotation)
    )


def field_paths(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[str]:
    """Every field of `model` as a dotted path; nested models (and list items, arms' override dicts,
    reward components) walked where the base config has them, each container also a field itself."""
    paths = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}{key}"
        paths.append(path)
        value = data.get(key) if isinstance(data, dict) else None
        if model is ArmSpec and key in OVERRIDES:
            paths += [f"{path}.{sub}" for sub in OVERRIDES[key].model_fields]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for index, item in enumerate(value):
                cls = ArmSpec if key == "arms" else _component_class(item)
                paths += field_paths(cls, item, f"{path}.{index}.")
        elif isinstance(value, dict) and (classes := _models_in(field.annotation)):
            cls = _component_class(value) if "type" in value and key == "gate" else classes[0]
            paths += field_paths(cls, value, f"{path}.")
    return paths


def all_pairs(models: dict[str, Path]) -> list[tuple[str, str]]:
    paths = field_paths(ExperimentConfig, base_config(models))
    return [(path, value) for path in paths for value in [*SCALARS, *KINDS]]


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node: Any = data
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(keys[-1])] = value
    elif value is DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


def config_for(models: dict[str, Path], path: str, value_name: str, folder: Path) -> Path:
    data = base_config(models)
    for other, value in CONTEXT.get(path, {}).items():
        set_path(data, other, value)
    value = SCALARS[value_name] if value_name in SCALARS else str(models[value_name])
    set_path(data, path, value)
    config = folder / "exp.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return config


def tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# ---- what an accepted config must satisfy ----------------------------------------------------------


def nonfinite_or_huge(value: Any, where: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} = {value}"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return f"{where} = {value} (beyond int64)"
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    )
    return next(
        (found for key, child in children if (found := nonfinite_or_huge(child, f"{where}.{key}"))), None
    )


def escapes(exp: ExperimentConfig, out: Path) -> str | None:
    """A folder or file the run would write that resolves outside its run folder (or onto it)."""
    from semrl.recipes.plan import plan_experiment

    root = out.resolve()
    targets = [out / plan.arm / plan.stage for plan in plan_experiment(exp)]
    targets += [out / "eval" / f"{arm.name}.json" for arm in exp.arms]
    for target in targets:
        resolved = target.resolve()
        if root not in resolved.parents or resolved.parent == root.parent:
            return f"{target} resolves to {resolved}"
    default = Path(exp.output_dir) / exp.name
    if Path(exp.output_dir).resolve() not in default.resolve().parents:
        return f"name {exp.name!r}: output_dir/name resolves to {default.resolve()}"
    return None


def schema_check(
    models: dict[str, Path], path: str, value_name: str, folder: Path
) -> tuple[bool, str | None]:
    """What `semrl run` does with the YAML before any file is looked at (load_experiment without the
    YAML parse, which costs more than the check): (accepted, how the contract broke or None)."""
    from semrl.config_files import validate
    from semrl.errors import UserError
    from semrl.experiment_config import resolve_relative_paths

    data = base_config(models)
    for other, value in CONTEXT.get(path, {}).items():
        set_path(data, other, value)
    set_path(data, path, SCALARS[value_name] if value_name in SCALARS else str(models[value_name]))
    resolve_relative_paths(data, folder)
    try:
        exp = validate(ExperimentConfig, data, folder / "exp.yaml")
    except UserError as exc:
        return False, _unnamed(str(exc), models, path, value_name, folder)
    except Exception as exc:  # noqa: BLE001 - anything but a UserError is a crash
        return False, f"{type(exc).__name__}: {exc}"
    found = nonfinite_or_huge(resolved(exp)) or escapes(exp, folder / "run")
    return True, (f"accepted, but {found}" if found else None)


def resolved(exp: ExperimentConfig) -> dict[str, Any]:
    """The config as the stages see it: each arm's overrides applied to its stage settings."""
    dump = exp.model_dump(mode="python")
    for arm, arm_dump in zip(exp.arms, dump["arms"], strict=True):
        for stage in OVERRIDES:
            arm_dump[stage] = exp.stage_spec(arm, stage).model_dump(mode="python")
    return dump


def _unnamed(message: str, models: dict[str, Path], path: str, value_name: str, folder: Path) -> str | None:
    """None when the one-line message names the field (its last key) or the path given (as given, or
    made absolute against the config's folder, as semrl reads it)."""
    from semrl.experiment_config import resolve_path

    value = SCALARS[value_name] if value_name in SCALARS else str(models[value_name])
    named = [path.split(".")[-1]]
    if isinstance(value, str) and value:
        named += [value, str(resolve_path(value, folder))]
    if "\n" in message or not any(fragment in message for fragment in named):
        return f"the message does not name the field or the path: {message}"
    return None


def dry_run(models: dict[str, Path], path: str, value_name: str, folder: Path) -> tuple[bool, str | None]:
    """`semrl run --dry-run` in full: (accepted, how the contract broke or None)."""
    folder.mkdir(parents=True)
    config = config_for(models, path, value_name, folder)
    before = tree(folder)
    result = cli_in_process("run", str(config), "--dry-run", "--out", str(folder / "run"))
    after = tree(folder)
    if "Traceback" in result.stderr or result.returncode not in (0, 2):
        return False, f"exit {result.returncode}: {result.stderr[-600:]}"
    if after != before:
        return False, f"wrote {sorted(set(after) - set(before))}"
    if result.returncode == 2:
        lines = stderr_lines(result)
        if len(lines) != 1 or not lines[0].startswith("semrl: error: "):
            return False, f"not one error line: {result.stderr[-600:]}"
        return False, _unnamed(lines[0], models, path, value_name, folder)
    return True, None


def real_run(models: dict[str, Path], path: str, value_name: str, folder: Path) -> str | None:
    """A real run of an accepted value: it trains and evaluates, without a traceback, inside --out."""
    folder.mkdir(parents=True, exist_ok=True)
    config = config_for(models, path, value_name, folder)
    before = set(tree(folder))
    result = run_cli("run", str(config), "--out", str(folder / "run"))
    if "Traceback" in result.stderr or result.returncode != 0:
        return f"exit {result.returncode}: {result.stderr[-1500:]}"
    outside = {p for p in set(tree(folder)) - before if not p.startswith("run")}
    if outside:
        return f"wrote outside --out: {sorted(outside)[:5]}"
    if not (folder / "run" / "results.json").exists():
        return "no evaluation results"
    return None


DRY_SAMPLE = 30  # full dry runs per `make test` (each ~0.5 s: the YAML parse and preflight)
REAL_SAMPLE = 2  # real runs per `make test` (each ~45 s on two shared CPU cores)


@pytest.fixture(scope="module")
def walk(models, tmp_path_factory) -> dict[str, Any]:
    """The schema walk over every (field, value) pair, shared by the tests below."""
    folder = tmp_path_factory.mktemp("walk")
    pairs = all_pairs(models)
    accepted, problems = [], []
    for path, value in pairs:
        ok, problem = schema_check(models, path, value, folder)
        if problem:
            problems.append(f"{path} = {value}: {problem}")
        elif ok:
            accepted.append((path, value))
    fields = sorted({path for path, _ in pairs})
    print(
        f"schema fuzz: {len(fields)} fields x {len(SCALARS) + len(KINDS)} values = {len(pairs)} pairs; "
        f"{len(accepted)} pass validation, {len(pairs) - len(accepted) - len(problems)} refused by it"
    )
    return {"pairs": pairs, "fields": fields, "accepted": accepted, "problems": problems}


def dry_runs(models, pairs, folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    accepted, problems = [], []
    for index, (path, value) in enumerate(pairs):
        ok, problem = dry_run(models, path, value, folder / f"d{index}")
        if problem:
            problems.append(f"{path} = {value}: {problem}")
        elif ok:
            accepted.append((path, value))
    print(
        f"dry runs: {len(pairs)}, {len(accepted)} accepted, "
        f"{len(pairs) - len(accepted) - len(problems)} refused"
    )
    return accepted, problems


def real_runs(models, pairs, folder: Path) -> list[str]:
    print(f"real runs: {', '.join(f'{path}={value}' for path, value in pairs)}")
    return [
        f"{path} = {value}: {problem}"
        for index, (path, value) in enumerate(pairs)
        if (problem := real_run(models, path, value, folder / f"r{index}"))
    ]


def test_every_field_is_walked(walk):
    """The walk reaches every section, the arms' overrides and every reward component."""
    fields = walk["fields"]
    assert len(walk["pairs"]) == len(fields) * (len(SCALARS) + len(KINDS))
    for expected in (
        "seed",
        "model.lora.target_modules",
        "model.tiny.hidden_size",
        "grpo.temperature",
        "grpo.top_p",
        "arms.0.name",
        "arms.0.grpo.beta",
        "arms.0.sft.weight_decay",
        "arms.0.recover.learning_rate",
        "rewards.rewards.0.tau.from",
        "rewards.rewards.0.contrast.k",
        "rewards.rewards.5.model",
        "rewards.gate.threshold",
        "eval.judge.template",
        "eval.metrics",
        "rm.learning_rate",
        "encoder.tiny.num_heads",
        "data.test_size",
        "decoding.top_k",
    ):
        assert expected in fields, expected
    assert len(fields) >= 250


def test_validation_refuses_or_accepts_every_boundary_value(walk):
    """Every pair: refused in one line naming the field, or accepted with no NaN, infinity, integer
    beyond int64 or folder outside the run folder in the config."""
    assert not walk["problems"], f"{len(walk['problems'])} broken:\n" + "\n".join(walk["problems"][:30])


def test_dry_run_and_real_run_sample(walk, models, tmp_path):
    """A seeded sample of the values validation accepts, through the full dry run (files, models, names
    looked up); a seeded sample of those it accepts, through a real run (the whole walk: slow, below)."""
    sample = random.Random(23).sample(walk["accepted"], DRY_SAMPLE)
    accepted, problems = dry_runs(models, sample, tmp_path)
    assert not problems, "\n".join(problems)
    failures = real_runs(models, random.Random(23).sample(accepted, REAL_SAMPLE), tmp_path)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_whole_walk_dry_and_real_runs(walk, models, tmp_path):
    accepted, problems = dry_runs(models, walk["accepted"], tmp_path)
    assert not problems, f"{len(problems)} broken dry runs:\n" + "\n".join(problems)
    failures = real_runs(models, accepted, tmp_path)
    assert not failures, f"{len(failures)} of {len(accepted)} real runs failed:\n" + "\n".join(failures)
