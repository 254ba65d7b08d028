"""KL-anchored GRPO (beta > 0) in TRL's real GRPOTrainer, built as semrl builds it: the reference
it scores the policy against is the stage's starting model (the merged cold start with the adapter
switched off under LoRA, a frozen copy of it under full fine-tuning), the memory estimate counts
exactly the copy TRL holds, and the KL it measures reaches log_history.json, the stage's metrics,
summary.md and the model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import cli_in_process, run_cli, sample_lines
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
BETA = 0.04
STEPS = 3


def records() -> list[dict[str, str]]:
    pairs = zip(sample_lines("zh.txt"), sample_lines("bo.txt"), strict=True)
    return [{"prompt": f"{z} =>", "reference": b} for z, b in pairs]


def lora():
    from semrl.experiment_config import LoraSpec

    return LoraSpec(r=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="module")
def cold_start(tiny_lm, tmp_path_factory) -> Path:
    """A LoRA SFT stage's final/ as two_stage hands it to GRPO (save_final merges the adapter)."""
    from semrl.experiment_config import SFTSpec
    from semrl.train.settings import StageSettings
    from semrl.train.sft import run_sft

    rows = [{"prompt": row["prompt"], "completion": " " + row["reference"]} for row in records()]
    spec = SFTSpec(max_steps=4, learning_rate=1e-2, batch_size=8, logging_steps=1, save_steps=100)
    out = tmp_path_factory.mktemp("cold_start") / "sft"
    run_sft(StageSettings(seed=0, lora=lora()), spec, str(tiny_lm), rows, out, "cpu")
    final = out / "final"
    assert not (final / "adapter_config.json").exists()  # a plain model: GRPO's LoRA starts from it
    return final


def grpo_trainer(model: Path, out_dir: Path, lora_spec=None, dtype: str = "float32", remote: bool = False):
    """The GRPO trainer run_grpo builds (semrl's GRPOConfig, trainer class and LoRA), with beta > 0."""
    from datasets import Dataset

    from semrl.experiment_config import GRPOSpec
    from semrl.models.loading import load_causal_lm, load_tokenizer
    from semrl.rewards import RewardConfig, build_reward
    from semrl.train.common import lora_config
    from semrl.train.grpo import grpo_config, resumable_grpo_trainer
    from semrl.train.settings import StageSettings

    settings = StageSettings(seed=0, lora=lora_spec, dtype=dtype, trust_remote_code=remote)
    spec = GRPOSpec(
        max_steps=STEPS,
        learning_rate=1e-2,
        beta=BETA,
        num_generations=4,
        prompts_per_step=2,
        max_completion_length=8,
        temperature=1.0,
        logging_steps=1,
        save_steps=100,
    )
    reward = build_reward(
        RewardConfig.model_validate(
            {"rewards": [{"type": "language", "weight": 1.0, "lang": "bo", "mode": "continuous"}]}
        )
    )
    reward.prepare(records(), 0)
    tokenizer = load_tokenizer(str(model), remote)
    policy = load_causal_lm(str(model), dtype, "cpu", remote)
    return resumable_grpo_trainer()(
        model=policy,
        reward_funcs=[reward],
        args=grpo_config(settings, spec, out_dir, "cpu"),
        train_dataset=Dataset.from_list(records()),
        processing_class=tokenizer,
        peft_config=lora_config(lora_spec),
    )


def fixed_input(model: Path) -> torch.Tensor:
    from semrl.models.loading import load_tokenizer

    return load_tokenizer(str(model))(sample_lines("zh.txt")[0], return_tensors="pt")["input_ids"]


