"""The rules for a record's values that every test and computation shares: what a number is,
when two values are equal, which values order.

A number is an int or a float, never a bool (Python's bool is an int, but a switch that is on
is not a measurement of 1). Equality is by kind: numbers are one kind (1 equals 1.0), and
values of different kinds (number, bool, string, null, list, map) are never equal. Ordering
holds between two numbers or two strings only. The appenders' change test is stricter, as
Java's `equals`: the types must match, so 1 and 1.0 differ.
"""

from __future__ import annotations

import math
from types import NoneType
from typing import TypeGuard

SCALAR_TYPES: frozenset[type] = frozenset({bool, int, float, str, NoneType})
"""Values that compare by equality; lists and maps do not (a filter comparing them is undefined)."""


def is_number(x: object) -> TypeGuard[int | float]:
    return type(x) is int or type(x) is float


def is_finite_number(x: object) -> TypeGuard[int | float]:
    """A number that is not NaN or infinite: what a measurement must be to compute with."""
    return type(x) is int or (type(x) is float and math.isfinite(x))


def is_scalar(x: object) -> bool:
    return type(x) in SCALAR_TYPES


def equal(a: object, b: object) -> bool:
    """`a == b` between values of one kind; False between kinds."""
    if type(a) is int or type(a) is float:
        return (type(b) is int or type(b) is float) and a == b
    return type(a) is type(b) and a == b


def strictly_equal(a: object, b: object) -> bool:
    """`a == b` between values of one type: 1 and 1.0, or 1 and True, differ."""
    return type(a) is type(b) and a == b


def orderable(a: object, b: object) -> bool:
    """Whether `a < b` is defined: two numbers or two strings."""
    return (is_number(a) and is_number(b)) or (type(a) is str and type(b) is str)
