"""vLLM generation settings (passed to GRPOConfig; refused without vLLM or CUDA) and the dry-run
memory estimate (arithmetic checked by hand on tiny configs)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from conftest import cli_in_process, experiment, stderr_lines
from semrl.checks.memory import count_parameters, estimate_memory, sharding_from_env
from semrl.experiment_config import load_experiment

NO_VLLM = importlib.util.find_spec("vllm") is None
REWARDS = {
    "rewards": [
        {"type": "language", "lang": "zh"},
        {"type": "semantic", "encoder": "default", "device": "cpu"},
    ]
}


@pytest.fixture
def no_cuda(monkeypatch):
    """The refusal must not depend on the machine the test runs on."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_use_vllm_on_the_command_line_is_refused_in_one_line(tmp_path, no_cuda):
    out = tmp_path / "run"
    result = cli_in_process(
        "run", str(experiment(tmp_path)), "--out", str(out), "--dry-run", "grpo.use_vllm=true"
    )
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: grpo.use_vllm: ")
    assert "no CUDA device is available" in lines[0]
    assert ("vLLM is not installed (pip install -e .[vllm])" in lines[0]) == NO_VLLM
    assert not out.exists()


def test_use_vllm_in_an_arm_names_the_arm(tmp_path, no_cuda):
    arms = [
        {"name": "s", "recipe": "strong_sft"},
        {"name": "g", "recipe": "grpo", "grpo": {"use_vllm": True}},
    ]
    result = cli_in_process("run", str(experiment(tmp_path, arms=arms, rewards=REWARDS)), "--dry-run")
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: arms.g.grpo.use_vllm: ")


def test_use_vllm_off_is_not_checked(tmp_path, no_cuda):
    result = cli_in_process("run", str(experiment(tmp_path)), "--dry-run", "grpo.use_vllm=false")
    assert result.returncode == 0, result.stderr


def test_vllm_fields_reach_grpo_config(tmp_path):
    from semrl.train.grpo import grpo_config
    from semrl.train.settings import StageSettings

    exp = load_experiment(
        experiment(tmp_path),
        [
            "grpo.vllm_mode=server",
            "grpo.vllm_server_base_url=http://gpu0:8001",
            "grpo.vllm_server_timeout=30",
            "grpo.vllm_gpu_memory_utilization=0.5",
            "grpo.vllm_tensor_parallel_size=2",
            "grpo.vllm_enable_sleep_mode=true",
        ],
    )
    config = grpo_config(StageSettings.from_experiment(exp), exp.grpo, tmp_path / "out", "cpu")
    assert config.use_vllm is False  # not set: TRL's default
    assert (config.vllm_mode, config.vllm_server_base_url, config.vllm_server_timeout) == (
        "server",
        "http://gpu0:8001",
        30.0,
    )
    assert (config.vllm_gpu_memory_utilization, config.vllm_tensor_parallel_size) == (0.5, 2)
    assert config.vllm_enable_sleep_mode is True


def test_unset_vllm_settings_leave_trls_defaults(tmp_path):
    import dataclasses

    from trl import GRPOConfig

    from semrl.train.grpo import grpo_config
    from semrl.train.settings import StageSettings

    exp = load_experiment(experiment(tmp_path))
    assert exp.grpo.vllm_kwargs() == {}  # None: not passed, so GRPOConfig keeps its own default
    config = grpo_config(StageSettings.from_experiment(exp), exp.grpo, tmp_path / "out", "cpu")
    names = [name for name in type(exp.grpo).model_fields if name.startswith(("use_vllm", "vllm_"))]
    assert len(names) == 10
    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert {name: getattr(config, name) for name in names} == {name: defaults[name] for name in names}
    assert config.use_vllm is False


def test_unknown_vllm_mode_is_refused(tmp_path):
    result = cli_in_process("run", str(experiment(tmp_path)), "--dry-run", "grpo.vllm_mode=remote")
    assert result.returncode == 2 and "vllm_mode" in stderr_lines(result)[0]


# -- memory estimate ------------------------------------------------------------------------------


def test_full_fine_tuning_bf16_with_reference():
    # 1000 params, bf16: weights 2000 B, bf16 gradients 2000 B, AdamW 2 x 4 B + fp32 master 4 B = 12000 B,
    # reference (beta > 0) 2000 B, encoder 500 B: 18500 B
    estimate = estimate_memory(1000, 1000, weight_bytes=2, lora=False, beta=0.1, extras={"encoder": 500})
    assert dict(estimate.parts) == {
        "weights": 2000,
        "gradients": 2000,
        "AdamW": 12000,
        "reference": 2000,
        "encoder": 500,
    }
    assert estimate.total == 18500


def test_fp32_has_no_master_copy_and_beta_zero_no_reference():
    estimate = estimate_memory(1000, 1000, weight_bytes=4, lora=False, beta=0.0)
    assert dict(estimate.parts) == {"weights": 4000, "gradients": 4000, "AdamW": 8000, "reference": 0}


def test_lora_trains_fp32_adapters_and_needs_no_reference_copy():
    # base 1000 bf16 = 2000 B frozen + 100 fp32 adapters 400 B; gradients 400 B; AdamW 800 B
    estimate = estimate_memory(1000, 100, weight_bytes=2, lora=True, beta=0.1)
    assert dict(estimate.parts) == {"weights": 2400, "gradients": 400, "AdamW": 800, "reference": 0}


