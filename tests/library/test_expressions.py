"""The filter expression language: tokens, syntax tree, evaluation, errors and limits."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, rec
from pydantic import BaseModel, ValidationError

from streamcalc.library.expressions.evaluation import UNDEFINED, compile_expression, compile_predicate
from streamcalc.library.expressions.syntax import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    Expression,
    ExpressionError,
    parse,
    parse_condition,
    show,
    tokenize,
)
from streamcalc.records import Record

R = rec(
    "a1",
    "p",
    BASE_MS,
    12,
    quality=3,
    attr={
        "a": {"b": "x", "n": 2.5, "flag": True, "none": None},
        "list": [{"b": 1}, {"b": "two"}, [7, 8]],
        "s": "text",
        "odd key": 5,
        "map": {"k": 1},
    },
)


def value_of(text: str, record: Record = R) -> Any:
    return compile_expression(text)(record)


TOKEN_CASES = [
    ("1 22 3.5 4e2 5.5E-1", [("number", "1"), ("number", "22"), ("number", "3.5"), ("number", "4e2")]),
    ("a==b!=c<=d>=e&&f||g", [("name", "a"), ("op", "=="), ("name", "b"), ("op", "!=")]),
    ("<>!+-*/%()[].#", [("op", c) for c in "<>!+-*/%()[].#"]),
    ("'it\\'s' \"q\\\"\"", [("string", "it's"), ("string", 'q"')]),
    ("'\\\\ \\n\\r\\t\\u00e9\\u20AC'", [("string", "\\ \n\r\té€")]),
    ("\"a'b\" 'a\"b'", [("string", "a'b"), ("string", 'a"b')]),
    ("record.attr.x_1[0]", [("name", "record"), ("op", "."), ("name", "attr"), ("op", "."), ("name", "x_1")]),
    ("1.b", [("number", "1"), ("op", "."), ("name", "b")]),
    ("température", [("name", "température")]),
]


@pytest.mark.parametrize(("text", "prefix"), TOKEN_CASES)
def test_tokens(text: str, prefix: list[tuple[str, str]]) -> None:
    tokens = tokenize(text)
    assert [(t.kind, t.text) for t in tokens[: len(prefix)]] == prefix
    assert tokens[-1].kind == "end" and tokens[-1].column == len(text) + 1


def test_token_values_and_columns() -> None:
    tokens = tokenize("  12 + 3.5 - 'x'")
    assert [(t.column, t.value) for t in tokens] == [
        (3, 12),
        (6, None),
        (8, 3.5),
        (12, None),
        (14, "x"),
        (17, None),
    ]
    assert type(tokens[0].value) is int and type(tokens[2].value) is float


SHAPE_CASES = [
    ("1 + 2 * 3", "(1 + (2 * 3))"),
    ("1 * 2 + 3", "((1 * 2) + 3)"),
    ("1 - 2 - 3", "((1 - 2) - 3)"),
    ("8 / 4 / 2", "((8 / 4) / 2)"),
    ("7 % 4 * 2", "((7 % 4) * 2)"),
    ("(1 - 2) - (3 - 4)", "((1 - 2) - (3 - 4))"),
    ("-1 - -2", "((-1) - (-2))"),
    ("-record.value * 2 > 1", "(((-record.value) * 2) > 1)"),
    ("1 + 2 < 3 * 4", "((1 + 2) < (3 * 4))"),
    ("1 < 2 == 3 < 4", "((1 < 2) == (3 < 4))"),
    ("true == false == false", "((true == false) == false)"),
    ("true || false && false", "(true || (false && false))"),
    ("true && false || true && true", "((true && false) || (true && true))"),
    ("true || false || true", "(true || false || true)"),
    ("!true && false", "((!true) && false)"),
    ("!(true && false)", "(!(true && false))"),
    ("!!true", "(!(!true))"),
    ("record.value > 10 && record.attr.a.b == 'x'", "((record.value > 10) && (record.attr.a.b == 'x'))"),
    ("#record.attr.list[1].b == 'two'", "(record.attr.list[1].b == 'two')"),
    ("record.attr['odd key'] == 5", "(record.attr['odd key'] == 5)"),
    ("record.attr[\"a\"].b == 'it\\'s'", "(record.attr.a.b == 'it\\'s')"),
    ("record.attr.nil == nil", "(record.attr.nil == nil)"),
]


@pytest.mark.parametrize(("text", "shape"), SHAPE_CASES)
def test_precedence_and_associativity(text: str, shape: str) -> None:
    assert show(parse(text)) == shape
    assert show(parse(shape)) == shape


VALUE_CASES = [
    # arithmetic: Python's numbers, true division, floored modulo
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3.5),
    ("7 % 3", 1),
    ("-7 % 3", 2),
    ("7 % -3", -2),
    ("2.5 * 2", 5.0),
    ("1e3 + 0.5", 1000.5),
    ("-record.value", -12),
    ("record.value - 2 - 3", 7),
    ("'ab' + 'cd'", "abcd"),
    ("record.attr.s + '!'", "text!"),
    # paths
    ("record.value", 12),
    ("record.quality", 3),
    ("record.dq", None),
    ("record.time", BASE_MS),
    ("record.assetId + '/' + record.pointId", "a1/p"),
    ("record.modelIdPath", "/m1"),
    ("record.attr.a.n", 2.5),
    ("record.attr.list[0].b", 1),
    ("#record.attr.list[1].b", "two"),
    ("record.attr.list[2][1]", 8),
    ("record.attr['odd key']", 5),
    ("record.attr.list[3]", None),
    ("record.attr.list[0].b.c", None),
    ("record.attr.a[0]", None),
    ("record.attr.list.b", None),
    ("record.attr.missing.deeper", None),
    ("record.attr.__class__", None),
    ("record.attr.s.upper", None),
    # comparisons and types
    ("1 == 1.0", True),
    ("1 != 1.0", False),
    ("true == 1", False),
    ("1 == '1'", False),
    ("'1' != 1", True),
    ("nil == nil", True),
    ("null == nil", True),
    ("record.dq == nil", True),
    ("record.attr.a.none == nil", True),
    ("record.attr.missing == nil", True),
    ("record.attr.missing != 0", True),
    ("record.attr.missing == false", False),
    ("'abc' < 'abd'", True),
    ("'b' > 'abc'", True),
    ("'Z' < 'a'", True),
    ("2 <= 2.0", True),
    ("record.value >= 12 && record.value < 13", True),
    ("record.attr.a.flag", True),
    ("record.attr.a.flag == true", True),
    # logic and short-circuit: the undefined right side is never evaluated
    ("false && record.attr.missing + 1 > 0", False),
    ("true || 1 / 0 > 0", True),
    ("false || true && true", True),
    ("!(record.value > 100)", True),
    ("!!true", True),
    # undefined: nil or wrong types in arithmetic and ordering, division by zero, overflow
    ("1 / 0", UNDEFINED),
    ("1 % 0", UNDEFINED),
    ("1.0 / 0.0", UNDEFINED),
    ("record.attr.missing + 1", UNDEFINED),
    ("-record.attr.missing", UNDEFINED),
    ("record.attr.missing > 1", UNDEFINED),
    ("record.attr.s > 1", UNDEFINED),
    ("record.attr.s * 2", UNDEFINED),
    ("record.attr.s + 1", UNDEFINED),
    ("record.attr.a.flag + 1", UNDEFINED),
    ("record.attr.a.flag > record.value", UNDEFINED),
    ("record.attr.map == record.attr.map", UNDEFINED),
    ("!record.attr.missing", UNDEFINED),
    ("record.value && true", UNDEFINED),
    ("1 / 0 > 0 || true", UNDEFINED),
    ("!(1 / 0 > 0)", UNDEFINED),
    ("1e308 * 10 > 0", True),
    ("9" * 400 + " / 3", UNDEFINED),
]


@pytest.mark.parametrize(("text", "expected"), VALUE_CASES)
def test_values(text: str, expected: Any) -> None:
    got = value_of(text)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"), [(t, v) for t, v in VALUE_CASES if parse(t).kind in ("boolean", "any")]
)
def test_a_predicate_is_true_only_where_defined_and_true(text: str, expected: Any) -> None:
    assert compile_predicate(text)(R) is (expected is True)


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("record.attr.a.n", False),  # a number is not true
        ("record.attr.s", False),
        ("record.attr.missing", False),
        ("record.attr.a.flag", True),
        ("record.attr.a.flag && record.value == 12", True),
    ],
)
def test_a_bare_path_is_a_condition_tested_at_run_time(text: str, matches: bool) -> None:
    assert compile_predicate(text)(R) is matches


ERROR_CASES = [
    ("", 1, "expected a number, string, true, false, nil, record or '(', found the end of the expression"),
    ("record.value >", 15, "found the end of the expression"),
    ("record.value > 10 10", 19, "expected an operator or the end, found number '10'"),
    ("(record.value > 1", 18, "expected ')' to close the '(' at column 1"),
    ("record.value > 1)", 17, "expected an operator or the end, found ')'"),
    ("record.value = 1", 14, "unexpected character '='; expected '==' (= alone is not an operator)"),
    ("true & false", 6, "expected '&&'"),
    ("true | false", 6, "expected '||'"),
    ("record.value > $", 16, "unexpected character '$'"),
    ("value > 1", 1, "unknown name 'value'; expected record, true, false, nil or null"),
    ("record > 1", 1, "expected '.' and a field name after record"),
    ("record.vlaue > 1", 8, "record has no field 'vlaue'; expected one of orgId, modelId"),
    ("record.__class__ == nil", 8, "record has no field '__class__'"),
    ("record[0] == 1", 8, "record has no field 0"),
    ("record.value.x == 1", 14, "record.value has no sub-fields; only record.attr has"),
    ("record.attr. == 1", 14, "expected a field name after '.', found '=='"),
    ("record.attr[-1] == 1", 13, "expected a list index or a quoted key, found '-'"),
    ("record.attr[1.5] == 1", 13, "expected a list index or a quoted key, found number '1.5'"),
    ("record.attr[0 == 1", 15, "expected ']' to close the '[' at column 12"),
    ("#value > 1", 2, "expected record after '#', found name 'value'"),
    ("'abc", 1, "unterminated string; expected a closing '"),
    ('"abc\\"', 1, 'unterminated string; expected a closing "'),
    ("'a\\qb' == 'x'", 3, "unknown escape"),
    ("'\\u12G4' == 'x'", 2, "unknown escape"),
    ("1e+ > 0", 4, "expected the digits of the exponent"),
    ("1e999 > 0", 1, "number 1e999 is out of range"),
    ("1 + 2", 1, "the expression must be a condition, but it gives a number"),
    ("'a' + 'b'", 1, "the expression must be a condition, but it gives a string"),
    ("nil", 1, "the expression must be a condition, but it gives nil"),
    ("1 && true", 3, "&& needs booleans, not a number"),
    ("true || 'x'", 6, "|| needs booleans, not a string"),
    ("!1", 1, "! needs a boolean, not a number"),
    ("-'x' == 1", 1, "- needs a number, not a string"),
    ("1 + 'a' == 1", 3, "+ needs two numbers or two strings, not a number and a string"),
    ("true + 1 == 1", 6, "+ needs two numbers or two strings, not a boolean and a number"),
    ("'a' * 2 == 1", 5, "* needs numbers, not a string and a number"),
    ("nil + 1 == 1", 5, "+ needs two numbers or two strings, not nil and a number"),
    ("record.value < nil", 14, "< needs two numbers or two strings, not a field value and nil"),
    ("1 < 2 < 3", 7, "< needs two numbers or two strings, not a boolean and a number"),
    ("record.assetId > 5", 16, "> needs two numbers or two strings, not a string and a number"),
    ("record.time + 'ms' == 'x'", 13, "+ needs two numbers or two strings"),
]


@pytest.mark.parametrize(("text", "column", "message"), ERROR_CASES)
def test_errors_give_the_column_and_what_was_expected(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_condition(text)
    assert info.value.column == column
    assert message in info.value.reason
    assert str(info.value).startswith(f"column {column}: ")


def test_expression_errors_are_value_errors_for_pydantic() -> None:
    class Holder(BaseModel):
        expression: Expression

    assert Holder(expression="record.value > 1").expression == "record.value > 1"
    with pytest.raises(ValidationError) as info:
        Holder(expression="record.value >> 1")
    (error,) = info.value.errors()
    assert error["loc"] == ("expression",)
    assert "column 15: expected a number" in error["msg"]


def test_length_limit() -> None:
    ok = "true" + " " * (MAX_EXPRESSION_LENGTH - 4)
    assert compile_predicate(ok)(R) is True
    with pytest.raises(ExpressionError, match=f"longer than {MAX_EXPRESSION_LENGTH} characters") as info:
        parse(ok + " ")
    assert info.value.column == MAX_EXPRESSION_LENGTH + 1


@pytest.mark.parametrize(
    ("build", "limit_ok"),
    [
        (lambda n: "(" * n + "true" + ")" * n, MAX_DEPTH),
        (lambda n: "!" * n + "true", MAX_DEPTH - 1),
        (lambda n: "-" * n + "1 == 1", MAX_DEPTH - 2),
        (lambda n: "(1 + " * n + "1" + ")" * n + " > 0", MAX_DEPTH - 2),
    ],
    ids=["parentheses", "not", "minus", "nested-sums"],
)
def test_depth_limit(build: Any, limit_ok: int) -> None:
    parse_condition(build(limit_ok))
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_condition(build(limit_ok + 1))


def test_long_flat_chains_cost_no_depth() -> None:
    terms = 450  # far past MAX_DEPTH, within MAX_EXPRESSION_LENGTH
    assert value_of(" + ".join(["1"] * terms)) == terms
    assert value_of(" - ".join(["1"] * terms)) == 2 - terms
    assert compile_predicate(" || ".join(["false"] * terms + ["true"]))(R) is True
    assert compile_predicate(" && ".join(["1<2"] * terms))(R) is True
    assert compile_predicate(" == ".join(["true"] * terms))(R) is True


def test_records_without_attr_or_value() -> None:
    bare = rec("a1", "p", BASE_MS, None)
    assert compile_predicate("record.value == nil && record.attr.a.b == nil")(bare) is True
    assert compile_predicate("record.value > 0")(bare) is False
    assert compile_predicate("!(record.value > 0)")(bare) is False


# --- agreement with Python on generated arithmetic and logic ---------------------------------

Gen = tuple[str, str, int]
"""(our text, Python text fully parenthesised, precedence of our text's top operator)"""
ATOM = 9
_PREC = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5}
_PREC.update({"*": 6, "/": 6, "%": 6})
_PY_OP = {"&&": "and", "||": "or"}
VALUE = 7