@torch.no_grad()
def logits(model, ids: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(input_ids=ids).logits.float()
    finally:
        model.train(was_training)


def logits_of(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    return logits(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), ids)


def logged_kl(trainer) -> list[float]:
    return [entry["kl"] for entry in trainer.state.log_history if "kl" in entry]


def test_lora_reference_is_the_merged_cold_start_with_the_adapter_off(cold_start, tiny_lm, tmp_path):
    from trl.trainer.utils import use_adapter

    from semrl.checks.memory import estimate_memory

    ids = fixed_input(cold_start)
    starting, base = logits_of(cold_start, ids), logits_of(tiny_lm, ids)
    assert not torch.allclose(starting, base, atol=1e-3)  # the cold start is not the base model
    trainer = grpo_trainer(cold_start, tmp_path / "grpo", lora())
    policy = trainer.accelerator.unwrap_model(trainer.model)
    # no model copy and no "ref" adapter: TRL scores the reference with every adapter disabled
    assert trainer.ref_model is None and set(policy.peft_config) == {"default"}
    trainer.train()
    kl = logged_kl(trainer)
    assert len(kl) == STEPS
    assert kl[0] == pytest.approx(0.0, abs=1e-7)  # step 1 samples from the starting model itself
    assert kl[-1] > 1e-5  # the policy moved away from it, and TRL measured that
    ref_adapter = "ref" if "ref" in policy.peft_config else None  # TRL's own choice of reference
    with use_adapter(policy, adapter_name=ref_adapter):
        reference = logits(policy, ids)
    assert torch.allclose(reference, starting, atol=1e-5)
    assert not torch.allclose(logits(policy, ids), starting, atol=1e-4)
    params = sum(p.numel() for p in policy.parameters())
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    assert (
        dict(estimate_memory(params, trainable, weight_bytes=4, lora=True, beta=BETA).parts)["reference"] == 0
    )


def test_full_fine_tuning_reference_is_a_frozen_copy_of_the_starting_model(cold_start, tmp_path):
    from semrl.checks.memory import count_parameters, estimate_memory

    start = {
        name: value.to(torch.bfloat16)
        for name, value in load_file(str(cold_start / "model.safetensors")).items()
    }
    trainer = grpo_trainer(cold_start, tmp_path / "grpo", dtype="bfloat16")
    trainer.train()
    policy = trainer.accelerator.unwrap_model(trainer.model)
    ref = trainer.accelerator.unwrap_model(trainer.ref_model)
    ref_weights, policy_weights = ref.state_dict(), policy.state_dict()
    assert all(torch.equal(ref_weights[name], value) for name, value in start.items())
    assert any(not torch.equal(policy_weights[name], value) for name, value in start.items())
    assert not ref.training and policy.training
    assert all(not p.requires_grad and p.grad is None for p in ref.parameters())
    assert ref.dtype == policy.dtype == torch.bfloat16  # the policy's dtype, not TRL's fp32 default
    storage = {p.untyped_storage().data_ptr() for p in policy.parameters()}
    assert not storage & {p.untyped_storage().data_ptr() for p in ref.parameters()}
    kl = logged_kl(trainer)
    assert len(kl) == STEPS and kl[0] == pytest.approx(0.0, abs=1e-7) and kl[-1] > 1e-5
    # the memory estimate's reference is the copy TRL holds: the policy's parameters in its dtype
    params, trainable = count_parameters(policy.config)
    estimate = dict(estimate_memory(params, trainable, weight_bytes=2, lora=False, beta=BETA).parts)
    assert estimate["reference"] == sum(p.numel() * p.element_size() for p in ref.parameters())


def remote_code_copy(model: Path, target: Path) -> Path:
    """`model` as a checkpoint whose architecture lives in its own Python files (auto_map): it loads
    only with trust_remote_code."""
    shutil.copytree(model, target)
    (target / "configuration_remote_llama.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass RemoteLlamaConfig(LlamaConfig):\n"
        '    model_type = "remote_llama"\n',
        encoding="utf-8",
    )
    (target / "modeling_remote_llama.py").write_text(
        "from transformers import LlamaForCausalLM\n\n"
        "from .configuration_remote_llama import RemoteLlamaConfig\n\n\n"
        "class RemoteLlamaForCausalLM(LlamaForCausalLM):\n    config_class = RemoteLlamaConfig\n",
        encoding="utf-8",
    )
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    config.update(
        model_type="remote_llama",
        architectures=["RemoteLlamaForCausalLM"],
        auto_map={
            "AutoConfig": "configuration_remote_llama.RemoteLlamaConfig",
            "AutoModelForCausalLM": "modeling_remote_llama.RemoteLlamaForCausalLM",
        },
    )
    (target / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return target


def test_reference_of_a_remote_code_model_loads_with_model_trust_remote_code(tiny_lm, tmp_path):
    """TRL loads the full fine-tuning reference itself, with GRPOConfig.trust_remote_code: semrl must
    pass model.trust_remote_code on, or a remote-code model cannot train with beta > 0."""
    remote = remote_code_copy(tiny_lm, tmp_path / "remote")
    trainer = grpo_trainer(remote, tmp_path / "grpo", remote=True)
    assert type(trainer.ref_model).__name__ == "RemoteLlamaForCausalLM"


# ---- through the CLI: log_history.json, metrics.json, summary.md and the model card -------------


def kl_config(tmp_path: Path, lora_spec: dict | None, beta: float = BETA) -> Path:
    config = {
        "name": "kl",
        "seed": 0,
        "model": {"tiny": {}, **({"lora": lora_spec} if lora_spec else {})},
        "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
        "data": {
            "train": str(BO_ZH),
            "columns": {"source": "reference", "reference": "source"},
            "test_size": 4,
        },
        "rewards": {
            "rewards": [
                {"type": "language", "weight": 1.0, "lang": "bo", "mode": "continuous"},
                {"type": "chrf", "weight": 1.0, "lang": "bo"},
            ]
        },
        "sft": {"examples": 16, "max_steps": 3, "batch_size": 8, "learning_rate": 1.0e-2, "logging_steps": 1},
        "grpo": {
            "max_steps": STEPS,
            "beta": beta,
            "learning_rate": 1.0e-2,
            "num_generations": 4,
            "prompts_per_step": 2,
            "max_completion_length": 8,
            "temperature": 1.0,
            "logging_steps": 1,
        },
        "eval": {"metrics": ["chrf", "lang"], "resamples": 20, "max_new_tokens": 8},
        "arms": [{"name": "rl", "recipe": "two_stage"}],
    }
    path = tmp_path / "kl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_two_stage_lora_run_logs_kl_into_metrics_summary_and_card(tmp_path):
    run = tmp_path / "run"
    result = run_cli("run", str(kl_config(tmp_path, {"r": 4, "alpha": 8, "dropout": 0.0})), "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    stage = Run(run).arm_stage("rl", "grpo")
    history = json.loads((stage / "log_history.json").read_text(encoding="utf-8"))
    kl = [entry["kl"] for entry in history if "kl" in entry]
    assert len(kl) == STEPS and kl[0] == pytest.approx(0.0, abs=1e-7) and kl[-1] > 0
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["kl"] == {
        "first": kl[0],
        "last": kl[-1],
        "mean": pytest.approx(sum(kl) / STEPS),
        "n": STEPS,
    }
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["rl/grpo"]["metrics"]["kl"] == metrics["kl"]
    assert "kl" not in manifest["stages"]["rl/sft"]["metrics"]
    summary = (run / "summary.md").read_text(encoding="utf-8")
    header = next(line for line in summary.splitlines() if line.startswith("| stage | steps"))
    assert header.endswith("| KL to reference (first → last) |")
    grpo_row = next(line for line in summary.splitlines() if line.startswith("| rl/grpo |"))
    sft_row = next(line for line in summary.splitlines() if line.startswith("| rl/sft |"))
    assert grpo_row.endswith(f"| {kl[0]:.3g} → {kl[-1]:.3g} |") and sft_row.endswith("| – |")
    card = (stage / "final" / "README.md").read_text(encoding="utf-8")
    assert (
        "KL penalty of stage `grpo`: beta 0.04 against its starting model, the final model of stage "
        "`sft` (the same weights with the LoRA adapter switched off); logged KL "
        f"{kl[0]:.4g} → {kl[-1]:.4g}." in card
    )


@pytest.mark.parametrize(
    "lora_spec, beta, expected",
    [
        (
            None,
            BETA,
            "KL penalty of stage `grpo`: beta 0.04 against its starting model, the final model of "
            "stage `sft` (a frozen copy of it).",
        ),
        (None, 0.0, "KL penalty of stage `grpo`: none (beta 0, no reference model)."),
    ],
)
def test_card_states_beta_and_the_reference_of_full_fine_tuning(tmp_path, lora_spec, beta, expected):
    from semrl.experiment_config import load_experiment
    from semrl.recipes.plan import plan_arm
    from semrl.report.model_card import render_card

    exp = load_experiment(kl_config(tmp_path, lora_spec, beta))
    arm = exp.arms[0]
    plans = plan_arm(exp, arm)
    card = render_card(tmp_path, exp, {"stages": {}}, arm, plans, plans[-1], None)
    assert expected in card


def dry_run_memory(tmp_path: Path, lora_spec: dict | None, dtype: str) -> str:
    config = yaml.safe_load(kl_config(tmp_path, lora_spec).read_text(encoding="utf-8"))
    config["model"]["dtype"] = dtype
    (tmp_path / "kl.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = cli_in_process("run", str(tmp_path / "kl.yaml"), "--dry-run")
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("memory per process (CPU)"))


def test_preflight_estimate_counts_a_reference_copy_for_full_fine_tuning_only(tmp_path):
    # the default tiny model: 115008 parameters; bf16 weights 0.2 MiB, and the reference as much
    full = dry_run_memory(tmp_path, None, "bfloat16")
    assert "weights 0.2 MiB + gradients 0.2 MiB + AdamW 1.3 MiB + reference 0.2 MiB + logits " in full
    lora_line = dry_run_memory(tmp_path, {"r": 4, "alpha": 8}, "bfloat16")
    assert "reference" not in lora_line and "(LoRA)" in lora_line


def test_cpu_fsdp_estimate_keeps_the_whole_reference_per_process(tmp_path, monkeypatch):
    """Under FSDP on CPU, TRL prepares the reference before semrl turns FSDP on (train/sharded.py),
    so each process holds all of it while the policy's weights are sharded."""
    from semrl.checks.memory import largest_estimate
    from semrl.experiment_config import load_experiment
    from semrl.recipes.plan import plan_experiment

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    exp = load_experiment(kl_config(tmp_path, None))
    parts = dict(largest_estimate(exp, plan_experiment(exp)).parts)
    assert parts["reference"] == 115008 * 4 == 2 * parts["weights"]  # fp32 on CPU, weights halved
