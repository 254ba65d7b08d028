"""A number with its 95% interval as text, `value [lo, hi]`: one shape and one missing mark for
every table, claim and message that shows a bootstrap interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# what a cell or message shows where the number is undefined (null: no items, no trend)
MISSING = "–"


def is_number(value: Any) -> bool:
    """A value to print: null (undefined) and the NaN of runs written before JSON was strict are not."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_interval(value: Any, ci95: Sequence[Any] | None, spec: str = ".3f") -> str:
    """`value [lo, hi]`, each formatted with `spec` (such as `+.3f`); MISSING when the value is
    undefined, the value alone when its interval is (too few items to resample)."""
    if not is_number(value):
        return MISSING
    text = format(value, spec)
    if ci95 is not None and len(ci95) == 2 and all(is_number(bound) for bound in ci95):
        text += f" [{format(ci95[0], spec)}, {format(ci95[1], spec)}]"
    return text
