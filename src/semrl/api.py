"""semrl's Python API: what code outside semrl may import, in one place.

The command line is the main way in; this is the way for code that builds on semrl: your own
metric (`register_metric`, named under `plugins:`), a study that runs experiments and reads their
results, or an app like the offline sandbox (`semrl.sandbox`), which imports semrl only through
this module (a test holds it to that). A name here keeps its meaning across releases; anything else
inside semrl may move. docs/reference/python-api.md lists every name with its summary.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker and a reader see; at run time a name loads on first use
    from semrl.config_files import StrictModel, load_config
    from semrl.data.loading import LINE
    from semrl.data.preferences import load_preferences, translate_pairs
    from semrl.data.splits import split_rows
    from semrl.encoders.loading import load_encoder
    from semrl.evaluate.benchmarks import PRIMARY, run_suite
    from semrl.evaluate.generation import GenerationSettings, generate
    from semrl.evaluate.intervals import MISSING, format_interval
    from semrl.evaluate.preference import compare
    from semrl.evaluate.runner import Evaluator
    from semrl.evaluate.stats import bootstrap_mean, bootstrap_paired_difference, percentile_interval
    from semrl.evaluate.suite import load_suite
    from semrl.evaluate.tradeoff import Point, compare_frontiers, matched_levels
    from semrl.evaluate.trends import MIN_ENTRIES, MIN_WINDOW, reward_trend
    from semrl.experiment_config import EncoderSpec, ExperimentConfig, load_experiment
    from semrl.files import (
        atomic_savefig,
        atomic_write_json,
        atomic_write_jsonl,
        atomic_write_text,
        check_output_folder,
        publish_folder,
        read_json,
        read_jsonl,
        to_json,
    )
    from semrl.metrics.registry import MetricInputs, MetricType, metric_names, register_metric
    from semrl.metrics.surface import CorpusScore
    from semrl.models.tiny import TinySpec, build_tiny_lm
    from semrl.pipeline.experiment import run_experiment
    from semrl.plugins import load_plugins
    from semrl.report import build_report
    from semrl.report.build import gather_results
    from semrl.report.stall import stall_table
    from semrl.report.tables import Table
    from semrl.rewards.audit import audit
    from semrl.rewards.build import build_reward
    from semrl.rewards.config import RewardConfig
    from semrl.run_folder import Run
    from semrl.studies.few_shot_transfer import run_transfer
    from semrl.studies.rm.transfer import run_rm_transfer
    from semrl.tasks import Task, register_task, task_names
    from semrl.text.scripts import resolve_scripts, target_share
    from semrl.text.tibetan import syllables
    from semrl.train.checkpoints import stage_checkpoints
    from semrl.train.common import progress_callback, quiet
    from semrl.train.encoder import run_encoder
    from semrl.train.hacking import hacking_check
    from semrl.train.settings import StageSettings

__all__ = [
    "LINE",
    "MIN_ENTRIES",
    "MIN_WINDOW",
    "MISSING",
    "PRIMARY",
    "CorpusScore",
    "EncoderSpec",
    "Evaluator",
    "ExperimentConfig",
    "GenerationSettings",
    "MetricInputs",
    "MetricType",
    "Point",
    "RewardConfig",
    "Run",
    "StageSettings",
    "StrictModel",
    "Table",
    "Task",
    "TinySpec",
    "atomic_savefig",
    "atomic_write_json",
    "atomic_write_jsonl",
    "atomic_write_text",
    "audit",
    "bootstrap_mean",
    "bootstrap_paired_difference",
    "build_report",
    "build_reward",
    "build_tiny_lm",
    "check_output_folder",
    "compare",
    "compare_frontiers",
    "format_interval",
    "gather_results",
    "generate",
    "hacking_check",
    "load_config",
    "load_encoder",
    "load_experiment",
    "load_plugins",
    "load_preferences",
    "load_suite",
    "matched_levels",
    "metric_names",
    "percentile_interval",
    "progress_callback",
    "publish_folder",
    "quiet",
    "read_json",
    "read_jsonl",
    "register_metric",
    "register_task",
    "resolve_scripts",
    "reward_trend",
    "run_encoder",
    "run_experiment",
    "run_rm_transfer",
    "run_suite",
    "run_transfer",
    "split_rows",
    "stage_checkpoints",
    "stall_table",
    "syllables",
    "target_share",
    "task_names",
    "to_json",
    "translate_pairs",
]


def _homes() -> dict[str, str]:
    """Each public name and its module, read off the imports above: `from semrl.api import X` then
    imports X's module only, so code that needs a file helper does not wait for torch and TRL."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


HOMES = _homes()


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module 'semrl.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
