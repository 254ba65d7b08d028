"""Training through the real CLI on CPU with tiny local models: every stage trains, recipes chain,
bad configs exit 2 with nothing half-written."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import free_port, run_cli, write_jsonl
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "examples" / "tiny-bo-zh.yaml"
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def toy_grpo_config(tmp_path: Path, **grpo) -> Path:
    """zh -> bo (columns swapped on the shipped bo-zh file): a Tibetan target, syllable chrF + language."""
    return write_config(
        tmp_path / "toy.yaml",
        {
            "name": "toy-grpo",
            "model": {"tiny": {}},
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
            "grpo": {
                "max_steps": 50,
                "learning_rate": 3.0e-3,
                "num_generations": 4,
                "prompts_per_step": 4,
                "max_completion_length": 16,
                "temperature": 1.0,
                "logging_steps": 1,
                "save_steps": 25,
                **grpo,
            },
        },
    )


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("example") / "run"
    result = run_cli("run", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_example_runs_every_stage(example_run):
    manifest = json.loads((example_run / "manifest.json").read_text(encoding="utf-8"))
    assert {"encoder", "semantic_rl/sft", "semantic_rl/grpo", "strong_sft/sft"} <= set(manifest["stages"])
    assert all(entry["status"] == "done" for entry in manifest["stages"].values())
    assert manifest["seed"] == 0 and manifest["versions"]["trl"] and "stages" in manifest
    assert yaml.safe_load((example_run / "config.yaml").read_text(encoding="utf-8"))["name"] == "tiny-bo-zh"
    for key in ("semantic_rl/sft", "semantic_rl/grpo", "strong_sft/sft"):
        metrics = manifest["stages"][key]["metrics"]
        assert math.isfinite(metrics["loss"]["last"]) and metrics["steps"] > 0
    assert manifest["stages"]["semantic_rl/sft"]["metrics"]["examples"] == 48
    assert manifest["stages"]["strong_sft/sft"]["metrics"]["examples"] == 72
    assert len((example_run / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()) == 12


def test_two_stage_starts_grpo_from_the_sft_checkpoint(example_run):
    manifest = json.loads((example_run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["semantic_rl/grpo"]["init"] == str(
        Run(example_run).arm_stage("semantic_rl", "sft") / "final"
    )
    base = weights(example_run / "base_model")
    sft = weights(Run(example_run).arm_stage("semantic_rl", "sft") / "final")
    grpo = weights(Run(example_run).arm_stage("semantic_rl", "grpo") / "final")
    assert changed(base, sft) and changed(sft, grpo)
    grpo_metrics = manifest["stages"]["semantic_rl/grpo"]["metrics"]
    assert {"reward/semantic", "reward/language"} <= set(grpo_metrics)  # each component logged


def test_encoder_stage_raises_retrieval_accuracy(example_run):
    metrics = json.loads((example_run / "encoder" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["retrieval_accuracy"] > metrics["retrieval_accuracy_before"]


def test_resume_of_a_finished_run_skips_every_stage(example_run):
    before = (
        (Run(example_run).arm_stage("semantic_rl", "grpo") / "final" / "model.safetensors").stat().st_mtime
    )
    result = run_cli("run", str(EXAMPLE), "--out", str(example_run), "--resume")
    assert result.returncode == 0
    assert "done, skipped" in result.stderr
    assert (
        Run(example_run).arm_stage("semantic_rl", "grpo") / "final" / "model.safetensors"
    ).stat().st_mtime == before


def test_grpo_raises_mean_reward_on_a_toy_reward(tmp_path):
    result = run_cli(
        "train", "grpo", "--config", str(toy_grpo_config(tmp_path)), "--out", str(tmp_path / "run")
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(
        sorted((tmp_path / "run" / "train" / "grpo").glob("checkpoint-*/trainer_state.json"))[-1].read_text(
            encoding="utf-8"
        )
    )
    rewards = [entry["reward"] for entry in state["log_history"] if "reward" in entry]
    assert len(rewards) == 50
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.2, (first, last)


def test_rm_stage_learns_an_easy_preference(tmp_path):
    rng = random.Random(0)
    subjects = ["the farmer", "my mother", "a student", "the doctor", "our teacher", "the child"]
    verbs = ["drinks tea", "reads a book", "writes a letter", "sings a song", "eats rice", "cleans the room"]
    pairs = []
    for _ in range(120):
        good = f"{rng.choice(subjects)} {rng.choice(verbs)} today."
        bad = " ".join(rng.choice(["zzz", "qqq", "###", "xx"]) for _ in range(rng.randint(3, 8)))
        pairs.append({"prompt": "Say something sensible: ", "chosen": good, "rejected": bad})
    data = write_jsonl(tmp_path / "prefs.jsonl", pairs)
    config = write_config(
        tmp_path / "rm.yaml",
        {
            "name": "toy-rm",
            "model": {"tiny": {}},
            "task": {"type": "generic"},
            "data": {"train": str(data), "columns": {"prompt": "prompt", "reference": "chosen"}},
            "rm": {
                "train": str(data),
                "test_size": 0.25,
                "epochs": 3,
                "learning_rate": 1.0e-3,
                "batch_size": 8,
            },
        },
    )
    result = run_cli("train", "rm", "--config", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "train" / "rm" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test_pairs"] == 30
    kept = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))["data"]
    assert set(kept) == {"rm-train.jsonl", "rm-test.jsonl"}  # a resume on other pairs is refused
    assert metrics["pair_accuracy"] > 0.9, metrics
    assert math.isfinite(metrics["loss"]["last"])


def test_encoder_stage_from_the_cli(tmp_path):
    rows = [json.loads(line) for line in BO_ZH.read_text(encoding="utf-8").splitlines()]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"bo": r["source"], "zh": r["reference"]} for r in rows])
    config = write_config(
        tmp_path / "enc.yaml",
        {
            "name": "toy-encoder",
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
            "data": {"train": str(BO_ZH)},
            "encoder": {
                "train": str(pairs),
                "columns": {"anchor": "bo", "positive": "zh"},
                "test_size": 12,
                "epochs": 4,
                "learning_rate": 1.0e-3,
                "batch_size": 16,
            },
        },
    )
    result = run_cli("train", "encoder", "--config", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(
        (tmp_path / "run" / "train" / "encoder" / "metrics.json").read_text(encoding="utf-8")
    )
    assert metrics["retrieval_accuracy"] > metrics["retrieval_accuracy_before"]
    kept = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))["data"]
    assert set(kept) == {"encoder-train.jsonl", "encoder-test.jsonl"}
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tmp_path / "run" / "train" / "encoder" / "final"), device="cpu")
    assert model.encode(["ཁྱི་ནག་པོ།"]).shape[1] == 64


def test_sft_stage_alone_with_lora(tmp_path):
    config = write_config(
        tmp_path / "sft.yaml",
        {
            "name": "toy-sft",
            "model": {"tiny": {}, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
            "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
            "data": {"train": str(BO_ZH), "test_size": 4},
            "sft": {"epochs": 1, "learning_rate": 1.0e-3, "batch_size": 8, "examples": 32},
        },
    )
    result = run_cli("train", "sft", "--config", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    final = tmp_path / "run" / "train" / "sft" / "final"
    assert (final / "model.safetensors").exists() and not (final / "adapter_config.json").exists()  # merged
    assert changed(weights(tmp_path / "run" / "base_model"), weights(final))
    metrics = json.loads((final.parent / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["examples"] == 32 and math.isfinite(metrics["train_loss"])


def test_accelerate_two_cpu_processes_run_grpo(tmp_path):
    config = toy_grpo_config(tmp_path, max_steps=4, save_steps=2)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    accelerate = Path(sys.executable).parent / "accelerate"
    result = subprocess.run(
        # accelerate's `--cpu` flag starts several processes only through MPI; `--multi_gpu` uses torchrun,
        # and semrl's TrainingArguments(use_cpu=True) then picks the gloo backend: two CPU processes, no GPU.
        [
            str(accelerate),
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--main_process_port",
            str(free_port()),
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            *("-m", "semrl", "train", "grpo", "--config", str(config), "--out", str(tmp_path / "run")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["train/grpo"]["status"] == "done"
    assert (tmp_path / "run" / "train" / "grpo" / "final" / "model.safetensors").exists()
    assert result.stdout.count("stage finished") == 1  # only rank 0 reports
    state = json.loads(
        sorted((tmp_path / "run" / "train" / "grpo").glob("checkpoint-*/trainer_state.json"))[-1].read_text(
            encoding="utf-8"
        )
    )
    single = run_cli("train", "grpo", "--config", str(config), "--out", str(tmp_path / "single"), env=env)
    assert single.returncode == 0
    single_state = json.loads(
        sorted((tmp_path / "single" / "train" / "grpo").glob("checkpoint-*/trainer_state.json"))[
            -1
        ].read_text(encoding="utf-8")
    )
    # two processes generate twice the completions per step
    assert state["log_history"][0]["num_tokens"] > 1.5 * single_state["log_history"][0]["num_tokens"]


def test_example_ends_with_evaluation_and_report(example_run):
    results = json.loads((example_run / "results.json").read_text(encoding="utf-8"))
    assert set(results["arms"]) == {"base", "semantic_rl", "strong_sft"}
    for name in ("semantic_rl", "strong_sft"):
        arm = results["arms"][name]
        assert set(arm["task"]) == {"bleu", "chrf", "sim", "lang"}
        for entry in arm["task"].values():
            low, high = entry["ci95"]
            assert low <= entry["value"] <= high and entry["signature"]
        assert {"qa-zh", "qa-en", "mc", "text", "overall"} <= set(arm["alignment_tax"])
        assert "kl_mean" in arm["drift"]["drift"] and "nll_shift" in arm["drift"]["text"]
        assert results["alignment_tax"][name] == arm["alignment_tax"]
    assert results["arms"]["base"]["drift"]["drift"]["kl_mean"] == pytest.approx(0.0, abs=1e-6)
    for figure in (
        "tradeoff.png",
        "task_metrics.png",
        "training.png",
        "monitors.png",
    ):  # monitors: the GRPO arm's
        data = (example_run / "figures" / figure).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    summary = (example_run / "summary.md").read_text(encoding="utf-8")
    assert "Alignment tax" in summary and "| semantic_rl |" in summary
    html = (example_run / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4 and "<table>" in html
    assert "Reward hacking monitors" in summary
    # what the policy wrote (completions.jsonl, on by default), each reward term beside it
    logged = [
        json.loads(line)
        for line in (Run(example_run).arm_stage("semantic_rl", "grpo") / "completions.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    assert sorted({row["step"] for row in logged}) == list(range(2, 25, 2))  # every logging step
    assert all(
        set(row["rewards"]) == {"semantic", "language"} and isinstance(row["completion"], str)
        for row in logged
    )
    assert {row["step"] for row in results["completions"]["semantic_rl/grpo"]} == {2, 14, 24}
    assert "Completions during GRPO" in html and "<th>semantic</th>" in html
    outputs = (example_run / "eval" / "semantic_rl.outputs.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(outputs) == 12 and {"source", "reference", "hypothesis", "seg_bleu"} <= set(
        json.loads(outputs[0])
    )


def test_every_trained_stage_of_the_example_has_a_model_card(example_run):
    """final/README.md in every trained stage, parsed by huggingface_hub, naming the base, the reward
    and the run's numbers; TRL's and sentence-transformers' cards (base "None", rows as widgets) gone."""
    import re

    from huggingface_hub import ModelCard

    cards = sorted(example_run.rglob("README.md"))
    run = Run(example_run)
    stages = (("semantic_rl", "grpo"), ("semantic_rl", "sft"), ("strong_sft", "sft"))
    assert cards == sorted(
        [example_run / "encoder" / "final" / "README.md"]
        + [run.arm_stage(arm, stage) / "final" / "README.md" for arm, stage in stages]
    )
    assert not any(re.search(r"\bNone\b", c.read_text(encoding="utf-8")) for c in cards)
    results = json.loads((example_run / "results.json").read_text(encoding="utf-8"))
    for arm, stage in (("semantic_rl", "grpo"), ("strong_sft", "sft")):
        card = ModelCard.load(run.arm_stage(arm, stage) / "final" / "README.md")
        [entry] = card.data.to_dict()["model-index"][0]["results"]
        assert {m["type"]: m["value"] for m in entry["metrics"]} == pytest.approx(
            {name: value["value"] for name, value in results["arms"][arm]["task"].items()}
        )
        assert "trained from a tiny randomly initialised model semrl built" in card.text
        assert card.data.library_name == "transformers" and "semrl" in card.data.tags
    grpo = ModelCard.load(Run(example_run).arm_stage("semantic_rl", "grpo") / "final" / "README.md").text
    assert "R = 1.5·semantic + 1·language" in grpo and "the sentence encoder this run trained first" in grpo
    encoder = ModelCard.load(example_run / "encoder" / "final" / "README.md")
    metrics = json.loads((example_run / "encoder" / "metrics.json").read_text(encoding="utf-8"))
    assert encoder.data.library_name == "sentence-transformers"
    assert f"| retrieval accuracy after | {metrics['retrieval_accuracy']:.4g} |" in encoder.text


