"""The general-competence suite YAML: what the base model knows and the tuned one may lose.

```yaml
benchmarks:
  - {name: qa-zh, type: qa, file: qa.jsonl, lang: zh}      # context, question, answers -> EM/F1
  - {name: mc, type: mc, file: mc.jsonl, k_shot: 1}        # question, choices, answer -> accuracy
  - {name: text, type: nll, file: general.txt}             # NLL of held-out text (mean, P90)
  - {name: drift, type: kl, file: general.txt}             # per-token KL to the base (mean, P90)
  - {name: arc, type: lm_eval, task: arc_easy}             # optional, needs `pip install lm-eval`
  - {name: mine, type: lm_eval, task: my_task, include_path: tasks, limit: 200}   # a local lm-eval task
```
Paths (file, include_path) are relative to the suite file. Every file is read and validated, and
every lm-eval task found (its data cached or local), before any model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from semrl.config_files import StrictModel, load_config
from semrl.data.loading import load_table
from semrl.errors import UserError
from semrl.evaluate.lm_eval_tasks import check_task
from semrl.files import read_lines
from semrl.text.visible import filled


class BenchmarkSpec(StrictModel):
    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="the benchmark's name in results and the report"
    )
    type: Literal["qa", "mc", "nll", "kl", "lm_eval"] = Field(
        description="qa: extractive QA by EM/F1; mc: multiple choice by log-likelihood; nll: NLL of texts; "
        "kl: per-token KL to the base; lm_eval: an lm-evaluation-harness task"
    )
    file: str | None = Field(
        None, description="the items (JSONL/CSV/TSV/Parquet, or .txt for nll/kl); all but lm_eval need one"
    )
    lang: str = Field(
        "en",
        description="language of the answers; picks QA normalisation (zh by characters, bo by syllables)",
    )
    k_shot: int = Field(
        0,
        ge=0,
        description="mc: the first k items are shown as examples and not scored; "
        "lm_eval: num_fewshot when given (else the task's own)",
    )
    max_new_tokens: int = Field(32, ge=1, description="qa: longest generated answer")
    max_length: int = Field(
        512,
        ge=16,
        description="mc, nll, kl: tokens per sequence, longer ones are cut; "
        "lm_eval: passed to lm-eval when given",
    )
    batch_size: int = Field(16, ge=1, description="items per forward pass")
    length_normalize: bool = Field(False, description="mc: compare mean instead of summed log-likelihood")
    chat_template: bool = Field(
        False,
        description="qa, lm_eval: wrap the prompt in the tokenizer's chat "
        "template (plain text by default, as lm-eval does)",
    )
    task: str | None = Field(None, description="lm_eval: task, group or tag name")
    include_path: str | None = Field(
        None, description="lm_eval: a folder of lm-eval task YAMLs (searched before lm-eval's own tasks)"
    )
    limit: int | None = Field(None, ge=1, description="lm_eval: only the first N documents of each task")

    @model_validator(mode="after")
    def _needs(self):
        if self.type == "lm_eval" and not self.task:
            raise ValueError("lm_eval benchmarks need `task:`")
        if self.type != "lm_eval" and not self.file:
            raise ValueError(f"{self.type} benchmarks need `file:`")
        for field in ("include_path", "limit"):
            if self.type != "lm_eval" and getattr(self, field) is not None:
                raise ValueError(f"`{field}:` is for lm_eval benchmarks only")
        return self


class SuiteConfig(StrictModel):
    benchmarks: list[BenchmarkSpec] = Field(
        min_length=1, description="the suite's benchmarks, each scored on the base and every arm"
    )


def _answers(value: Any) -> list[str] | None:
    if filled(value):
        return [value]
    if isinstance(value, list) and value and all(filled(v) for v in value):
        return value
    return None


def load_items(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """Validated items of one benchmark (QA/MC rows or texts); errors name file, line and field."""
    path = spec.file
    if path is None:  # only lm_eval benchmarks have no file, and they have no items to load
        raise ValueError(f"benchmark {spec.name!r} ({spec.type}) has no file of items")
    if spec.type in ("nll", "kl"):
        if path.endswith(".txt"):
            texts = [line for line in read_lines(path) if filled(line)]
        else:
            rows = load_table(path)
            for row in rows:
                if not filled(row.get("text")):
                    raise UserError(f"{path}: line {row['__line__']}: field 'text' must be non-empty text")
            texts = [row["text"] for row in rows]
        if not texts:
            raise UserError(f"{path}: no texts")
        return [{"text": t} for t in texts]
    rows = load_table(path)
    items = []
    for row in rows:
        where = f"{path}: line {row['__line__']}"
        if spec.type == "qa":
            for field in ("context", "question"):
                if not filled(row.get(field)):
                    raise UserError(f"{where}: field {field!r} must be non-empty text")
            answers = _answers(row.get("answers", row.get("answer")))
            if answers is None:
                raise UserError(f"{where}: field 'answers' must be a non-empty string or list of strings")
            items.append({"context": row["context"], "question": row["question"], "answers": answers})
        else:
            if not filled(row.get("question")):
                raise UserError(f"{where}: field 'question' must be non-empty text")
            choices = row.get("choices")
            if (
                not isinstance(choices, list)
                or len(choices) < 2
                or not all(isinstance(c, str) and c for c in choices)
            ):
                raise UserError(f"{where}: field 'choices' must be a list of at least two strings")
            answer = row.get("answer")
            if isinstance(answer, str) and answer in choices:
                answer = choices.index(answer)
            if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
                raise UserError(
                    f"{where}: field 'answer' must be a choice index (0..{len(choices) - 1}) or a choice"
                )
            items.append({"question": row["question"], "choices": choices, "answer": answer})
    if spec.type == "mc" and len(items) <= spec.k_shot:
        raise UserError(f"{path}: {len(items)} items, k_shot {spec.k_shot} leaves none to evaluate")
    return items


def check_lm_eval(spec: BenchmarkSpec, suite_path: str | Path) -> None:
    """include_path is a folder, the task is known to lm-eval and its data can be had."""
    if spec.include_path and not Path(spec.include_path).is_dir():
        raise UserError(
            f"{suite_path}: benchmark {spec.name}: include_path: folder not found: {spec.include_path}"
        )
    try:
        check_task(spec)
    except UserError as exc:
        raise UserError(f"{suite_path}: {exc}") from None


def load_suite(path: str | Path) -> tuple[SuiteConfig, dict[str, list[dict[str, Any]]]]:
    """The suite and every benchmark's items, paths resolved against the suite file."""
    suite = load_config(SuiteConfig, path)
    base = Path(path).resolve().parent
    items: dict[str, list[dict[str, Any]]] = {}
    names = [b.name for b in suite.benchmarks]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: benchmark names must be unique")
    for spec in suite.benchmarks:
        if spec.file and not Path(spec.file).is_absolute():
            spec.file = str(base / spec.file)
        if spec.include_path and not Path(spec.include_path).is_absolute():
            spec.include_path = str(base / spec.include_path)
        if spec.type == "lm_eval":
            check_lm_eval(spec, path)
        items[spec.name] = load_items(spec) if spec.type != "lm_eval" else []
    return suite, items
