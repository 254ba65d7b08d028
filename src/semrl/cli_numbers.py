"""Numbers given on the command line: every float option is finite.

click parses "nan" and "inf" as floats, and a NaN threshold compares false with everything, so a
check would silently pass or fail every row. Each float option takes `callback=finite`, and a test
walks the whole command tree to hold every float option to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import typer

from semrl.errors import UserError


def finite(
    ctx: typer.Context, param: typer.CallbackParam, value: float | Sequence[float] | None
) -> float | Sequence[float] | None:
    """The option's value, unless it (or one of its values) is NaN or infinite: then exit 2
    naming the option."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for number in values:
        if isinstance(number, float) and not math.isfinite(number):
            flag = param.opts[0] if param.opts else param.name
            raise UserError(f"{flag}: {number} is not a finite number")
    return value
