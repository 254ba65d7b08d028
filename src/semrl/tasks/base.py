"""What a task type is: everything semrl needs to know about it, in one object."""

from __future__ import annotations

from dataclasses import dataclass

INPUT_ROLES = ("source", "prompt")  # what a prompt template can show: {source} or {prompt}


@dataclass(frozen=True)
class Task:
    """A task type: how its rows become a prompt, which fields a row must hold, how it is scored.

    Row checks follow from `roles`: every data row must have a column for each role (after
    `data.columns` renames them), and each of those fields must be non-empty text of at most
    `data.max_chars` characters (data/task_rows.py, data/quality.py)."""

    name: str  # the `task.type:` value in the experiment YAML
    template: str  # default prompt; fields {source}, {prompt}, {source_name}, {target_name}
    roles: tuple[str, ...]  # the row fields it needs: the input first, then the reference
    metrics: tuple[str, ...]  # default evaluation metrics (evaluate/task.py computes each)
    hub_task: str = "text-generation"  # the Hub's task type, for model cards' eval results

    @property
    def input_role(self) -> str:
        """The field the prompt is made from (source or prompt): what the encoder stage pairs with the
        reference."""
        return self.roles[0]
