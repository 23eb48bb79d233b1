"""Evaluation of parsed Record Filter expressions (see `syntax` for the language).

Compiled once per config into closures over a record. Evaluation never raises: a missing
path is nil, and arithmetic or ordering on nil, incompatible values or a division by zero
makes the whole condition false for that record.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeAlias

from streamcalc.library.common.record_paths import reader
from streamcalc.library.common.values import equal, is_number, is_scalar, orderable
from streamcalc.library.expressions.syntax import Const, Logic, Node, Path, Unary, parse, parse_condition
from streamcalc.records import Record


class _Undefined(Exception):
    """Raised inside compiled closures; turns the whole condition false."""


class Undefined(Enum):
    UNDEFINED = "undefined"


UNDEFINED = Undefined.UNDEFINED
"""What `compile_expression` gives for a record on which the expression is undefined."""

Evaluator: TypeAlias = Callable[[Record], Any]


def compile_predicate(text: str) -> Callable[[Record], bool]:
    """`text` as a record test: true only where the condition is defined and gives true."""
    run = _compile(parse_condition(text))

    def predicate(record: Record) -> bool:
        try:
            return run(record) is True
        except _Undefined:
            return False

    return predicate


def compile_expression(text: str) -> Callable[[Record], Any]:
    """`text` as a function of a record giving its value, or UNDEFINED."""
    run = _compile(parse(text))

    def evaluate(record: Record) -> Any:
        try:
            return run(record)
        except _Undefined:
            return UNDEFINED

    return evaluate


def _equal(a: object, b: object) -> bool:
    if type(a) is type(b) and not is_scalar(a):  # two lists or two maps
        raise _Undefined
    return equal(a, b)


def _not_equal(a: object, b: object) -> bool:
    return not _equal(a, b)


def _arithmetic(fn: Callable[[Any, Any], Any], strings: bool = False) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if is_number(a) and is_number(b):
            try:
                return fn(a, b)
            except (ZeroDivisionError, OverflowError):
                raise _Undefined from None
        if strings and type(a) is str and type(b) is str:
            return a + b
        raise _Undefined

    return apply


def _ordering(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def apply(a: Any, b: Any) -> bool:
        if orderable(a, b):
            return fn(a, b)
        raise _Undefined

    return apply


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": _equal,
    "!=": _not_equal,
    "<": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    ">": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
    "+": _arithmetic(operator.add, strings=True),
    "-": _arithmetic(operator.sub),
    "*": _arithmetic(operator.mul),
    "/": _arithmetic(operator.truediv),
    "%": _arithmetic(operator.mod),
}


def _compile(node: Node) -> Evaluator:
    if isinstance(node, Const):
        value = node.value
        return lambda record: value
    if isinstance(node, Path):
        return reader(node.segments)
    if isinstance(node, Unary):
        return _compile_unary(node.op, _compile(node.operand))
    if isinstance(node, Logic):
        return _compile_logic(node.op, [_compile(t) for t in node.terms])
    return _compile_chain(_compile(node.first), [(_BINARY[op], _compile(n)) for op, n in node.steps])


def _compile_unary(op: str, run: Evaluator) -> Evaluator:
    if op == "!":

        def negate(record: Record) -> bool:
            v = run(record)
            if type(v) is not bool:
                raise _Undefined
            return not v

        return negate

    def minus(record: Record) -> Any:
        v = run(record)
        if not is_number(v):
            raise _Undefined
        return -v

    return minus


def _compile_logic(op: str, terms: list[Evaluator]) -> Evaluator:
    stop = op == "||"  # the value that decides the result on its own

    def logic(record: Record) -> bool:
        for term in terms:
            v = term(record)
            if type(v) is not bool:
                raise _Undefined
            if v is stop:
                return stop
        return not stop

    return logic


def _compile_chain(first: Evaluator, steps: list[tuple[Callable[[Any, Any], Any], Evaluator]]) -> Evaluator:
    def chain(record: Record) -> Any:
        value = first(record)
        for apply, run in steps:
            value = apply(value, run(record))
        return value

    return chain
