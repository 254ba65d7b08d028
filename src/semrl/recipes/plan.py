"""An experiment's plan: each arm's recipe traced into stages, each stage named by its inputs.

A stage's folder is `stages/<trainer>-<hash>`, the hash of everything that decides its result:
the trainer and its resolved settings, which rows (first N, after N, all) of which data, the model
it starts from (the base model's config, or the hash of the stage it continues), the task, the
seed and, for GRPO, the reward, the decoding and what checkpoint selection scores. Two arms whose
stages hash the same read one folder, so a stage is trained once however many arms share it
(semrl.pipeline.stage_cache)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.recipes.registry import RECIPES
from semrl.recipes.stages import Part, StageCall, Trainer
from semrl.rewards import build_reward
from semrl.run_folder import Run

STAGES_FOLDER = "stages"


@dataclass(frozen=True, kw_only=True)
class StagePlan(StageCall):
    """A recipe's stage placed in the run: the arm's, trained in `folder`."""

    arm: str
    folder: str  # relative to the run folder
    init_folder: str | None  # the folder of the stage it starts from; None: the base model

    def init_path(self, root: Path, base: str) -> str:
        """The model the stage starts from: `base`, or the final model of its init stage."""
        return base if self.init_folder is None else str(root / self.init_folder / "final")

    @property
    def key(self) -> str:
        """The arm's name for the stage, as the manifest and the messages use it."""
        return f"{self.arm}/{self.stage}"


def stage_hash(exp, arm, call: StageCall, init_hash: str | None) -> str:
    """sha256 of the stage's inputs (see the module doc)."""
    spec = exp.stage_spec(arm, call.stage) if arm is not None else getattr(exp, call.stage)
    n = (exp.stage_spec(arm, "sft") if arm is not None else exp.sft).examples
    payload: dict[str, Any] = {
        "trainer": call.trainer,
        "rows": call.rows,
        "n": None if call.rows == "all" else n,
        "init": init_hash or "base",
        "settings": spec.model_dump(mode="json"),
        "task": exp.task.model_dump(mode="json"),
        "seed": exp.seed,
        "model": exp.model.model_dump(mode="json"),
        "data": exp.data.model_dump(mode="json"),
        "device": exp.device,
        "save_every": exp.eval.curve_every,
    }
    if call.trainer == "grpo":
        payload["reward"] = exp.reward_for(arm).model_dump(mode="json")
        payload["with_reference"] = call.with_reference
        payload["decoding"] = exp.decoding.model_dump(mode="json")
        if spec.select is not None:  # selection decodes and scores as eval does
            payload["select_eval"] = exp.eval.model_dump(
                mode="json",
                include={"encoder", "max_new_tokens", "batch_size", "lang_threshold", "resamples"},
            )
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_arm(exp, arm) -> list[StagePlan]:
    """The arm's stages in training order, each with its content-addressed folder."""
    recipe = RECIPES[arm.recipe]
    n = exp.stage_spec(arm, "sft").examples
    if recipe.examples == "needed" and n is None:
        raise UserError(f"arms.{arm.name}: {arm.recipe} needs sft.examples (the cold-start size N)")
    hashes: dict[str, str] = {}
    folders: dict[str, str] = {}
    plans = []
    for call in recipe.trace(n):
        hashes[call.stage] = stage_hash(exp, arm, call, hashes.get(call.init))
        folders[call.stage] = f"{STAGES_FOLDER}/{call.trainer}-{hashes[call.stage][:16]}"
        plans.append(
            StagePlan(
                **asdict(call), arm=arm.name, folder=folders[call.stage], init_folder=folders.get(call.init)
            )
        )
    return plans


def plan_single(exp, stage: str) -> StagePlan:
    """`semrl train sft|grpo`: one stage from the base model (or --init), in `train/<stage>`."""
    rows: Part = "cold_start" if stage == "sft" and exp.sft.examples else "all"
    trainer: Trainer = "sft" if stage == "sft" else "grpo"
    return StagePlan(stage, trainer, "base", rows, arm="train", folder=f"train/{stage}", init_folder=None)


def plan_experiment(exp) -> list[StagePlan]:
    if not exp.arms:
        raise UserError("arms: the experiment has no arms; add e.g. {name: semantic_rl, recipe: two_stage}")
    plans = [plan for arm in exp.arms for plan in plan_arm(exp, arm)]
    for plan in plans:
        if plan.trainer == "grpo" and not plan.with_reference:
            arm = exp.arm(plan.arm)
            if "reference" in build_reward(exp.reward_for(arm)).needs:
                raise UserError(
                    f"arms.{arm.name}: {arm.recipe}'s GRPO is reference-free; its rewards must not need "
                    "the reference (use semantic with against: source)"
                )
    return plans


def planned_folder(exp, arm: str, stage: str) -> str:
    """Where an arm's stage is (or will be) trained, relative to the run folder, before the run
    records it: e.g. to watch its checkpoints appear."""
    found = next((plan.folder for plan in plan_experiment(exp) if plan.key == f"{arm}/{stage}"), None)
    if found is None:
        raise UserError(f"arms: no stage {arm}/{stage} in the plan")
    return found


def recorded_folder(root: Path, plan: StagePlan) -> Path:
    """The folder the run's manifest records for the arm's stage (what was trained), else the planned
    one: `semrl eval RUN_DIR eval.batch_size=...` re-plans with evaluation settings that a GRPO
    stage with checkpoint selection hashes, so the plan alone may name another folder."""
    return Run(root).arm_stages(plan.arm).get(plan.stage) or Path(root) / plan.folder