def _binary(op: str, left: Gen, right: Gen) -> Gen:
    level = _PREC[op]
    ours_l = left[0] if left[2] >= level else f"({left[0]})"
    ours_r = right[0] if right[2] > level else f"({right[0]})"
    return f"{ours_l} {op} {ours_r}", f"({left[1]} {_PY_OP.get(op, op)} {right[1]})", level


def _unary(op: str, operand: Gen) -> Gen:
    ours = operand[0] if operand[2] >= 7 else f"({operand[0]})"
    return f"{op}{ours}", f"({'not' if op == '!' else op} {operand[1]})", 7


number_leaf = st.one_of(
    st.integers(0, 30).map(lambda i: (str(i), str(i), ATOM)),
    st.just(("record.value", str(VALUE), ATOM)),
    st.sampled_from(["0.5", "2.25", "1e2", "10000000000000000000000"]).map(lambda s: (s, s, ATOM)),
)
numbers = st.recursive(
    number_leaf,
    lambda inner: st.one_of(
        st.builds(_binary, st.sampled_from(["+", "-", "*", "/", "%"]), inner, inner),
        st.builds(_unary, st.just("-"), inner),
    ),
    max_leaves=12,
)
bool_literal = st.sampled_from([("true", "True", ATOM), ("false", "False", ATOM)])
comparison = st.builds(_binary, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), numbers, numbers)
booleans = st.recursive(
    st.one_of(bool_literal, comparison),
    lambda inner: st.one_of(
        st.builds(_binary, st.sampled_from(["&&", "||"]), inner, inner),
        st.builds(_binary, st.sampled_from(["&&", "||", "==", "!="]), inner, inner),
        st.builds(_unary, st.just("!"), inner),
    ),
    max_leaves=16,
)


