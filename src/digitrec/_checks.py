"""Argument checks shared by every public entry point; each raises a DigitrecError.

A leaf: it imports nothing from digitrec but the exception hierarchy, so every
layer can use it. Messages say what was expected and what came.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TypeVar

from .errors import InvalidInputError

_T = TypeVar("_T")


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return value


def check_int(value: object, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (minimum is not None and value < minimum)
    ):
        wanted = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise InvalidInputError(f"{name} must be {wanted}, got {value!r}")
    return value


def check_positive_int(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


def check_number(
    value: object,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real number in the given interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    inside = ok and (low < number if low_open else low <= number)
    inside = inside and (number < high if high_open else number <= high)
    if not inside:
        if math.isinf(high) and math.isinf(low):
            interval = ""
        elif math.isinf(high):
            interval = f" {'>' if low_open else '>='} {low:g}"
        elif math.isinf(low):
            interval = f" {'<' if high_open else '<='} {high:g}"
        else:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            interval = f" in {left}{low:g}, {high:g}{right}"
        raise InvalidInputError(f"{name} must be a finite number{interval}, got {value!r}")
    return number


def check_choice(value: _T, name: str, choices: Collection[_T]) -> _T:
    if value not in choices:
        raise InvalidInputError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
