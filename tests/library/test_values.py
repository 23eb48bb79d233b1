"""The value rules (library.common.values) and their two users, conditions and filter
expressions: each still decides as the rules it had of its own did, and the two agree."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, RecordingContext, rec

from streamcalc.library import get_operator
from streamcalc.library.common.values import (
    equal,
    is_finite_number,
    is_number,
    is_scalar,
    orderable,
    strictly_equal,
)
from streamcalc.library.expressions.conditions import Comparison, compile_condition
from streamcalc.library.expressions.evaluation import UNDEFINED, compile_expression
from streamcalc.records import Record
from streamcalc.runtime.keyed_state import StageState
from streamcalc.state.memory import MemoryStateStore

# --- the rules each user had before they shared values.py (the reference) ---------------------


def conditions_equal_before(a: object, b: object) -> bool:
    if (type(a) is bool) != (type(b) is bool):
        return False
    return a == b


def expression_kind_before(x: object) -> str:
    return "number" if type(x) is int or type(x) is float else type(x).__name__


def expression_equal_before(a: object, b: object) -> bool | None:
    """None: undefined (the whole condition false)."""
    kind = expression_kind_before(a)
    if kind != expression_kind_before(b):
        return False
    if kind not in ("number", "str", "bool", "NoneType"):
        return None
    return a == b


def ordering_before(a: object, b: object) -> bool:
    numbers = all((type(x) is int) or (type(x) is float) for x in (a, b))
    return numbers or (type(a) is str and type(b) is str)


# --- tables -----------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf
NUMBER_CASES: list[tuple[Any, bool, bool]] = [
    # value, is_number, is_finite_number
    (0, True, True),
    (-3, True, True),
    (2.5, True, True),
    (NAN, True, False),
    (INF, True, False),
    (-INF, True, False),
    (True, False, False),
    (False, False, False),
    ("1", False, False),
    (None, False, False),
    ([1], False, False),
    ({"a": 1}, False, False),
]


@pytest.mark.parametrize(("value", "number", "finite"), NUMBER_CASES)
def test_numbers(value: Any, number: bool, finite: bool) -> None:
    assert (is_number(value), is_finite_number(value)) == (number, finite)


EQUAL_CASES: list[tuple[Any, Any, bool, bool]] = [
    # a, b, equal, strictly_equal
    (1, 1, True, True),
    (1, 1.0, True, False),
    (1, True, False, False),
    (0, False, False, False),
    (True, True, True, True),
    ("a", "a", True, True),
    ("1", 1, False, False),
    (None, None, True, True),
    (None, 0, False, False),
    (NAN, NAN, False, False),
    ([1], [1], True, True),
    ({"a": 1}, {"a": 1.0}, True, True),  # maps compare with Python's ==
    ([1], (1,), False, False),
]


@pytest.mark.parametrize(("a", "b", "eq", "strict"), EQUAL_CASES)
def test_equality(a: Any, b: Any, eq: bool, strict: bool) -> None:
    assert (equal(a, b), equal(b, a)) == (eq, eq)
    assert (strictly_equal(a, b), strictly_equal(b, a)) == (strict, strict)


@pytest.mark.parametrize(
    ("a", "b", "ordered"),
    [
        (1, 2.5, True),
        ("a", "b", True),
        (1, "1", False),
        (True, 1, False),
        (None, None, False),
        ([1], [2], False),
    ],
)
def test_ordering(a: Any, b: Any, ordered: bool) -> None:
    assert orderable(a, b) is ordered
    assert is_scalar(a) is (type(a) in (bool, int, float, str, type(None)))


# --- properties: both users decide as before --------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, -1.5, 2.5, NAN, INF]),
    st.sampled_from(["", "a", "1", "b"]),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.just("k"), inner)
)
condition_wants = scalars.filter(lambda v: not (type(v) is float and not math.isfinite(v)))
"""A condition's value comes from JSON: no NaN or infinity."""


def record_with(value: Any, other: Any = None) -> Record:
    if is_scalar(value):
        return rec("a1", "p", BASE_MS, value, attr={"a": value, "b": other})
    return rec("a1", "p", BASE_MS, None, attr={"a": value, "b": other})


@settings(max_examples=400, deadline=None)
@given(a=values, b=values)
def test_expression_equality_is_as_before(a: Any, b: Any) -> None:
    got = compile_expression("record.attr.a == record.attr.b")(record_with(a, b))
    before = expression_equal_before(a, b)
    assert got is (UNDEFINED if before is None else before)


@settings(max_examples=400, deadline=None)
@given(a=values, b=values, op=st.sampled_from(["<", "<=", ">", ">="]))
def test_expression_ordering_is_as_before(a: Any, b: Any, op: str) -> None:
    got = compile_expression(f"record.attr.a {op} record.attr.b")(record_with(a, b))
    if not ordering_before(a, b):
        assert got is UNDEFINED
    else:
        assert got is {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


@settings(max_examples=400, deadline=None)
@given(value=scalars, want=condition_wants, op=st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
def test_conditions_are_as_before_and_agree_with_expressions(value: Any, want: Any, op: str) -> None:
    if op not in ("==", "!=") and (want is None or type(want) is bool):
        return  # refused by the config: ordering needs a number or a string
    test = compile_condition(Comparison(op=op, value=want))  # type: ignore[arg-type]
    assert test is not None
    record = record_with(value, want)
    if op in ("==", "!="):
        before = conditions_equal_before(value, want) is (op == "==")
    else:
        kind_ok = type(value) is str if isinstance(want, str) else type(value) in (int, float)
        before = (
            kind_ok and {"<": value < want, "<=": value <= want, ">": value > want, ">=": value >= want}[op]
        )
    assert test(record) is before
    expression = compile_expression(f"record.value {op} record.attr.b")(record)
    assert (expression is True) is before


@pytest.mark.parametrize(("value", "number", "finite"), NUMBER_CASES)
def test_the_window_loops_refuse_by_the_same_rules(value: Any, number: bool, finite: bool) -> None:
    """The window aggregators test each value inline, for speed: they refuse exactly what
    is_number (SimplifiedTimeWindowAggregator) and is_finite_number (the others) refuse."""
    rule = {"inputPoint": "m1::p", "outputPoint": "m1::p_out", "windowSize": 1, "windowUnit": "minute"}
    configs = {
        "SimplifiedTimeWindowAggregator": ({"rules": [rule]}, number),
        "FixedTimeWindowAggregator": ({"rules": [{**rule, "aggregator": "sum"}]}, finite),
    }
    for name, (config, accepted) in configs.items():
        op = get_operator(name)
        assert op is not None and op.build is not None and op.state_type is not None
        store = MemoryStateStore()
        ctx = RecordingContext("s", StageState(store, "s", op.state_type))
        op.build(op.config.model_validate(config)).process([rec("a1", "p", BASE_MS, value)], ctx)
        assert (not ctx.rejected) is accepted, name