def python_value(python_text: str) -> Any:
    """Only ever given text built by the generators above, never user input."""
    try:
        return eval(compile(python_text, "<generated>", "eval"), {"__builtins__": {}})  # noqa: S307
    except (ZeroDivisionError, OverflowError):
        return UNDEFINED


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(numbers)
@example(("1 - 2 - 3", "((1 - 2) - 3)", 5))
@example(("7 % 0", "(7 % 0)", 6))
def test_arithmetic_agrees_with_python(gen: Gen) -> None:
    ours, python, _ = gen
    record = rec("a1", "p", BASE_MS, VALUE)
    assert same(compile_expression(ours)(record), python_value(python))


@settings(max_examples=300, deadline=None)
@given(booleans)
@example(("1 / 0 > 0 || true", "(((1 / 0) > 0) or True)", 1))
@example(("false && 1 / 0 > 0", "(False and ((1 / 0) > 0))", 2))
def test_conditions_agree_with_python(gen: Gen) -> None:
    ours, python, _ = gen
    record = rec("a1", "p", BASE_MS, VALUE)
    expected = python_value(python)
    assert same(compile_expression(ours)(record), expected)
    assert compile_predicate(ours)(record) is (expected is True)


# --- arbitrary text ---------------------------------------------------------------------------

FUZZ_RECORDS = [
    R,
    rec("a1", "p", BASE_MS, None),
    rec("a1", "p", BASE_MS, "s", attr={"a": [1, None, {"b": [True]}], "b": {"c": {"d": 0.0}}}),
    rec("a1", "p", BASE_MS, True, dq=1, attr={"x": "y"}),
]
GRAMMAR = "record.value.attr.a.b[0]1'\"\\ +-*/%<>=!&|()#truefalsnil.5e" + "x_ é\t\n$"


def check_arbitrary_text(text: str) -> None:
    try:
        predicate = compile_predicate(text)
    except ExpressionError as e:
        assert 1 <= e.column <= max(len(text), MAX_EXPRESSION_LENGTH) + 1
        assert str(e).startswith(f"column {e.column}: ")
        return
    for record in FUZZ_RECORDS:
        assert type(predicate(record)) is bool


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120))
@example("(" * 5000)
@example("(" * 4000)
@example("-" * 4000 + "1")
@example("(!" * 2000)
@example("!" * 5000)
@example("'" + "\\" * 3)
@example("1" * 4096)
def test_arbitrary_text_parses_or_raises_the_documented_error(text: str) -> None:
    check_arbitrary_text(text)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=GRAMMAR, max_size=80))
@example("record.attr.a[0] == 1 && !(record.value > .5)")
@example("#record.attr.b.c.d / 0 == nil || record.value")
def test_grammar_like_text_parses_or_raises_the_documented_error(text: str) -> None:
    check_arbitrary_text(text)
