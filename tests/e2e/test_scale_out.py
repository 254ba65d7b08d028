"""Scale-out under `accelerate launch` with two CPU processes (gloo): the shipped FSDP config trains
every stage kind to a plain `from_pretrained` final/ folder, an FSDP stage killed with SIGKILL
resumes to the weights of an uninterrupted run, and a 2-machine launch (simulated on this host)
gives the weights of the 1-machine, 2-process run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import free_port, start_until_checkpoint, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = ROOT / "configs" / "accelerate"
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}


def launch(config_file: str, *args: str, port: int | None = None, machines: str | None = None) -> list[str]:
    """`accelerate launch --config_file configs/accelerate/X --num_processes 2 -m semrl ARGS` (each
    rank a real `python -m semrl` process);
    `machines` "RANK" makes it one of two machines (one process each) meeting on 127.0.0.1."""
    command = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        str(ACCELERATE / config_file),
        "--num_processes",
        "2",
        "--main_process_port",
        str(port or free_port()),
    ]
    if machines is not None:
        command += ["--num_machines", "2", "--machine_rank", machines, "--main_process_ip", "127.0.0.1"]
    return [*command, "-m", "semrl", *args]


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def sft_config(tmp_path: Path, **sft) -> Path:
    return write_config(
        tmp_path / "sft.yaml",
        {
            "name": "scale",
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
            "data": {"train": str(BO_ZH), "test_size": 4},
            "sft": {
                "max_steps": 6,
                "batch_size": 2,
                "learning_rate": 1.0e-3,
                "save_steps": 2,
                "logging_steps": 1,
                **sft,
            },
        },
    )


def final_weights(run: Path, stage: str) -> dict[str, torch.Tensor]:
    """The stage's final/ weights, loaded the way a user loads them (transformers, safetensors)."""
    final = run / "train" / stage / "final"
    assert (final / "model.safetensors").exists() and not list(final.glob("*.bin"))
    if stage == "rm":
        from transformers import AutoModelForSequenceClassification as Auto
    else:
        from transformers import AutoModelForCausalLM as Auto
    Auto.from_pretrained(final)
    return load_file(str(final / "model.safetensors"))


def assert_trained_and_whole(run: Path, stage: str) -> dict[str, torch.Tensor]:
    """final/ holds every weight at full shape (gathered, not one rank's shard) and training moved them."""
    final, base = final_weights(run, stage), load_file(str(run / "base_model" / "model.safetensors"))
    shared = [key for key in final if key in base]
    assert len(shared) >= len(final) - 2, sorted(set(final) ^ set(base))  # a classifier adds its score head
    assert all(final[key].shape == base[key].shape for key in shared)
    assert any(not torch.equal(final[key], base[key]) for key in shared)
    return final


