"""A run folder between runs and under other processes: damaged files, changed data, a second process,
commands on partial runs, signals before the first stage, a disk that fills. Every refusal is exit 2
with one line naming the file, before anything is written; a damaged checkpoint is replaced by the
previous whole one, saying so."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import BO_ZH, cli_in_process, experiment, start_semrl, stderr_lines
from semrl.experiment_config import load_experiment
from semrl.recipes.plan import planned_folder
from semrl.run_folder import Run

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
ROOT = Path(__file__).resolve().parents[2]


def refused(result, *fragments: str) -> None:
    """The contract for bad input or state: exit 2, one line, no traceback, naming what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def snapshot(folder: Path) -> dict[str, int]:
    """Every file under `folder` with its modification time: what "nothing was written" compares
    (but the lock file, where each command that takes the lock writes its pid)."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".run.lock"
    }


def short_run(tmp_path: Path, data: Path = BO_ZH, evaluate: bool = False) -> tuple[Path, Path]:
    """A finished one-arm SFT run (4 steps, a checkpoint every 2), trained in this process."""
    config = experiment(
        tmp_path,
        data,
        sft={"max_steps": 4, "batch_size": 4, "save_steps": 2, "logging_steps": 1},
        eval={"enabled": evaluate, "metrics": ["chrf", "lang"], "resamples": 20, "max_new_tokens": 4},
    )
    out = tmp_path / "run"
    result = cli_in_process("run", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return config, out


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """One evaluated run for the module; each test damages its own copy (copy_of)."""
    return short_run(tmp_path_factory.mktemp("finished"), evaluate=True)


def copy_of(finished: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    config, run = finished
    shutil.copytree(run, tmp_path / "run", symlinks=True)
    return config, tmp_path / "run"


def as_killed_after(out: Path, stage: str) -> None:
    """The folder as a kill after the stage's last checkpoint leaves it: no final/ and no
    metrics.json (written after it), the stage running."""
    arm, name = stage.split("/")
    folder = Run(out).arm_stage(arm, name)
    shutil.rmtree(folder / "final")
    (folder / "metrics.json").unlink()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["stages"][stage] = {"status": "running", "folder": str(folder.relative_to(out))}
    manifest["stages"].pop("_run", None)
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


# ---- 6: a run folder damaged between runs ------------------------------------------------------


def test_a_checkpoint_without_its_weights_falls_back_to_the_previous_one(finished, tmp_path):
    config, out = copy_of(finished, tmp_path)
    straight = load_file(str(Run(out).arm_stage("s", "sft") / "final" / "model.safetensors"))
    stage = Run(out).arm_stage("s", "sft")
    assert sorted(p.name for p in stage.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    as_killed_after(out, "s/sft")
    (stage / "checkpoint-4" / "model.safetensors").unlink()

    resumed = cli_in_process("run", str(config), "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert "removed checkpoint-4: damaged: its weights (model.safetensors) are missing" in resumed.stderr
    assert "s/sft: resuming from checkpoint-2" in resumed.stderr
    again = load_file(str(stage / "final" / "model.safetensors"))
    assert all(bool((straight[k] == again[k]).all()) for k in straight)  # the same weights, from step 2


def test_a_truncated_checkpoint_weights_file_is_damaged_too(finished, tmp_path):
    from semrl.train.common import checkpoint_problem

    _, out = copy_of(finished, tmp_path)
    weights = Run(out).arm_stage("s", "sft") / "checkpoint-4" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    assert "model.safetensors is truncated" in str(checkpoint_problem(weights.parent))
    optimizer = Run(out).arm_stage("s", "sft") / "checkpoint-2" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    assert str(checkpoint_problem(optimizer.parent)).startswith("damaged: optimizer.pt is truncated")


@pytest.mark.parametrize("name", ["manifest.json", "config.yaml"])
def test_a_truncated_manifest_or_config_is_named_and_nothing_is_rewritten(finished, tmp_path, name):
    config, out = copy_of(finished, tmp_path)
    path = out / name
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    before = snapshot(out)
    refused(cli_in_process("run", str(config), "--out", str(out), "--resume"), str(path), "damaged")
    assert snapshot(out) == before  # data/*.jsonl included: not rewritten


@pytest.mark.parametrize("command", [["run"], ["train", "sft", "--config"]])
def test_resume_refuses_changed_training_data(tmp_path, command):
    """`semrl run` and `semrl train STAGE` keep the rows they train on and refuse a resume on others."""
    data = tmp_path / "data.jsonl"
    shutil.copy(BO_ZH, data)
    config = experiment(
        tmp_path, data, sft={"max_steps": 2, "batch_size": 4, "logging_steps": 1}, eval={"enabled": False}
    )
    out = tmp_path / "run"
    result = cli_in_process(*command, str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["data"]) == {"train.jsonl", "test.jsonl"} and manifest["config_sha256"]
    assert (out / "data" / "train.jsonl").exists()
    lines = data.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[3])
    row["reference"] += "。"
    lines[3] = json.dumps(row, ensure_ascii=False)
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(out)
    refused(
        cli_in_process(*command, str(config), "--out", str(out), "--resume"),
        f"data.train {data}: changed since the run started",
    )
    assert snapshot(out) == before


def test_a_done_stage_whose_final_model_is_gone_is_refused(finished, tmp_path):
    config, out = copy_of(finished, tmp_path)
    weights = Run(out).arm_stage("s", "sft") / "final" / "model.safetensors"
    weights.unlink()
    before = snapshot(out)
    result = cli_in_process("run", str(config), "--out", str(out), "--resume")
    refused(result, str(weights.parent), "weights (model.safetensors) are missing", "marks s/sft done")
    refused(cli_in_process("eval", str(out)), str(weights.parent), "weights (model.safetensors) are missing")
    assert snapshot(out) == before


# ---- 8, 14, 15: eval and report on partial, damaged and evaluated runs ---------------------------


def test_eval_rebuilds_the_report_applies_eval_overrides_and_refuses_the_rest(finished, tmp_path):
    _, out = copy_of(finished, tmp_path)
    eval_file = out / "eval" / "s.json"
    before = snapshot(out)
    refused(cli_in_process("eval", str(out), "sft.learning_rate=0.5"), "sft.learning_rate=0.5", "eval.*")
    refused(cli_in_process("eval", str(out), "eval.resamples=many"), "eval.resamples")
    refused(cli_in_process("eval", str(out), "--suite", str(tmp_path / "nosuch.yaml")), "eval.suite")
    refused(cli_in_process("eval", str(out), "--arm", "nosuch"), "--arm nosuch", "its arms are s")
    assert snapshot(out) == before

    result = cli_in_process("eval", str(out), "eval.lang_threshold=0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "report rebuilt" in result.stdout
    evaluated = json.loads(eval_file.read_text(encoding="utf-8"))
    assert "threshold:0.5" in evaluated["task"]["lang"]["signature"]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["arms"]["s"] == evaluated  # results.json is not stale
    assert snapshot(out)["summary.md"] != before["summary.md"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["_eval"]["overrides"] == ["eval.lang_threshold=0.5"]


def test_report_names_a_truncated_evaluation(finished, tmp_path):
    _, out = copy_of(finished, tmp_path)
    path = out / "eval" / "s.json"
    path.write_text(path.read_text(encoding="utf-8")[:50], encoding="utf-8")
    before = snapshot(out)
    refused(cli_in_process("report", str(out)), str(path), "not valid JSON", f"semrl eval {out} --arm s")
    assert snapshot(out) == before


# ---- 7, 8, 10: other live processes, killed runs, signals ----------------------------------------


def long_config(tmp_path: Path) -> Path:
    return experiment(
        tmp_path,
        sft={"epochs": 30, "batch_size": 4, "save_steps": 2, "logging_steps": 1},
        eval={"enabled": False},
    )


def wait_for(condition, victim, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not condition() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, victim.communicate()[1][-3000:]


def test_a_live_run_locks_its_folder_and_its_death_releases_it(tmp_path):
    config, out = long_config(tmp_path), tmp_path / "run"
    victim = start_semrl(["run", str(config), "--out", str(out)], env=ENV)
    stage = out / planned_folder(load_experiment(config), "s", "sft")
    wait_for(lambda: (stage / "checkpoint-2" / "trainer_state.json").exists(), victim)
    for args in (
        ["run", str(config), "--out", str(out), "--resume"],
        ["eval", str(out)],
        ["report", str(out)],
    ):
        refused(cli_in_process(*args), f"{out}: in use by pid {victim.pid}")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert not (out / "eval").exists()

    # the lock died with its holder; on the killed run, eval refuses before writing anything
    refused(cli_in_process("eval", str(out)), "arm s has not finished training (s/sft)")
    refused(cli_in_process("eval", str(out), "--arm", "nosuch"), "--arm nosuch")
    assert not (out / "eval").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_before_the_first_stage_stops_with_a_message(tmp_path, signum):
    config, out = long_config(tmp_path), tmp_path / "run"
    args = ["run", str(config), "--out", str(out)]
    victim = start_semrl(args, env=ENV)
    wait_for(lambda: (out / ".run.lock").exists(), victim)  # preflight done; the base model is built next
    victim.send_signal(signum)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert f"semrl: stopped by {name}; files written so far are complete. resume with: semrl run" in err
    assert not (out / planned_folder(load_experiment(config), "s", "sft") / "final").exists()


# ---- 10: a disk that fills -----------------------------------------------------------------------


def _can_mount_tmpfs() -> bool:
    try:
        probe = subprocess.run(
            ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || exit 1"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


DISK_SCRIPT = """
set -u
mount -t tmpfs -o size={small} tmpfs "$DISK"
"$PY" -m semrl run "$CONFIG" --out "$DISK/run" > "$OUT/1.out" 2> "$OUT/1.err"; echo $? > "$OUT/1.rc"
ls -R "$DISK/run" > "$OUT/1.ls"
mount -o remount,size=512m "$DISK"
"$PY" -m semrl run "$CONFIG" --out "$DISK/run" --resume > "$OUT/2.out" 2> "$OUT/2.err"; echo $? > "$OUT/2.rc"
cp "$DISK/run/manifest.json" "$OUT/manifest.json"
"""


@pytest.mark.skipif(sys.platform != "linux" or not _can_mount_tmpfs(), reason="needs user namespaces")
def test_a_full_disk_ends_in_one_line_and_the_run_resumes(tmp_path):
    """A real full file system: a small tmpfs in a user namespace (no root needed). The run's first
    checkpoint does not fit; then the tmpfs grows (the user makes room) and --resume finishes."""
    config = experiment(
        tmp_path,
        sft={"max_steps": 4, "batch_size": 4, "save_steps": 2, "logging_steps": 1},
        eval={"enabled": False},
    )
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    env = {**ENV, "DISK": str(disk), "OUT": str(out), "PY": sys.executable, "CONFIG": str(config)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    script = DISK_SCRIPT.format(small=DISK_SIZE)
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    first = (out / "1.err").read_text(encoding="utf-8")
    assert (out / "1.rc").read_text().strip() == "1", first[-3000:]
    assert "Traceback" not in first
    lines = [line for line in first.splitlines() if line.startswith("semrl: error")]
    assert len(lines) == 1 and "disk full" in lines[0] and str(disk / "run") in lines[0], first[-3000:]
    assert "free there" in lines[0] and "needs about" in lines[0] and "--resume" in lines[0]
    second = (out / "2.err").read_text(encoding="utf-8")
    assert (out / "2.rc").read_text().strip() == "0", second[-3000:]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["s/sft"]["status"] == "done"


DISK_SIZE = "3m"  # the run's config, data and tiny base model fit; its first checkpoint does not
