"""A process that has imported torch, transformers, TRL and sentence-transformers once, and forks a
fresh child for each `semrl ...` command a test runs.

Why: on the 2-core dev box those imports take 10-15 s per interpreter, and the suite runs a few
hundred commands; most of its time went into importing the same libraries again. Each child is
still a separate process with its own pid, working folder, environment and exit code, and imports
semrl itself afresh (`runpy`, exactly as `python -m semrl` does), so semrl's own module-level
state never leaks between commands. What a child does not redo is importing the third-party
libraries, so a warning one of them printed at import time would not reach the child's stderr;
`SEMRL_TEST_FRESH_PROCESS=1` runs every command in a new interpreter instead (see run_semrl).

Protocol: one JSON request per line on stdin ({op, args, cwd, env, timeout, stdout, stderr}: the
last two are files the child writes), one JSON reply per line on stdout (serve() lists the ops).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

# semrl's main() sets these before anything imports the libraries that read them at import time;
# the server imports those libraries, so it sets them first, the same way (cli.main).
LIBRARY_SETTINGS = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


def preload() -> None:
    """Third-party libraries only: nothing of semrl is imported here. The warning filters are put
    back afterwards, so each child starts with an interpreter's defaults."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        for module in ("torch", "accelerate", "datasets", "peft", "sacrebleu", "sentence_transformers"):
            importlib.import_module(module)
        import transformers
        import trl

        for name in ("AutoModelForCausalLM", "AutoTokenizer", "PreTrainedModel", "Trainer"):
            getattr(transformers, name)
        for name in ("GRPOTrainer", "SFTTrainer", "RewardTrainer"):
            getattr(trl, name)


def child(request: dict) -> None:
    """Runs in the forked child: becomes `python -m semrl ARGS` and never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own process group: a timeout kills whatever it started too
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # torch read it when the server imported it
            import torch

            torch.set_num_threads(int(threads))
        with open(os.devnull, "rb") as null:
            os.dup2(null.fileno(), 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            with open(path, "wb") as sink:
                os.dup2(sink.fileno(), fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import runpy

        sys.argv = ["semrl", *request["args"]]
        try:
            runpy.run_module("semrl", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter does at top level: traceback, exit 1
            import traceback

            traceback.print_exc()
            code = 1
        # what interpreter shutdown does before the process ends
        import atexit
        import threading

        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not change the exit code
                pass
        os._exit(code)


def wait(pid: int, timeout: float | None) -> dict:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status)}
        if deadline is not None and time.monotonic() > deadline:
            return {"timed_out": True}
        time.sleep(0.02)


def kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def serve() -> None:
    """Requests: `run` (start, wait, kill on timeout), or `start` then `poll`/`wait` for a command
    the test signals while it runs (the server is the child's parent, so it reaps it)."""
    for name, value in LIBRARY_SETTINGS.items():
        os.environ.setdefault(name, value)
    preload()
    replies = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=replies, flush=True)
    ended: dict[int, int] = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op", "run")
        if op in ("run", "start"):
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(request)
            if op == "start":
                reply: dict = {"pid": pid}
            else:
                reply = wait(pid, request["timeout"])
                if reply.get("timed_out"):
                    kill(pid)
        else:
            pid = request["pid"]
            if pid not in ended:
                reply = wait(pid, 0 if op == "poll" else request.get("timeout"))
                if "returncode" in reply:
                    ended[pid] = reply["returncode"]
            reply = {"returncode": ended.get(pid)}
        print(json.dumps(reply), file=replies, flush=True)


if __name__ == "__main__":
    serve()
