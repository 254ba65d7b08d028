"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into exit code 2 and a single line on stderr; anything else is a bug (exit 1).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a file, a line, a config field. The message names where, in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split("\n")))


def problems_error(
    source: str, problems: list[str], total: int | None = None, max_report: int = 5
) -> UserError:
    """One UserError for a file: its first `max_report` problems, then how many more there were."""
    total = len(problems) if total is None else total
    shown = problems[:max_report]
    more = f" (and {total - len(shown)} more)" if total > len(shown) else ""
    return UserError(f"{source}: " + "; ".join(shown) + more)
