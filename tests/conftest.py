"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) with models the project builds or
ships via PyPI. Commands run in the test process through semrl's entry point (run_cli); a command
gets a process of its own only where processes are the point: signals and kill -9 (start_semrl),
ranks under `accelerate launch` (real `python -m semrl` ranks), and start-up itself
(e2e/test_startup.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
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


# semrl's main() sets these before the libraries that read them at import time are imported; in the
# test process those libraries may be imported before the first command runs, so they are set first.
LIBRARY_SETTINGS = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}
for _name, _value in LIBRARY_SETTINGS.items():
    os.environ.setdefault(_name, _value)
# what every command of the tests runs with: no colours, wide tables, no downloads
CLI_ENV = {"HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """`semrl ARGS` run in this process through its entry point (semrl.cli.main: parsing, validation,
    exit codes, messages), with `env` on top of this process's environment and `cwd` as the working
    folder, all put back afterwards. Returns what subprocess.run would: returncode, stdout, stderr
    (both at file-descriptor level, so what C code and worker processes print is in them too).
    `timeout` is accepted for the callers' sake and not enforced: pytest's own limits apply.
    Commands that must be signalled, killed or launched as ranks start `python -m semrl` instead
    (start_semrl, python_m_semrl)."""
    argv = [str(a) for a in args]
    with _command_state({**CLI_ENV, **(env or {})}, cwd), _captured_output() as output:
        code = _call_main(argv)
    return subprocess.CompletedProcess(python_m_semrl(argv), code, output["stdout"], output["stderr"])


def _call_main(argv: list[str]) -> int:
    """`python -m semrl ARGS` as the interpreter runs it (runpy: semrl/__main__.py as __main__, so
    click names the program as it would, and worker pools import semrl.__main__ as a real run's do):
    the exit code of SystemExit, or a traceback on stderr and 1 for any other exception."""
    import runpy

    sys.argv = ["semrl", *argv]
    try:
        runpy.run_module("semrl", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - what the interpreter does at top level: traceback, exit 1
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


@contextlib.contextmanager
def _command_state(env: dict[str, str], cwd: Path | None):
    """A command's process-wide state, put back afterwards: environment, working folder, argv, signal
    handlers, warning filters, torch's thread count, and what semrl keeps per process."""
    import signal

    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    os.environ.update(env)
    _forget_per_process_state()
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:  # as a new interpreter would start with
        import torch

        torch.set_num_threads(int(wanted))
    try:
        with warnings.catch_warnings():
            _interpreter_warnings()
            if cwd is not None:
                os.chdir(cwd)
            yield
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        for number, handler in handlers.items():
            signal.signal(number, handler)
        if threads is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        _forget_per_process_state()


def _interpreter_warnings() -> None:
    """A new interpreter's warning filters, and warnings printed to stderr (pytest records them)."""
    warnings.resetwarnings()
    for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]
    warnings._showwarnmsg_impl = _print_warning  # type: ignore[attr-defined]


def _print_warning(message) -> None:
    try:
        (message.file or sys.stderr).write(warnings._formatwarnmsg(message))  # type: ignore[attr-defined]
    except OSError:
        pass


def _forget_per_process_state() -> None:
    """What semrl keeps for the life of its process, emptied between commands as a new process would
    start: warnings said once, the guard's stop flag, held run locks, loaded encoders and rewards."""
    modules = sys.modules
    if "semrl.notices" in modules:
        modules["semrl.notices"]._SAID.clear()
    if "semrl.train.guard" in modules:
        modules["semrl.train.guard"]._INTERRUPTED.clear()
    if "semrl.workers" in modules:
        modules["semrl.workers"].BUSY = False
    for module, name in (
        ("semrl.run_lock", "_HELD"),
        ("semrl.encoders.loading", "_LOADED"),
        ("semrl.rewards.trl", "_BUILT"),
        ("semrl.pipeline.evaluation", "_WORKER"),
    ):
        if module in modules:
            getattr(modules[module], name).clear()
    if "semrl.hub" in modules:
        modules["semrl.hub"].hub_reachable.cache_clear()


@contextlib.contextmanager
def _captured_output():
    """stdout and stderr of a command, at file-descriptor level as a subprocess's pipes would take them:
    sys.stdout/sys.stderr, C code writing to fds 1 and 2, library log handlers that hold the old
    sys.stderr, unhandled log records (logging's last resort, as in a process where nobody configured
    logging), and the worker processes a command starts (multiprocessing's forkserver and resource
    tracker are started afresh for the command, so they and their workers write into its output)."""
    import logging

    output: dict[str, str] = {}
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    old_streams = sys.stdin, sys.stdout, sys.stderr
    for stream in old_streams[1:]:
        stream.flush()
    saved_fds = {fd: os.dup(fd) for fd in files}
    root = logging.getLogger()
    root_handlers = root.handlers[:]
    moved: list[tuple[logging.StreamHandler, object]] = []
    _stop_multiprocessing_helpers()
    try:
        for fd, file in files.items():
            os.dup2(file.fileno(), fd)
        sys.stdin = io.StringIO("")
        sys.stdout, sys.stderr = (
            io.TextIOWrapper(
                io.FileIO(os.dup(fd), "w"), encoding="utf-8", errors="backslashreplace", write_through=True
            )
            for fd in (1, 2)
        )
        for handler in _stream_handlers():
            if _standard_stream(handler.stream, old_streams[1:]):
                moved.append((handler, handler.stream))
                to_stdout = handler.stream in (old_streams[1], sys.__stdout__)
                handler.setStream(sys.stdout if to_stdout else sys.stderr)
        root.handlers = [h for h in root_handlers if type(h).__module__.split(".")[0] != "_pytest"]
        yield output
    finally:
        _stop_multiprocessing_helpers()  # their last words (a leaked semaphore) belong to this command
        root.handlers = root_handlers
        for handler, stream in moved:
            handler.setStream(stream)  # type: ignore[arg-type]
        for stream in (sys.stdout, sys.stderr):
            stream.close()
        sys.stdin, sys.stdout, sys.stderr = old_streams
        for fd, saved in saved_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        for name, fd in (("stdout", 1), ("stderr", 2)):
            files[fd].seek(0)
            output[name] = files[fd].read().decode("utf-8", errors="replace")
            files[fd].close()


def _standard_stream(stream, current) -> bool:
    """sys.stdout or sys.stderr as a library's log handler took them: now, at start-up, or pytest's."""
    return (
        stream in current
        or stream in (sys.__stdout__, sys.__stderr__)
        or type(stream).__module__.startswith("_pytest")
    )


def _stream_handlers():
    import logging

    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                yield handler


def _stop_multiprocessing_helpers() -> None:
    """Stop multiprocessing's forkserver (semrl's worker pools start from it) and resource tracker
    if they run, so the next command starts its own with its own environment and output."""
    from multiprocessing import forkserver, resource_tracker

    if any(live.poll() is None for live in _LIVE):  # forked from it: it reports their exit codes
        return
    forkserver._forkserver._stop()  # type: ignore[attr-defined]
    resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """The same as run_cli, under the name the bad-input and preflight tests use."""
    return run_cli(*args)


def python_m_semrl(args: list[str]) -> list[str]:
    """The command a user types, `python -m semrl ARGS`, with this interpreter."""
    return [sys.executable, "-m", "semrl", *args]


def start_semrl(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
    """`semrl ARGS` as a process of its own (own pid, environment, folder, exit code, output), started
    and not waited for, for the tests that signal or kill it: a SemrlProcess."""
    return SemrlProcess([str(a) for a in args], dict(os.environ if env is None else env), cwd)


_LIVE: set[SemrlProcess] = set()


class SemrlProcess:
    """What the tests use of subprocess.Popen (pid, poll, send_signal, communicate, returncode) for a
    `semrl` command in a process of its own. The process is forked from multiprocessing's forkserver
    with semrl's worker stack preloaded (semrl.workers.pool_context, as the run's own worker pools
    start), so a test that starts, kills and resumes a run ten times does not import torch,
    transformers and TRL ten times (10-15 s each on a 2-core machine). It then runs `python -m semrl
    ARGS` (runpy) with the given environment and folder; stdin is empty and its output goes to files
    read by communicate(). `python -m semrl` from a new interpreter: tests/e2e/test_startup.py."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None) -> None:
        from semrl.workers import pool_context

        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="semrl-process-"))
        self.process = pool_context().Process(
            target=_semrl_process, args=(args, env, str(cwd or os.getcwd()), str(self.folder))
        )
        self.process.start()
        self.pid: int = self.process.pid  # type: ignore[assignment]
        self.returncode: int | None = None
        _LIVE.add(self)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.process.exitcode  # negative: the signal that ended it, as Popen's
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(python_m_semrl(self.args), timeout or 0)
        _LIVE.discard(self)
        output = tuple(
            (self.folder / name).read_text(encoding="utf-8", errors="replace")
            for name in ("stdout", "stderr")
        )
        shutil.rmtree(self.folder, ignore_errors=True)
        return output  # type: ignore[return-value]


def _semrl_process(args: list[str], env: dict[str, str], cwd: str, folder: str) -> None:
    """In the forked process: become `python -m semrl ARGS` and exit with its exit code."""
    import signal

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # torch read it when the forkserver imported it
        import torch

        torch.set_num_threads(int(threads))
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        with open(Path(folder) / name, "wb") as sink:
            os.dup2(sink.fileno(), fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(_call_main(args))


def pytest_sessionfinish(session, exitstatus) -> None:
    """A test that failed while its command ran leaves the process behind: end it, or multiprocessing
    would wait for it when pytest exits."""
    for live in list(_LIVE):
        live.send_signal(9)
        live.communicate(timeout=60)


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


# ---- configs for the many small bad-input and preflight cases ----------------------------------


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


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
