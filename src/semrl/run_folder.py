"""The run folder: resolved config, manifest (versions, seed, git commit, per-stage status and
timings), stage folders; and whether a path may become one (check_run_folder). Every JSON/YAML
write is atomic, so a kill -9 never leaves half a file, and `--resume` can trust what it reads."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from semrl.distributed import is_main_process
from semrl.errors import UserError
from semrl.files import (
    DAMAGED_RUN,
    atomic_write_json,
    atomic_write_text,
    check_output_folder,
    read_json,
    read_text,
    sha256_text,
)
from semrl.names import inside
from semrl.run_lock import LOCK_FILE
from semrl.weights import weights_problem

MANIFEST = "manifest.json"


def _pre_manifest(name: str) -> bool:
    """What a start writes before its manifest: the run lock, config.yaml, their temp files."""
    return name in ("config.yaml", LOCK_FILE) or name.startswith((".config.yaml.", ".manifest.json."))


def check_run_folder(root: Path, resume: bool, flag: str = "--out") -> None:
    """UserError unless `root` may hold this run (be written, or resumed); writes nothing.

    What users expect, and what semrl does:
    - `--out` names a missing folder: a new run is made there (parents too).
    - `--out` names a semrl run (it has manifest.json): refused without `--resume` (so a finished run is
      never overwritten); `--resume` continues it.
    - `--out` names an empty folder: a new run is made there. `--resume` on it is refused: there is no run
      to continue, and a typo in the path should not silently start hours of training. (`--resume` on a
      missing folder starts the run: a script may always pass it.)
    - `--out` names a non-empty folder that is not a run (the user's own files): refused, with or without
      `--resume`, and the folder is left exactly as it was. semrl will not mix its outputs with other
      files, or later overwrite one of them (config.yaml, data/, eval/); choose a new folder.
    - `--out` names a file, or a path under a file, or a folder semrl cannot write: refused.
    A folder holding only what a start writes before its manifest (its lock file, config.yaml; a run killed
    in its first second) counts as empty, so the same command can be run again.
    """
    root = Path(root)
    try:
        check_output_folder(root, flag, kind="run folder")
        if not root.exists():
            return
        if (root / MANIFEST).is_file():
            return  # a run: Run.open refuses it without --resume and checks the config on resume
        entries = [entry.name for entry in root.iterdir()]
    except OSError as exc:  # unreadable folder, symlink loop above it
        raise UserError(f"{flag} {root}: cannot be read ({exc.strerror or exc})") from None
    if resume and not entries:
        raise UserError(
            f"{flag} {root}: not a semrl run (no {MANIFEST}), so there is nothing to resume; "
            "drop --resume to start a run in a new folder"
        )
    if any(not _pre_manifest(name) for name in entries):
        raise UserError(
            f"{flag} {root}: folder is not empty and is not a semrl run (no {MANIFEST}); semrl does "
            "not write among other files"
            + (", nor resumes what is not a run" if resume else "")
            + ": give a new or empty folder"
        )


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


@dataclass(frozen=True)
class DataFile:
    """A file of data/ as `semrl run` writes it, and the user's file it came from (for messages)."""

    text: str
    source: str


class Run:
    """One experiment's folder. Only the main process writes (safe under accelerate launch)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        """The manifest; a UserError naming it when it was cut or edited into something else."""
        if not self.manifest_path.exists():
            return {"stages": {}}
        manifest = read_json(self.manifest_path, remedy=DAMAGED_RUN)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("stages"), dict):
            raise UserError(f"{self.manifest_path}: damaged (no 'stages' mapping); {DAMAGED_RUN}")
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        if is_main_process():
            atomic_write_json(self.manifest_path, manifest)

    def open(
        self, config_dump: dict[str, Any], seed: int, resume: bool, data: dict[str, DataFile] | None = None
    ) -> None:
        """Create the run, or check that a resumed run is whole and has the same config and data.
        `data`: the files to keep under data/ (`semrl run`), whose hashes the manifest records.
        Nothing is written before every check of a resumed run has passed."""
        if not is_main_process():
            return  # rank 0 created or checked the run before the others got here
        data = data or {}
        config_text = yaml.safe_dump(config_dump, sort_keys=False, allow_unicode=True)
        config_path = self.root / "config.yaml"
        check_run_folder(self.root, resume)
        if self.manifest_path.exists():
            if not resume:
                raise UserError(
                    f"{self.root}: a run already exists here; pass --resume to continue it or choose --out"
                )
            manifest = self.manifest()
            self._check_config(manifest, config_path, config_dump)
            hashes = self._check_data(manifest, data)
            self._check_done_stages(manifest)
            if data and hashes != manifest.get("data"):
                with self._manifest_lock():
                    self._write_manifest({**self.manifest(), "data": hashes})
            self._write_data(data)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_path, config_text)
        self._write_manifest(
            {
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seed": seed,
                "git_commit": git_commit(),
                "versions": versions(),
                "config_sha256": sha256_text(config_text),
                "data": {name: sha256_text(file.text) for name, file in data.items()},
                "stages": {},
            }
        )
        self._write_data(data)

    def _write_data(self, data: dict[str, DataFile]) -> None:
        for name, file in data.items():
            atomic_write_text(self.root / "data" / name, file.text)

    def _check_config(self, manifest: dict[str, Any], config_path: Path, config_dump: dict[str, Any]) -> None:
        """The resumed run's config.yaml parses and equals the config given for the resume (runtime
        settings aside). A config.yaml whose hash differs from the manifest's was cut or edited."""
        text = read_text(config_path)
        recorded = manifest.get("config_sha256")
        changed = recorded is not None and sha256_text(text) != recorded
        damaged = f"{config_path}: damaged" + (" (manifest.json recorded another hash)" if changed else "")
        try:
            saved = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"{damaged}: not valid YAML; {DAMAGED_RUN}") from None
        if not isinstance(saved, dict):
            raise UserError(f"{damaged}: not a mapping; {DAMAGED_RUN}")
        if _identity(saved) != _identity(config_dump):
            also = (
                " (and the file was damaged or edited since the run started: manifest.json recorded "
                "another hash; restore it)"
                if changed
                else ""
            )
            raise UserError(
                f"{config_path}: the config differs from the run being resumed{also}; start a new run (--out)"
            )

    def _check_data(self, manifest: dict[str, Any], data: dict[str, DataFile]) -> dict[str, str]:
        """The data/*.jsonl hashes, checked against those the manifest recorded when the run started:
        a resume trains on the same rows."""
        kept_hashes = manifest.get("data")
        recorded: dict[str, str] = kept_hashes if isinstance(kept_hashes, dict) else {}
        hashes = dict(recorded)
        for name, file in data.items():
            now = sha256_text(file.text)
            before = recorded.get(name)
            if before is not None and before != now:
                raise UserError(
                    f"{file.source}: changed since the run started (its rows no longer hash to what "
                    f"{self.root / 'data' / name} held); resume with the same data, or start a new "
                    "run (--out)"
                )
            hashes[name] = now
        return hashes

    def check_kept_data(self, name: str) -> None:
        """data/<name> still holds what the run wrote (the manifest's hash), before a command reads it."""
        recorded = self.manifest().get("data")
        path = self.root / "data" / name
        if not isinstance(recorded, dict) or name not in recorded or not path.is_file():
            return
        if hashlib.sha256(path.read_bytes()).hexdigest() != recorded[name]:
            raise UserError(
                f"{path}: changed since the run wrote it (manifest.json recorded another hash); {DAMAGED_RUN}"
            )

    def _check_done_stages(self, manifest: dict[str, Any]) -> None:
        """Every stage marked done still has a whole final model: a later stage starts from it."""
        for key, entry in manifest["stages"].items():
            if key.startswith("_") or not isinstance(entry, dict) or entry.get("status") != "done":
                continue
            folder = entry.get("folder", key)
            final = inside(self.root, self.root / str(folder) / "final", f"final model of {key}")
            problem = weights_problem(final)
            if problem is not None:
                raise UserError(
                    f"{final}: {problem}, though manifest.json marks {key} done; restore the folder, or "
                    "start a new run (--out)"
                )

    def stage_dir(self, arm: str, stage: str) -> Path:
        """The folder of a stage that is not part of a recipe (`semrl train rm|encoder`)."""
        return inside(self.root, self.root / arm / stage, f"stage folder of arm {arm!r}")

    def _recorded_folders(self) -> dict[str, Path]:
        """{"arm/stage": folder} in the manifest's order (plan order: recorded when the run starts)."""
        found = {}
        for key, entry in self.manifest()["stages"].items():
            if "/" not in key or not isinstance(entry, dict):
                continue
            folder = entry.get("folder", key)
            if isinstance(folder, str):
                found[key] = inside(self.root, self.root / folder, f"stage folder of {key}")
        return found

    def stage_folders(self) -> dict[str, Path]:
        """{"arm/stage": folder} of every stage the manifest records, sorted by key: the folder each
        was trained in, or reads when another arm trained the same stage (`semrl train` stages
        live in train/<stage>)."""
        return dict(sorted(self._recorded_folders().items()))

    def arm_stages(self, arm: str) -> dict[str, Path]:
        """{stage: folder} of the arm's stages, in training order."""
        return {
            key.split("/", 1)[1]: folder
            for key, folder in self._recorded_folders().items()
            if key.split("/", 1)[0] == arm
        }

    def arm_stage(self, arm: str, stage: str) -> Path:
        """The folder of one of the arm's stages: e.g. `run.arm_stage("semantic_rl", "grpo") / "final"`."""
        folder = self.arm_stages(arm).get(stage)
        if folder is None:
            raise UserError(f"{self.manifest_path}: no stage {arm}/{stage} (has the run trained it?)")
        return folder

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