def run_ok(command: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_tree(pid: int) -> None:
    """SIGKILL the launcher, torchrun's agent and both ranks at once: torchrun starts its workers
    in their own sessions, and a worker whose agent died would otherwise train on."""
    import psutil

    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


@pytest.mark.slow  # ~60 s; one-process kill-and-resume (test_reliability) and FSDP stages stay in CI
def test_fsdp_sft_killed_then_resumed_equals_an_uninterrupted_fsdp_run(tmp_path):
    """The CI check: FSDP (full shard, sharded checkpoints) on 2 CPU processes; a SIGKILL of the
    whole launch after a checkpoint, then `--resume`, ends with the uninterrupted run's weights."""
    config = sft_config(tmp_path, max_steps=12)
    straight = tmp_path / "straight"
    run_ok(launch("fsdp.yaml", "train", "sft", "--config", str(config), "--out", str(straight)))
    expected = assert_trained_and_whole(straight, "sft")
    assert (
        straight / "train" / "sft" / "checkpoint-12" / "pytorch_model_fsdp_0"
    ).is_dir()  # sharded checkpoint

    run, stage = tmp_path / "victim", tmp_path / "victim" / "train" / "sft"
    args = launch("fsdp.yaml", "train", "sft", "--config", str(config), "--out", str(run))
    victim = start_until_checkpoint(args, stage, ENV, stdout=subprocess.DEVNULL)
    kill_tree(victim.pid)
    victim.communicate()
    assert not (stage / "final").exists()
    run_ok(args + ["--resume"])
    resumed = final_weights(run, "sft")
    # bit-identical: FSDP1 on gloo reduces in a fixed order, so nothing is left to chance on CPU
    assert all(torch.equal(expected[key], resumed[key]) for key in expected)


def test_fsdp_grpo_finishes_with_a_plain_final_model(tmp_path):
    config = write_config(
        tmp_path / "grpo.yaml",
        {
            "name": "scale-grpo",
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
            "data": {
                "train": str(BO_ZH),
                "columns": {"source": "reference", "reference": "source"},
                "test_size": 4,
            },
            "rewards": {"rewards": [{"type": "chrf", "weight": 1.0, "lang": "bo"}]},
            "grpo": {
                "max_steps": 2,
                "learning_rate": 3.0e-3,
                "num_generations": 2,
                "prompts_per_step": 2,
                "max_completion_length": 8,
                "logging_steps": 1,
                "save_steps": 1,
                "beta": 0.04,  # each CPU rank holds TRL's whole reference beside its policy shard
            },
        },
    )
    run_ok(launch("fsdp.yaml", "train", "grpo", "--config", str(config), "--out", str(tmp_path / "run")))
    assert_trained_and_whole(tmp_path / "run", "grpo")
    history = json.loads(
        (tmp_path / "run" / "train" / "grpo" / "log_history.json").read_text(encoding="utf-8")
    )
    kl = [entry["kl"] for entry in history if "kl" in entry]
    assert len(kl) == 2 and kl[0] == pytest.approx(0.0, abs=1e-6)  # the reference is the starting model


def test_fsdp_reward_model_finishes_with_a_plain_final_model(tmp_path):
    pairs = [
        {"prompt": "Say: ", "chosen": f"the farmer reads book {i}.", "rejected": "zzz qqq ###"}
        for i in range(16)
    ]
    data = write_jsonl(tmp_path / "prefs.jsonl", pairs)
    config = write_config(
        tmp_path / "rm.yaml",
        {
            "name": "scale-rm",
            "model": {"tiny": {}},
            "task": {"type": "generic"},
            "data": {"train": str(data), "columns": {"prompt": "prompt", "reference": "chosen"}},
            "rm": {
                "train": str(data),
                "test_size": 0.25,
                "max_steps": 2,
                "learning_rate": 1.0e-3,
                "batch_size": 2,
            },
        },
    )
    run_ok(launch("fsdp.yaml", "train", "rm", "--config", str(config), "--out", str(tmp_path / "run")))
    assert_trained_and_whole(tmp_path / "run", "rm")


@pytest.mark.slow  # ~30 s: two launches
def test_two_machines_give_the_weights_of_one_machine_with_two_processes(tmp_path):
    """Two `accelerate launch` commands, one per "machine", one process each, as on two nodes
    (here both on 127.0.0.1, sharing the run folder as nodes share a file system)."""
    config = sft_config(tmp_path, max_steps=4)
    one = tmp_path / "one"
    run_ok(launch("ddp.yaml", "train", "sft", "--config", str(config), "--out", str(one)))

    two, port = tmp_path / "two", free_port()
    nodes = [
        subprocess.Popen(
            launch(
                "multi_node.yaml",
                "train",
                "sft",
                "--config",
                str(config),
                "--out",
                str(two),
                port=port,
                machines=str(rank),
            ),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    errors = [node.communicate(timeout=600)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    a, b = final_weights(one, "sft"), final_weights(two, "sft")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_fsdp_encoder_stage_finishes_with_one_writer(tmp_path):
    """One rank builds the tiny initial encoder and saves final/: two writers of the same folders
    would remove what the other reads (FileNotFoundError on the example under FSDP)."""
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl", [{"anchor": f"sentence {i}", "positive": f"phrase {i}"} for i in range(24)]
    )
    config = write_config(
        tmp_path / "enc.yaml",
        {
            "name": "scale-enc",
            "model": {"tiny": {}},
            "task": {"type": "generic"},
            "data": {"train": str(BO_ZH), "columns": {"prompt": "source"}},
            "encoder": {"train": str(pairs), "max_steps": 2, "batch_size": 4, "learning_rate": 1.0e-3},
        },
    )
    run_ok(launch("fsdp.yaml", "train", "encoder", "--config", str(config), "--out", str(tmp_path / "run")))
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(tmp_path / "run" / "train" / "encoder" / "final"), device="cpu")
    assert encoder.encode(["sentence 1"]).shape == (1, 64)


@pytest.mark.slow  # ~1 min: `semrl run` on the example, every stage under FSDP
def test_the_example_runs_under_fsdp(tmp_path):
    example = yaml.safe_load((ROOT / "configs" / "examples" / "tiny-bo-zh.yaml").read_text(encoding="utf-8"))
    example["data"]["train"] = str(BO_ZH)
    example["eval"]["suite"] = str(ROOT / "configs" / "examples" / "general" / "suite.yaml")
    config = write_config(tmp_path / "example.yaml", example)
    run_ok(launch("fsdp.yaml", "run", str(config), "--out", str(tmp_path / "run")), timeout=1200)
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert set(results["arms"]) == {"base", "semantic_rl", "strong_sft"}
    from transformers import AutoModelForCausalLM

    for stage in ("semantic_rl/sft", "semantic_rl/grpo", "strong_sft/sft"):
        AutoModelForCausalLM.from_pretrained(tmp_path / "run" / stage / "final")


def lora_final_under(config_file: str, config: Path, stage: str, out: Path) -> dict[str, torch.Tensor]:
    run_ok(launch(config_file, "train", stage, "--config", str(config), "--out", str(out)))
    return assert_trained_and_whole(out, stage)


@pytest.mark.slow  # ~30 s: two launches
def test_lora_under_fsdp_saves_the_merged_model_of_a_ddp_run(tmp_path):
    """LoRA trains under FSDP (orig params), and final/ is the gathered base with the adapter merged
    in, under the base model's names: the same weights as the LoRA run under plain DDP."""
    config = sft_config(tmp_path, max_steps=4)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["model"]["lora"] = {"r": 4, "alpha": 8}
    write_config(config, settings)
    sharded = lora_final_under("fsdp.yaml", config, "sft", tmp_path / "fsdp")
    plain = lora_final_under("ddp.yaml", config, "sft", tmp_path / "ddp")
    assert sorted(sharded) == sorted(plain)
    assert all(torch.equal(sharded[key], plain[key]) for key in plain)


@pytest.mark.slow  # ~40 s: two GRPO launches
def test_lora_grpo_with_a_reference_under_fsdp_matches_ddp(tmp_path):
    config = write_config(
        tmp_path / "grpo.yaml",
        {
            "name": "scale-lora-grpo",
            "model": {"tiny": {}, "lora": {"r": 4, "alpha": 8}},
            "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
            "data": {
                "train": str(BO_ZH),
                "columns": {"source": "reference", "reference": "source"},
                "test_size": 4,
            },
            "rewards": {"rewards": [{"type": "chrf", "weight": 1.0, "lang": "bo"}]},
            "grpo": {
                "max_steps": 2,
                "learning_rate": 3.0e-3,
                "num_generations": 2,
                "prompts_per_step": 2,
                "max_completion_length": 8,
                "logging_steps": 1,
                "save_steps": 1,
                "beta": 0.04,
            },
        },
    )
    sharded = lora_final_under("fsdp.yaml", config, "grpo", tmp_path / "fsdp")
    plain = lora_final_under("ddp.yaml", config, "grpo", tmp_path / "ddp")
    assert all(torch.equal(sharded[key], plain[key]) for key in plain)


@pytest.mark.slow  # ~60 s: one two-process GRPO launch with checkpoint selection
def test_checkpoint_selection_under_two_processes_chooses_once_and_every_rank_agrees(tmp_path):
    """grpo.select under DDP: the main process scores the checkpoints while the other waits, one
    selection.json is written, and final/ holds the chosen checkpoint's weights."""
    config = write_config(
        tmp_path / "grpo.yaml",
        {
            "name": "scale-select",
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
            "data": {
                "train": str(BO_ZH),
                "columns": {"source": "reference", "reference": "source"},
                "test_size": 4,
            },
            "rewards": {"rewards": [{"type": "chrf", "weight": 1.0, "lang": "bo"}]},
            "grpo": {
                "max_steps": 2,
                "learning_rate": 3.0e-3,
                "num_generations": 2,
                "prompts_per_step": 2,
                "max_completion_length": 8,
                "logging_steps": 1,
                "save_steps": 1,
                "select": {"dev": 4, "metric": "chrf"},
            },
        },
    )
    run_ok(launch("ddp.yaml", "train", "grpo", "--config", str(config), "--out", str(tmp_path / "run")))
    stage = tmp_path / "run" / "train" / "grpo"
    selection = json.loads((stage / "selection.json").read_text(encoding="utf-8"))
    assert [c["step"] for c in selection["candidates"]] == [1, 2]
    chosen = stage / f"checkpoint-{selection['chosen_step']}"
    final = load_file(str(stage / "final" / "model.safetensors"))
    picked = load_file(str(chosen / "model.safetensors"))
    assert sorted(final) == sorted(picked) and all(torch.equal(final[k], picked[k]) for k in final)
    assert (
        json.loads((stage / "metrics.json").read_text(encoding="utf-8"))["selection"]["chosen_step"]
        == (selection["chosen_step"])
    )
