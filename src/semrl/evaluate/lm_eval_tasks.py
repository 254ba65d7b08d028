"""lm-evaluation-harness benchmarks (`type: lm_eval` in the general suite).

Why a module of its own: lm-eval is optional, its task index is slow to build, and its results are
aggregates. Here the task is found and its data checked before any model runs (a missing folder,
an unknown task or hub data that cannot be had offline is exit 2, not a failure hours in), and the
per-document scores lm-eval logs become semrl's per-item metrics, so the alignment tax of an lm-eval
benchmark gets the same paired-bootstrap interval as the built-in ones.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.evaluate.stats import mean_with_interval
from semrl.hub import hub_offline_requested, hub_reachable

# `datasets` builders that read local files: a task with one of these as dataset_path needs no hub
LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "xml", "webdataset", "generator"}
# lm-eval's per-document metric -> (semrl's metric, scale): percent, like the built-in QA and MC
PER_ITEM = {
    "acc": ("accuracy", 100.0),
    "acc_norm": ("accuracy_norm", 100.0),
    "exact_match": ("em", 100.0),
    "f1": ("f1", 100.0),
}


def _require_lm_eval(name: str) -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserError(
            f"benchmark {name}: type lm_eval needs the optional package lm-eval "
            "(pip install 'semrl[lm-eval]')"
        ) from None


@functools.lru_cache(maxsize=8)
def _manager(include_path: str | None, defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=defaults, verbosity="ERROR")


def find_task(spec) -> tuple[Any, Any]:
    """(TaskManager, index entry) for spec.task. The include_path folder alone is tried first: lm-eval's
    own index (about 15,000 tasks) takes seconds to build and a local task does not need it."""
    _require_lm_eval(spec.name)
    attempts = ([(spec.include_path, False)] if spec.include_path else []) + [(spec.include_path, True)]
    for include_path, defaults in attempts:
        manager = _manager(include_path, defaults)
        entry = manager.task_index.get(spec.task)
        if entry is not None:
            return manager, entry
    where = f"in include_path {spec.include_path} nor among" if spec.include_path else "among"
    raise UserError(
        f"benchmark {spec.name}: task: {spec.task!r} is not an lm-eval task, group or tag "
        f"({where} lm-eval's own tasks)"
    )


def _absolute(value: Any, folder: Path) -> Any:
    """data_files entries relative to the task YAML's folder (lm-eval would read them from the cwd)."""
    if isinstance(value, str):
        return value if "://" in value or Path(value).is_absolute() else str(folder / value)
    if isinstance(value, list):
        return [_absolute(v, folder) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(v, folder) for k, v in value.items()}
    return value


def task_spec(entry) -> str | dict[str, Any]:
    """What simple_evaluate gets: the task's name, or its full config with data_files made absolute."""
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    if entry.kind != Kind.TASK or entry.yaml_path is None:
        return entry.name
    config = load_yaml(entry.yaml_path, resolve_func=True)
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    if files is None:
        return entry.name
    folder = Path(entry.yaml_path).parent
    config["dataset_kwargs"] = {**config["dataset_kwargs"], "data_files": _absolute(files, folder)}
    return config


def _dataset_path(entry) -> str | None:
    from lm_eval.tasks._yaml_loader import load_yaml

    if entry.yaml_path is not None:
        return load_yaml(entry.yaml_path, resolve_func=False).get("dataset_path")
    return (entry.cfg or {}).get("dataset_path")


def _hub_data_available(repo_id: str) -> bool:
    """In the hub cache, or prepared in the datasets cache, or the hub is reachable."""
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        pass
    try:
        import datasets

        if (Path(datasets.config.HF_DATASETS_CACHE) / repo_id.replace("/", "___")).is_dir():
            return True
    except ImportError:
        pass
    return hub_reachable()


def check_task(spec) -> None:
    """Before any model runs: the task exists; hub data is cached or the hub reachable; a task on
    local files is built once (its YAML and data parse)."""
    manager, entry = find_task(spec)
    dataset = _dataset_path(entry)
    if dataset and dataset not in LOCAL_BUILDERS and not Path(dataset).exists():
        if not _hub_data_available(dataset):
            why = "HF_HUB_OFFLINE is set" if hub_offline_requested() else "the hub is not reachable from here"
            raise UserError(
                f"benchmark {spec.name}: task {spec.task}: its data {dataset!r} is not in the "
                f"Hugging Face cache, and {why}; run it once on a connected machine"
            )
        return
    if dataset in LOCAL_BUILDERS:
        try:
            manager.load([task_spec(entry)])
        except Exception as exc:  # noqa: BLE001 - lm-eval raises many kinds; all mean "this task is broken"
            message = " ".join(str(exc).split())[:300]
            raise UserError(
                f"benchmark {spec.name}: task {spec.task}: lm-eval cannot load it: "
                f"{type(exc).__name__}: {message}"
            ) from None


def _per_item(samples: dict[str, list[dict[str, Any]]]) -> dict[str, list[float]]:
    """Per-document scores of every task (sorted by task, then document), one filter each (the first)."""
    items: dict[str, list[float]] = {}
    for task in sorted(samples):
        rows = samples[task]
        first = rows[0].get("filter") if rows else None
        for row in sorted((r for r in rows if r.get("filter") == first), key=lambda r: r["doc_id"]):
            for metric, (name, scale) in PER_ITEM.items():
                value = row.get(metric)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    items.setdefault(name, []).append(scale * float(value))
    return items


def run_lm_eval(spec, model, tokenizer, seed: int = 0) -> dict[str, Any]:
    """The task on the in-memory model. lm-eval's acc, acc_norm, exact_match and f1 become accuracy,
    accuracy_norm, em and f1 in percent, per item and with intervals (the alignment tax pairs them);
    any other aggregate lm-eval reports is kept under its own name, as it reports it."""
    import logging

    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    manager, entry = find_task(spec)
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)  # HFLM warns that it was handed a model object: that is the point
    try:
        extra = {"max_length": spec.max_length} if "max_length" in spec.model_fields_set else {}
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=spec.batch_size, **extra)
    finally:
        logger.setLevel(level)
    result = simple_evaluate(
        model=lm,
        tasks=[task_spec(entry)],
        task_manager=manager,
        limit=spec.limit,
        log_samples=True,
        num_fewshot=spec.k_shot if "k_shot" in spec.model_fields_set else None,
        bootstrap_iters=0,
        apply_chat_template=spec.chat_template,
        random_seed=None,
        numpy_random_seed=None,
        torch_random_seed=None,
        fewshot_random_seed=seed,
        verbosity="ERROR",
    )
    items = _per_item(result.get("samples", {}))
    metrics: dict[str, Any] = {name: mean_with_interval(values, seed=seed) for name, values in items.items()}
    for key, value in result["results"].get(spec.task, {}).items():  # the rest (e.g. perplexity) as reported
        name = key.split(",")[0]
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and "stderr" not in name
            and name not in PER_ITEM
            and name != "sample_len"
        ):
            metrics[name] = {"value": float(value)}
    return {"metrics": metrics, "items": items}
