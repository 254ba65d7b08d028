"""One rank of `accelerate launch` / torchrun in the tests, standing in for `python -m semrl ARGS`.

Why: a launch of two ranks imported torch, transformers and TRL twice more (10-15 s each on the
2-core box). This script imports only the standard library: it asks the test fork server
(tests/forkserver.py, which has those libraries loaded) to fork the rank with this process's
arguments, folder, environment and stdin/stdout/stderr, passes on every signal it receives
(torchrun's SIGTERM, a Ctrl-C), and exits as the rank did. Without a server (no
SEMRL_TEST_RANK_SOCKET, or it does not answer) it becomes `python -m semrl ARGS` itself.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def fresh_interpreter() -> None:
    os.execv(sys.executable, [sys.executable, "-m", "semrl", *sys.argv[1:]])


def main() -> None:
    path = os.environ.get("SEMRL_TEST_RANK_SOCKET")
    if not path:
        fresh_interpreter()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.connect(path)
    except OSError:
        fresh_interpreter()
    request = {"args": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}
    stdio = array.array("i", [0, 1, 2])
    server.sendmsg([json.dumps(request).encode() + b"\n"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, stdio)])
    replies = server.makefile("rb")
    pid = json.loads(replies.readline())["pid"]

    def forward(signum, frame) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    line = replies.readline()
    code = json.loads(line)["returncode"] if line else 1
    if code < 0:  # the rank died of a signal: so does its stand-in, as torchrun expects
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
