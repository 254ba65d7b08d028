"""Data: loading tables (JSONL/CSV/TSV/Parquet/datasets id), validation, splits, task prompts."""

from semrl.data.loading import load_table, require_columns
from semrl.data.splits import split_rows
from semrl.data.tasks import TaskExamples, build_task_examples

__all__ = ["TaskExamples", "build_task_examples", "load_table", "require_columns", "split_rows"]