@pytest.mark.parametrize(
    "stage, expected",
    [
        (3, {"weights": 500, "gradients": 500, "AdamW": 3000, "reference": 500, "RM": 700}),
        (2, {"weights": 2000, "gradients": 500, "AdamW": 3000, "reference": 2000, "RM": 700}),
        (1, {"weights": 2000, "gradients": 2000, "AdamW": 3000, "reference": 2000, "RM": 700}),
    ],
)
def test_sharding_divides_by_processes(stage, expected):
    estimate = estimate_memory(
        1000, 1000, weight_bytes=2, lora=False, beta=0.1, extras={"RM": 700}, processes=4, zero_stage=stage
    )
    assert dict(estimate.parts) == expected


def test_sharding_read_from_accelerate_env():
    assert sharding_from_env({}) == (1, 0)
    assert sharding_from_env({"WORLD_SIZE": "4", "ACCELERATE_USE_FSDP": "true"}) == (4, 3)
    assert sharding_from_env(
        {"WORLD_SIZE": "2", "ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}
    ) == (2, 2)


def test_parameters_counted_on_meta_device():
    from transformers import LlamaConfig

    from semrl.experiment_config import LoraSpec

    config = LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        tie_word_embeddings=True,
    )
    # embedding 512*64 = 32768 (tied with lm_head); per layer q,k,v,o 4*64*64 = 16384, MLP 3*64*128 = 24576,
    # 2 norms 128 -> 41088; 2 layers 82176; final norm 64: 115008
    assert count_parameters(config) == (115008, 115008)
    # LoRA r=2 on all linear layers but lm_head: r*(in+out) = 4*2*128 + 2*2*192 + 2*192 = 2176 per layer
    assert count_parameters(config, LoraSpec(r=2, alpha=4)) == (115008 + 4352, 4352)


def test_dry_run_prints_the_estimate(tmp_path):
    result = cli_in_process(
        "run",
        str(
            experiment(
                tmp_path,
                grpo={"beta": 0.04},
                sft={"examples": 4},
                rewards=REWARDS,
                arms=[{"name": "t", "recipe": "two_stage"}],
            )
        ),
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    line = next(
        line for line in result.stdout.splitlines() if line.startswith("memory per process (CPU) (est.)")
    )
    # the default tiny model (115008 params above) as this CPU loads it, fp32: weights, gradients and the
    # reference 0.4 MiB each, AdamW 8 B/param (no master copy); the logits of the GRPO batch (4 prompts x 8
    # generations x 65 tokens x the tokenizer's vocabulary x fp32 x 3 copies); this process's own memory
    assert "weights 0.4 MiB + gradients 0.4 MiB + AdamW 0.9 MiB + reference 0.4 MiB + logits " in line
    assert "arm t (grpo)" in line and "115.0k parameters" in line and "loads 32-bit weights on cpu" in line
    assert "+ runtime (this process) " in line
    assert "encoder default " in line and "(on cpu)" not in line  # the process holds the CPU encoder too


def test_colocated_vllm_share_is_named(tmp_path):
    from semrl.checks.memory import largest_estimate
    from semrl.recipes.plan import plan_experiment

    config = experiment(tmp_path, rewards=REWARDS, arms=[{"name": "g", "recipe": "grpo"}])
    exp = load_experiment(config, ["grpo.use_vllm=true"])  # not preflighted: no vLLM here
    line = largest_estimate(exp, plan_experiment(exp)).line()
    assert "plus vLLM's 0.3 of the GPU (colocate)" in line and "arm g (grpo)" in line


def test_a_policy_that_cannot_be_sized_says_so(tmp_path, monkeypatch):
    from semrl.checks import memory
    from semrl.recipes.plan import plan_experiment

    def unreadable(exp):
        raise OSError("no config.json\nmore")

    monkeypatch.setattr(memory, "_policy_config", unreadable)
    exp = load_experiment(experiment(tmp_path))
    line = memory.largest_estimate(exp, plan_experiment(exp)).line()
    assert (
        line
        == "memory per GPU (est.): not estimated: the policy could not be sized (OSError: no config.json)"
    )


def test_model_folders_sized_from_config_json(tiny_lm, tiny_classifier, tmp_path):
    """A policy folder and an RM folder on the policy's GPU, counted as the loaders would load them."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from semrl.checks.memory import largest_estimate
    from semrl.recipes.plan import plan_experiment

    policy = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_lm).parameters())
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_classifier)
    rm_bytes = sum(p.numel() * p.element_size() for p in rm.parameters())
    rewards = {"rewards": [{"type": "reward_model", "model": str(tiny_classifier), "name": "rm"}]}
    config = experiment(
        tmp_path,
        model={"path": str(tiny_lm), "dtype": "float32"},
        rewards=rewards,
        arms=[{"name": "g", "recipe": "grpo"}],
    )
    exp = load_experiment(config)
    estimate = largest_estimate(exp, plan_experiment(exp))
    parts = dict(estimate.parts)
    assert parts["weights"] == 4 * policy and parts["AdamW"] == 8 * policy
    assert parts[f"RM {tiny_classifier.name}"] == rm_bytes
