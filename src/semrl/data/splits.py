"""Deterministic splits: the same seed gives the same rows in the same order on every machine."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def shuffled(rows: Sequence[T], seed: int) -> list[T]:
    order = list(rows)
    random.Random(seed).shuffle(order)
    return order


def requested_test_rows(test_size: float, total: int) -> int:
    """Rows a test_size asks to hold out of `total`: a fraction (< 1) of them, or a count (>= 1)."""
    return int(round(test_size * total)) if test_size < 1 else int(test_size)


def split_rows(rows: Sequence[T], test_size: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, test) after a seeded shuffle; test_size < 1 is a fraction, >= 1 a count."""
    order = shuffled(rows, seed)
    n_test = min(requested_test_rows(test_size, len(order)), max(len(order) - 1, 0))
    return order[n_test:], order[:n_test]


def head(rows: Sequence[T], n: int | None) -> list[T]:
    return list(rows if n is None else rows[:n])


def rest(rows: Sequence[T], n: int | None) -> list[T]:
    return [] if n is None else list(rows[n:])