def _chromium() -> str | None:
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    try:  # Debian's chromium, installed only for this test and only when missing
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return shutil.which("chromium")


@pytest.mark.slow  # starts a browser (~40 s); `make test-all` runs it
def test_report_renders_in_headless_chromium(example_run, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("headless Chromium is not installed and could not be installed (needs root and apt-get)")
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (example_run / "report.html").as_uri()
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert "Task quality on the test split" in dom.stdout and "Alignment tax" in dom.stdout
    assert "Completions during GRPO" in dom.stdout  # what the policy wrote, each reward term beside it
    assert dom.stdout.count("<table>") >= 5
    shot = tmp_path / "report.png"
    subprocess.run(
        flags + [f"--screenshot={shot}", "--window-size=1200,1600", url], capture_output=True, timeout=120
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000


def test_few_shot_transfer_from_two_checkpoints(example_run, tmp_path):
    config = write_config(
        tmp_path / "second.yaml",
        {
            "name": "zh-bo-transfer",
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
            "data": {
                "train": str(BO_ZH),
                "columns": {"source": "reference", "reference": "source"},
                "test_size": 12,
            },
            "sft": {"epochs": 2, "learning_rate": 3.0e-3, "batch_size": 8},
            "eval": {"resamples": 100},
            "arms": [{"name": "headline_sft", "recipe": "strong_sft"}],
        },
    )
    result = run_cli(
        "transfer",
        "--config",
        str(config),
        "--k",
        "16",
        "--out",
        str(tmp_path / "transfer"),
        "--from",
        f"rl={Run(example_run).arm_stage('semantic_rl', 'grpo') / 'final'}",
        "--from",
        f"sft={Run(example_run).arm_stage('strong_sft', 'sft') / 'final'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "transfer" / "transfer.json").read_text(encoding="utf-8"))
    assert set(summary["starts"]) == {"rl", "sft"} and summary["k"] == 16
    for name in ("rl", "sft"):
        manifest = json.loads((tmp_path / "transfer" / name / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["stages"]["headline_sft/sft"]["metrics"]["examples"] == 16
        assert manifest["stages"]["headline_sft/sft"]["init"].endswith("final")
    diff = summary["differences"]["rl - sft"]
    assert diff["ci95"][0] <= diff["difference"] <= diff["ci95"][1]
    assert "few-shot transfer" in result.stdout


def test_trade_off_curves_from_checkpoints(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(EXAMPLE),
        "--out",
        str(out),
        "eval.curve_every=30",
        "grpo.max_steps=12",
        "eval.resamples=100",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for arm in ("semantic_rl", "strong_sft"):
        curve = results["arms"][arm]["curve"]
        assert len(curve) >= 3
        assert [p["step"] for p in curve] == sorted(p["step"] for p in curve)
        assert all("value" in p["target"] and p["tax"] is not None for p in curve)
    assert results["arms"]["semantic_rl"]["curve"][-1]["stage"] == "grpo"
    assert "semantic_rl vs strong_sft" in results["matched_quality"]
