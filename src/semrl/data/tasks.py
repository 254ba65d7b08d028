"""Validated rows into the records each trainer wants, by the task type's template and roles
(semrl/tasks/: `translate`, `headline`, `generic`).

Prompts are chat messages when the model's tokenizer has a chat template (TRL applies it), plain
text otherwise. The same prompt is used for SFT, GRPO and evaluation, so the stages agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from semrl.errors import UserError
from semrl.tasks import TASKS

LANGUAGE_NAMES = {
    "bo": "Tibetan",
    "zh": "Chinese",
    "en": "English",
    "es": "Spanish",
    "it": "Italian",
    "ko": "Korean",
    "ja": "Japanese",
    "fr": "French",
    "de": "German",
    "ru": "Russian",
    "ug": "Uyghur",
    "mn": "Mongolian",
}


def language_name(code: str | None, given: str | None) -> str:
    if given:
        return given
    if code is None:
        return "the target language"
    return LANGUAGE_NAMES.get(code.split("-")[0].lower(), code)


@dataclass(frozen=True)
class TaskExamples:
    """Builds the records each trainer wants from rows that hold the task's roles."""

    task: Any  # TaskSpec
    use_chat: bool

    @property
    def roles(self) -> tuple[str, ...]:
        return TASKS[self.task.type].roles

    def prompt_text(self, row: dict[str, Any]) -> str:
        template = self.task.template or TASKS[self.task.type].template
        fields = {
            "source": row.get("source", ""),
            "prompt": row.get("prompt", ""),
            "source_name": language_name(self.task.source_lang, self.task.source_name),
            "target_name": language_name(
                self.task.target_lang or self.task.source_lang, self.task.target_name
            ),
        }
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise UserError(
                f"task.template: cannot fill {exc} (fields: {', '.join(sorted(fields))})"
            ) from None

    def prompt(self, row: dict[str, Any]) -> Any:
        text = self.prompt_text(row)
        if not self.use_chat:
            return text + "\n"
        messages = [{"role": "system", "content": self.task.system}] if self.task.system else []
        return messages + [{"role": "user", "content": text}]

    def completion(self, reference: str) -> Any:
        return [{"role": "assistant", "content": reference}] if self.use_chat else reference

    def sft_record(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": self.prompt(row), "completion": self.completion(row["reference"])}

    def grpo_record(
        self, row: dict[str, Any], columns: dict[str, str], with_reference: bool = True
    ) -> dict[str, Any]:
        record = {"prompt": self.prompt(row)}
        if with_reference:
            record[columns["reference"]] = row["reference"]
        if "source" in row:
            record[columns["source"]] = row["source"]
        return record


def build_task_examples(task, tokenizer) -> TaskExamples:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if task.chat_template == "always" and not has_template:
        raise UserError("task.chat_template: 'always', but the model's tokenizer has no chat template")
    use_chat = task.chat_template == "always" or (task.chat_template == "auto" and has_template)
    return TaskExamples(task, use_chat)


def role_rows(rows: list[dict[str, Any]], task_type: str, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Rows renamed to roles (source/prompt/reference/id), keeping the line numbers."""
    mapping = {role: columns.get(role, role) for role in (*TASKS[task_type].roles, "id")}
    return [
        {
            **{role: row[column] for role, column in mapping.items() if column in row},
            "__line__": row.get("__line__"),
        }
        for row in rows
    ]
