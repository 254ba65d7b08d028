"""Worker processes end without leaving semaphores behind (Python's resource_tracker warns at exit
about any a process created and never unlinked; a killed worker never unlinks)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_killed_workers_leave_no_semaphore_for_the_resource_tracker(tmp_path):
    """Leaving an EvalPool ends its idle evaluation workers with SIGTERM; anything in them that made a
    multiprocessing lock (tqdm does, for every bar, even a disabled one inside sentence-transformers)
    would never be unlinked, and Python would warn of "leaked semaphore objects" at exit."""
    script = textwrap.dedent("""
        import os, signal
        from semrl.workers import WorkerPool, init_worker

        def job():
            from tqdm.auto import trange
            for _ in trange(2, disable=True):  # what sentence-transformers' encode does
                pass
            return os.getpid()

        if __name__ == "__main__":
            pool = WorkerPool(2, 1, init_worker)
            pids = {pool.submit(job).result() for _ in range(4)}
            pool.signal(signal.SIGTERM)  # as leaving an EvalPool ends its idle workers
            pool.shutdown()
            print("workers", len(pids))
    """)
    path = tmp_path / "pool.py"  # a file: the workers import the job from it
    path.write_text(script, encoding="utf-8")
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert "workers" in result.stdout, result.stderr[-2000:]
    assert "leaked semaphore" not in result.stderr, result.stderr[-2000:]
