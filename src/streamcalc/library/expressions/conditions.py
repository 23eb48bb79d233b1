"""Conditions: record tests written as data, never as evaluated code.

`"*"` (always), a comparison `{"field": "value"|"quality"|"dq"|"time", "op": "=="|"!="|">"|
">="|"<"|"<=", "value": <scalar>}`, or a non-empty list of comparisons that must all hold.
Ordering operators hold only between two numbers (bool is not a number) or two strings; `==`
treats 1 and 1.0 as equal but never a bool as a number. A missing field (quality/dq None)
fails every ordering test and equals only `null`. Used by operator rules and by the
Preconditions every stage may declare.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from streamcalc.library.common.record_paths import getter
from streamcalc.library.common.values import equal, is_number
from streamcalc.records import Record

CompareOp = Literal["==", "!=", ">", ">=", "<", "<="]
ConditionField = Literal["value", "quality", "dq", "time"]
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: ConditionField = "value"
    op: CompareOp
    value: bool | int | float | str | None

    @model_validator(mode="after")
    def _comparable(self) -> Comparison:
        if self.op in _ORDERING and (self.value is None or type(self.value) is bool):
            raise ValueError(f"operator {self.op} needs a number or a string")
        return self


Condition = Literal["*"] | Comparison | list[Comparison]


def _compile_comparison(c: Comparison) -> Callable[[Record], bool]:
    get = getter(c.field)
    want = c.value
    if c.op == "==":
        return lambda r: equal(get(r), want)
    if c.op == "!=":
        return lambda r: not equal(get(r), want)
    test = _ORDERING[c.op]
    if isinstance(want, str):
        return lambda r: type(v := get(r)) is str and test(v, want)
    return lambda r: is_number(v := get(r)) and test(v, want)


def compile_condition(condition: Condition) -> Callable[[Record], bool] | None:
    """None means "always" (the `*` fast path)."""
    if condition == "*":
        return None
    if isinstance(condition, Comparison):
        return _compile_comparison(condition)
    tests = [_compile_comparison(c) for c in condition]
    return lambda r: all(t(r) for t in tests)
