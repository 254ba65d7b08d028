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

Ranks: `accelerate launch` / torchrun start tests/rank_proxy.py in place of `python -m semrl` for
each rank. The proxy connects to the Unix socket named on this server's command line and sends its
arguments, folder, environment (RANK, WORLD_SIZE, MASTER_PORT, ...) and its stdin/stdout/stderr
file descriptors; the server forks the rank with those, and the proxy forwards the signals it gets
(torchrun's SIGTERM, a Ctrl-C) and exits with the rank's exit code. A rank whose proxy dies (kill
-9) is killed at once, as it would have died with it.
"""

from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
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


def child(request: dict, stdio: list[int] | None = None) -> None:
    """Runs in the forked child: becomes `python -m semrl ARGS` and never returns. `stdio`: a rank's
    stdin, stdout and stderr, from its proxy (otherwise stdin is empty and output goes to files)."""
    code = 1
    try:
        if stdio is None:
            os.setpgid(0, 0)  # its own process group: a timeout kills whatever it started too
        else:
            os.setsid()  # as torchrun starts a rank: a session of its own
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # torch read it when the server imported it
            import torch

            torch.set_num_threads(int(threads))
        if stdio is not None:
            for fd, received in enumerate(stdio):
                os.dup2(received, fd)
        else:
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


class Ranks:
    """The ranks the proxies asked for: accept a proxy, fork its rank, report the rank's exit code,
    and kill a rank whose proxy went away."""

    def __init__(self, path: str, selector: selectors.BaseSelector) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.selector = selector
        selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.pending: dict[socket.socket, tuple[bytes, list[int]]] = {}
        self.running: dict[int, socket.socket] = {}  # rank pid -> its proxy's connection

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        self.pending[conn] = (b"", [])
        self.selector.register(conn, selectors.EVENT_READ, "proxy")

    def readable(self, conn: socket.socket) -> None:
        if conn not in self.pending:  # a running rank's proxy: only EOF comes, when it has died
            if not conn.recv(1):
                pid = next(p for p, c in self.running.items() if c is conn)
                kill(pid)
                self.forget(pid)
            return
        data, fds = self.pending[conn]
        chunk, ancillary, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(3 * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(array.array("i", payload[: len(payload) - len(payload) % 4]))
        if not chunk:  # the proxy left before sending its request
            del self.pending[conn]
            self.selector.unregister(conn)
            conn.close()
            return
        data += chunk
        if b"\n" not in data:
            self.pending[conn] = (data, fds)
            return
        del self.pending[conn]
        request = json.loads(data.split(b"\n", 1)[0])
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.listener.close()
            for other in self.running.values():
                other.close()
            child(request, fds)
        for fd in fds:
            os.close(fd)
        self.running[pid] = conn
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    def reap(self) -> None:
        for pid in list(self.running):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                conn = self.running[pid]
                try:
                    conn.sendall(
                        json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n"
                    )
                except OSError:
                    pass
                self.forget(pid)

    def forget(self, pid: int) -> None:
        conn = self.running.pop(pid)
        self.selector.unregister(conn)
        conn.close()


def serve(rank_socket: str | None = None) -> None:
    """Requests: `run` (start, wait, kill on timeout), or `start` then `poll`/`wait` for a command
    the test signals while it runs (the server is the child's parent, so it reaps it). Ranks come on
    `rank_socket` (see Ranks)."""
    for name, value in LIBRARY_SETTINGS.items():
        os.environ.setdefault(name, value)
    preload()
    selector = selectors.DefaultSelector()
    ranks = Ranks(rank_socket, selector) if rank_socket else None
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    replies = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=replies, flush=True)
    ended: dict[int, int] = {}
    buffered = b""
    while True:
        for key, _ in selector.select(timeout=0.05):
            if key.data == "accept" and ranks:
                ranks.accept()
            elif key.data == "proxy" and ranks:
                ranks.readable(key.fileobj)  # type: ignore[arg-type]
            elif key.data == "stdin":
                chunk = os.read(sys.stdin.fileno(), 1 << 16)
                if not chunk:
                    return
                buffered += chunk
        if ranks:
            ranks.reap()
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
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
    serve(sys.argv[1] if len(sys.argv) > 1 else None)
