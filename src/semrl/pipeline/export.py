"""`semrl export RUN_DIR --arm NAME --out DIR`: one folder a user can upload to the hub as it is.

The arm's final model (LoRA already merged: semrl's final/ is always a plain model, so the folder
needs no base model to load), its tokenizer, chat template and generation config, the model card
with the run's numbers, the arm's evaluation (eval_results.json) and the run's settings
(semrl_config.yaml). Nothing here talks to the hub; docs/trl-and-hub.md shows the upload command.
The folder is written beside DIR and renamed into place, so a failure leaves no half export.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.experiment_config import load_experiment
from semrl.files import atomic_write_json, check_output_folder, publish_folder, read_json
from semrl.recipes.plan import plan_arm, recorded_folder
from semrl.report.model_card import public_signature, render_card

NOT_EXPORTED = ("README.md",)  # replaced by the card written here
PICKLES = (".bin", ".pt", ".pth", ".pkl")  # final/ is safetensors; a pickle never travels in an export


def _relative(value: Any, run_root: Path) -> Any:
    """Paths inside the run as paths relative to it, in any nested value."""
    if isinstance(value, dict):
        return {k: _relative(v, run_root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, run_root) for v in value]
    if isinstance(value, str) and value.startswith(str(run_root)):
        return value[len(str(run_root)) :].lstrip("/") or "."
    return value


def _public_result(result: dict[str, Any], arm: str, run_root: Path) -> dict[str, Any]:
    """The arm's evaluation without this machine's paths (the model folder, a local encoder's) and
    without the pointer to the per-row outputs, which hold test rows and stay in the run."""
    public = {k: v for k, v in result.items() if k != "outputs"} | {"model": arm}
    public["task"] = {
        metric: {**entry, "signature": public_signature(entry.get("signature"))}
        for metric, entry in result.get("task", {}).items()
    }
    return _relative(public, run_root.resolve())


def _arm_final(run_root: Path, arm_name: str):
    if not (run_root / "config.yaml").is_file():
        raise UserError(f"{run_root}: not a semrl run directory (no config.yaml)")
    exp = load_experiment(run_root / "config.yaml")
    arm = next((a for a in exp.arms if a.name == arm_name), None)
    if arm is None:
        names = ", ".join(a.name for a in exp.arms)
        raise UserError(
            f"{run_root / 'config.yaml'}: arms: no arm named {arm_name!r}; the run's arms are {names}"
        )
    plans = plan_arm(exp, arm)
    final = recorded_folder(run_root, plans[-1]) / "final"
    status = read_json(run_root / "manifest.json").get("stages", {}).get(plans[-1].key, {}).get("status")
    if status != "done" or not (final / "config.json").is_file():
        raise UserError(
            f"{run_root}: arm {arm.name} has not finished training ({plans[-1].key}); "
            "run `semrl run --resume` first"
        )
    return exp, arm, plans, final


def export_arm(run_root: str | Path, arm_name: str, out: str | Path) -> Path:
    """Write the export folder for one arm; returns it."""
    run_root, out = Path(run_root), Path(out)
    exp, arm, plans, final = _arm_final(run_root, arm_name)
    check_output_folder(out, "--out", empty=True)
    manifest = read_json(run_root / "manifest.json")
    result_path = run_root / "eval" / f"{arm.name}.json"
    result = read_json(result_path) if result_path.is_file() else None
    with publish_folder(out, f".{out.name}.export.tmp", replace=False) as tmp:  # out: empty, checked above
        for path in sorted(final.iterdir()):  # weights, config, generation config, tokenizer, chat template
            if path.is_file() and path.name not in NOT_EXPORTED and path.suffix not in PICKLES:
                shutil.copy2(path, tmp / path.name)
        card = render_card(run_root, exp, manifest, arm, plans, plans[-1], result)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if result is not None:
            atomic_write_json(tmp / "eval_results.json", _public_result(result, arm.name, run_root))
        shutil.copy2(run_root / "config.yaml", tmp / "semrl_config.yaml")
    return out
