"""The run directory: resolved config, manifest (versions, seed, git commit, per-stage status and
timings), stage folders. Every JSON/YAML write is atomic, so a kill -9 never leaves half a file,
and `--resume` can trust what it reads."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from semrl.distributed import is_main_process
from semrl.errors import UserError
from semrl.files import atomic_write_json, atomic_write_text
from semrl.names import inside
from semrl.pipeline.run_folder import check_run_folder

PACKAGES = (
    "semrl",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "sentence-transformers",
    "sacrebleu",
    "rouge-score",
    "tokenizers",
)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


RUNTIME_SETTINGS = ("parallel",)  # how a run is executed, not what it computes


def _identity(config_dump: Any) -> Any:
    """The config without the runtime settings: what must match for `--resume`."""
    if not isinstance(config_dump, dict):
        return config_dump
    return {k: v for k, v in config_dump.items() if k not in RUNTIME_SETTINGS}


def _same_settings(saved: Any, current: Any) -> bool:
    """Equal configs, where a setting missing from the saved one matches a current None: a run
    started before semrl gained an optional setting (None = the library's default) still resumes."""
    if isinstance(saved, dict) and isinstance(current, dict):
        if set(saved) - set(current):
            return False
        return all(_same_settings(saved[k], v) if k in saved else v is None for k, v in current.items())
    if isinstance(saved, list) and isinstance(current, list):
        return len(saved) == len(current) and all(
            _same_settings(a, b) for a, b in zip(saved, current, strict=True)
        )
    return saved == current


class Run:
    """One experiment's folder. Only the main process writes (safe under accelerate launch)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"stages": {}}
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        if is_main_process():
            atomic_write_json(self.manifest_path, manifest)

    def open(self, config_dump: dict[str, Any], seed: int, resume: bool) -> None:
        """Create the run, or check that a resumed run has the same config."""
        if not is_main_process():
            return  # rank 0 created or checked the run before the others got here
        config_text = yaml.safe_dump(config_dump, sort_keys=False, allow_unicode=True)
        config_path = self.root / "config.yaml"
        check_run_folder(self.root, resume)
        if self.manifest_path.exists():
            if not resume:
                raise UserError(
                    f"{self.root}: a run already exists here; pass --resume to continue it or choose --out"
                )
            if config_path.exists() and not _same_settings(
                _identity(yaml.safe_load(config_path.read_text(encoding="utf-8"))), _identity(config_dump)
            ):
                raise UserError(
                    f"{config_path}: the config differs from the run being resumed; start a new run (--out)"
                )
            return
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_path, config_text)
        self._write_manifest(
            {
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seed": seed,
                "git_commit": git_commit(),
                "versions": versions(),
                "stages": {},
            }
        )

    def stage_dir(self, arm: str, stage: str) -> Path:
        return inside(self.root, self.root / arm / stage, f"stage folder of arm {arm!r}")

    def status(self, key: str) -> str:
        return self.manifest()["stages"].get(key, {}).get("status", "pending")

    @contextmanager
    def _manifest_lock(self):
        """Exclusive lock on `.manifest.lock` beside the manifest: parallel stage workers (separate
        processes) read-modify-write the manifest one at a time, so no one's update is lost."""
        try:
            import fcntl
        except ImportError:  # not POSIX: parallel arms are POSIX-only (spawned workers still work, unlocked)
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".manifest.lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def mark(self, key: str, replace: bool = False, **fields: Any) -> None:
        """Update (or with `replace`, overwrite) one stage's manifest entry: read, change and write
        atomically under the manifest lock."""
        if not is_main_process():
            return
        with self._manifest_lock():
            manifest = self.manifest()
            if replace:
                manifest["stages"][key] = dict(fields)
            else:
                manifest["stages"].setdefault(key, {}).update(fields)
            self._write_manifest(manifest)
