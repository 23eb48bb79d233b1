"""Filter expressions: a small, safe boolean language over one record, modelled on the
Aviator expressions of EnOS's Record Filter (`record.value > 10 && record.attr.a[1].b == 'x'`).

User text is never given to Python's eval/exec/compile and never reaches attributes of Python
objects: a hand-written tokenizer and Pratt parser build an AST of five node types, checked
for obvious type errors, then compiled once into closures over a `Record`. Paths read only
record fields and, below `attr`, dict keys and list indexes.

Evaluation (`evaluation`) never raises. A missing path is nil; arithmetic or ordering
on nil or on values of the wrong types, division by zero and overflow make the whole
condition false for that record (internally an `_Undefined` signal, like SQL's unknown but
absorbing). Text that cannot be parsed raises `ExpressionError` with a 1-based column and
what was expected; it is a ValueError, so a pydantic field of type `Expression` reports it
as a validation error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal, TypeAlias

from pydantic import AfterValidator

from streamcalc.errors import StreamcalcError
from streamcalc.library.common.record_paths import ATTR, FIELD_KINDS, RECORD_FIELDS

MAX_EXPRESSION_LENGTH = 4096
"""Characters."""
MAX_DEPTH = 64
"""Nesting of parentheses, unary operators and operator nodes; bounds parser and evaluator recursion."""

Kind: TypeAlias = Literal["boolean", "number", "string", "nil", "any"]
"""What the checker knows of a node's value before evaluation; `any` for most paths."""
Scalar: TypeAlias = bool | int | float | str | None

_NAMES: dict[str, Scalar] = {"true": True, "false": False, "nil": None, "null": None}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_TWO_CHAR_OPS = frozenset({"==", "!=", "<=", ">=", "&&", "||"})
_ONE_CHAR_OPS = frozenset("+-*/%<>!()[].#")
_KIND_NAMES: dict[Kind, str] = {
    "boolean": "a boolean",
    "number": "a number",
    "string": "a string",
    "nil": "nil",
    "any": "a field value",
}
_HINTS = {"=": "'==' (= alone is not an operator)", "&": "'&&'", "|": "'||'"}
_LEVEL = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}
_LEVEL.update({"+": 5, "-": 5, "*": 6, "/": 6, "%": 6})


class ExpressionError(StreamcalcError, ValueError):
    """Expression text that cannot be used: the message says where (column) and what was expected."""

    def __init__(self, column: int, reason: str) -> None:
        super().__init__(f"column {column}: {reason}")
        self.column = column
        self.reason = reason


# --- tokens ----------------------------------------------------------------------------------

TokenKind: TypeAlias = Literal["number", "string", "name", "op", "end"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    """The source text (for strings: the decoded value)."""
    column: int
    value: Scalar = None


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            MAX_EXPRESSION_LENGTH + 1, f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters"
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif "0" <= c <= "9":
            i = _number(text, i, tokens)
        elif c in "'\"":
            i = _string(text, i, tokens)
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("name", text[i:j], i + 1))
            i = j
        elif text[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token("op", text[i : i + 2], i + 1))
            i += 2
        elif c in _ONE_CHAR_OPS:
            tokens.append(Token("op", c, i + 1))
            i += 1
        else:
            expected = f"; expected {_HINTS[c]}" if c in _HINTS else ""
            raise ExpressionError(i + 1, f"unexpected character {c!r}{expected}")
    tokens.append(Token("end", "", n + 1))
    return tokens


def _digits(text: str, j: int) -> int:
    while j < len(text) and "0" <= text[j] <= "9":
        j += 1
    return j


def _number(text: str, i: int, tokens: list[Token]) -> int:
    j = _digits(text, i)
    is_float = False
    if text[j : j + 1] == "." and "0" <= text[j + 1 : j + 2] <= "9":
        j, is_float = _digits(text, j + 1), True
    if text[j : j + 1] in ("e", "E"):
        k = j + 1 + (text[j + 1 : j + 2] in ("+", "-"))
        end = _digits(text, k)
        if end == k:
            raise ExpressionError(k + 1, "expected the digits of the exponent")
        j, is_float = end, True
    literal = text[i:j]
    value: int | float = float(literal) if is_float else int(literal)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(i + 1, f"number {literal} is out of range")
    tokens.append(Token("number", literal, i + 1, value))
    return j


def _string(text: str, i: int, tokens: list[Token]) -> int:
    quote, j, parts = text[i], i + 1, []
    while True:
        if j >= len(text):
            raise ExpressionError(i + 1, f"unterminated string; expected a closing {quote}")
        c = text[j]
        if c == quote:
            break
        if c != "\\":
            parts.append(c)
            j += 1
            continue
        e = text[j + 1 : j + 2]
        if e in _ESCAPES and e:
            parts.append(_ESCAPES[e])
            j += 2
        elif (
            e == "u" and len(h := text[j + 2 : j + 6]) == 4 and all(x in "0123456789abcdefABCDEF" for x in h)
        ):
            parts.append(chr(int(h, 16)))
            j += 6
        elif not e:
            raise ExpressionError(i + 1, f"unterminated string; expected a closing {quote}")
        else:
            raise ExpressionError(
                j + 1, "unknown escape; expected one of \\\\ \\' \\\" \\n \\r \\t or \\u and 4 hex digits"
            )
    value = "".join(parts)
    tokens.append(Token("string", value, i + 1, value))
    return j + 1


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Scalar
    column: int
    kind: Kind
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Path:
    segments: tuple[str | int, ...]
    """A record field, then (below attr only) dict keys and list indexes."""
    column: int
    kind: Kind
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    column: int
    kind: Kind
    depth: int


@dataclass(frozen=True, slots=True)
class Chain:
    """Left-associative operators of one precedence level: ((first op1 x1) op2 x2) ...; kept
    flat so long sums or equality chains cost no recursion depth."""

    first: Node
    steps: tuple[tuple[str, Node], ...]
    column: int
    kind: Kind
    depth: int


@dataclass(frozen=True, slots=True)
class Logic:
    """`&&` or `||` over two or more terms, evaluated left to right with short-circuit."""

    op: str
    terms: tuple[Node, ...]
    column: int
    kind: Kind
    depth: int


Node: TypeAlias = Const | Path | Unary | Chain | Logic


# --- parser ----------------------------------------------------------------------------------


def parse(text: str) -> Node:
    """The checked syntax tree of `text`, whatever its kind (see `parse_condition`)."""
    return _Parser(tokenize(text)).parse()


def parse_condition(text: str) -> Node:
    """The syntax tree of `text`, which must give a boolean (or a path, tested at run time)."""
    node = parse(text)
    if node.kind not in ("boolean", "any"):
        raise ExpressionError(1, f"the expression must be a condition, but it gives {_KIND_NAMES[node.kind]}")
    return node


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.kind == "string":
        return "a string"
    return f"{tok.kind} {tok.text!r}" if tok.kind != "op" else repr(tok.text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._pos = 0
        self._open = 0
        """Parentheses and unary operators being parsed: bounds the parser's own recursion."""

    def _peek(self) -> Token:
        return self._tokens[self._pos]

    def _next(self) -> Token:
        tok = self._tokens[self._pos]
        if tok.kind != "end":
            self._pos += 1
        return tok

    def _expect(self, text: str, what: str) -> Token:
        tok = self._next()
        if tok.kind != "op" or tok.text != text:
            raise ExpressionError(tok.column, f"expected {what}, found {_describe(tok)}")
        return tok

    def parse(self) -> Node:
        node = self._expression(1)
        tok = self._peek()
        if tok.kind != "end":
            raise ExpressionError(tok.column, f"expected an operator or the end, found {_describe(tok)}")
        return node

    def _expression(self, min_level: int) -> Node:
        """Pratt loop: operands bind to the operator of higher level; each level's run of
        operators is gathered into one Chain/Logic node (levels only fall within one call)."""
        node = self._prefix()
        level, column = 0, 0
        operands: list[Node] = []
        ops: list[Token] = []
        while True:
            tok = self._peek()
            tok_level = _LEVEL.get(tok.text, 0) if tok.kind == "op" else 0
            if tok_level < min_level or tok_level == 0:
                break
            self._next()
            right = self._expression(tok_level + 1)
            if tok_level != level:
                if operands:
                    node = _combine(level, column, operands, ops)
                level, column, operands, ops = tok_level, tok.column, [node], []
            operands.append(right)
            ops.append(tok)
        return _combine(level, column, operands, ops) if operands else node

    def _prefix(self) -> Node:
        tok = self._next()
        if tok.kind == "op" and tok.text in ("(", "!", "-"):
            self._open += 1
            if self._open > MAX_DEPTH:
                raise ExpressionError(tok.column, f"expression nested deeper than {MAX_DEPTH} levels")
            if tok.text == "(":
                node = self._expression(1)
                self._expect(")", f"')' to close the '(' at column {tok.column}")
            else:
                node = _unary(tok, self._prefix())
            self._open -= 1
            return node
        if tok.kind == "number":
            return Const(tok.value, tok.column, "number")
        if tok.kind == "string":
            return Const(tok.value, tok.column, "string")
        if tok.kind == "name" and tok.text in _NAMES:
            value = _NAMES[tok.text]
            return Const(value, tok.column, "nil" if value is None else "boolean")
        if tok.kind == "name" and tok.text == "record":
            return self._path(tok)
        if tok.kind == "op" and tok.text == "#":
            name = self._next()
            if name.kind != "name" or name.text != "record":
                raise ExpressionError(name.column, f"expected record after '#', found {_describe(name)}")
            return self._path(tok)
        if tok.kind == "name":
            raise ExpressionError(
                tok.column, f"unknown name {tok.text!r}; expected record, true, false, nil or null"
            )
        raise ExpressionError(
            tok.column, f"expected a number, string, true, false, nil, record or '(', found {_describe(tok)}"
        )

    def _path(self, start: Token) -> Path:
        segments: list[str | int] = []
        columns: list[int] = []
        while (tok := self._peek()).kind == "op" and tok.text in (".", "["):
            self._next()
            seg = self._next()
            columns.append(seg.column)
            if tok.text == ".":
                if seg.kind != "name":
                    raise ExpressionError(
                        seg.column, f"expected a field name after '.', found {_describe(seg)}"
                    )
                segments.append(seg.text)
                continue
            if seg.kind == "string":
                segments.append(seg.text)
            elif seg.kind == "number" and isinstance(seg.value, int):
                segments.append(seg.value)
            else:
                raise ExpressionError(
                    seg.column, f"expected a list index or a quoted key, found {_describe(seg)}"
                )
            self._expect("]", f"']' to close the '[' at column {tok.column}")
        return _checked_path(start.column, segments, columns)


def _checked_path(column: int, segments: list[str | int], columns: list[int]) -> Path:
    if not segments:
        raise ExpressionError(column, "expected '.' and a field name after record")
    first = segments[0]
    if not isinstance(first, str) or first not in FIELD_KINDS:
        raise ExpressionError(
            columns[0], f"record has no field {first!r}; expected one of {', '.join(RECORD_FIELDS)}"
        )
    if len(segments) > 1 and first != ATTR:
        raise ExpressionError(columns[1], f"record.{first} has no sub-fields; only record.attr has")
    return Path(tuple(segments), column, FIELD_KINDS[first])


def _node_depth(column: int, *children: Node) -> int:
    depth = 1 + max(c.depth for c in children)
    if depth > MAX_DEPTH:
        raise ExpressionError(column, f"expression nested deeper than {MAX_DEPTH} levels")
    return depth


def _unary(tok: Token, operand: Node) -> Unary:
    want: Kind = "boolean" if tok.text == "!" else "number"
    if operand.kind not in (want, "any"):
        raise ExpressionError(tok.column, f"{tok.text} needs a {want}, not {_KIND_NAMES[operand.kind]}")
    return Unary(tok.text, operand, tok.column, want, _node_depth(tok.column, operand))


def _combine(level: int, column: int, operands: list[Node], ops: list[Token]) -> Node:
    depth = _node_depth(column, *operands)
    if level <= 2:
        for term, op in zip(operands, [ops[0], *ops], strict=True):
            if term.kind not in ("boolean", "any"):
                raise ExpressionError(op.column, f"{op.text} needs booleans, not {_KIND_NAMES[term.kind]}")
        return Logic(ops[0].text, tuple(operands), column, "boolean", depth)
    kind = operands[0].kind
    for op, right in zip(ops, operands[1:], strict=True):
        kind = _check_binary(op, kind, right.kind)
    steps = tuple((op.text, right) for op, right in zip(ops, operands[1:], strict=True))
    return Chain(operands[0], steps, column, kind, depth)


def _check_binary(op: Token, left: Kind, right: Kind) -> Kind:
    """The kind of `left op right`, or an ExpressionError when no values could make it defined."""
    known: set[Kind] = {k for k in (left, right) if k != "any"}
    if op.text in ("==", "!="):
        return "boolean"
    result: Kind
    if op.text in ("<", "<=", ">", ">="):
        allowed, result = {"number", "string"}, "boolean"
    elif op.text == "+":
        allowed, result = {"number", "string"}, next(iter(known), "any")
    else:
        allowed, result = {"number"}, "number"
    if known - allowed or len(known) > 1:
        needs = "two numbers or two strings" if len(allowed) > 1 else "numbers"
        raise ExpressionError(
            op.column, f"{op.text} needs {needs}, not {_KIND_NAMES[left]} and {_KIND_NAMES[right]}"
        )
    return result


# --- rendering (tests, error reports) --------------------------------------------------------


def show(node: Node) -> str:
    """`node` fully parenthesised, in the expression syntax."""
    if isinstance(node, Const):
        return _show_const(node.value)
    if isinstance(node, Path):
        return "record" + "".join(_show_segment(s) for s in node.segments)
    if isinstance(node, Unary):
        return f"({node.op}{show(node.operand)})"
    if isinstance(node, Logic):
        return "(" + f" {node.op} ".join(show(t) for t in node.terms) + ")"
    text = show(node.first)
    for op, right in node.steps:
        text = f"({text} {op} {show(right)})"
    return text


def _show_const(value: Scalar) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        return "'" + escaped.replace("\r", "\\r").replace("\t", "\\t") + "'"
    return repr(value)


def _show_segment(seg: str | int) -> str:
    if isinstance(seg, int):
        return f"[{seg}]"
    if seg and (seg[0].isalpha() or seg[0] == "_") and all(c.isalnum() or c == "_" for c in seg):
        return f".{seg}"
    return f"[{_show_const(seg)}]"


def _check_expression(text: str) -> str:
    parse_condition(text)
    return text


Expression = Annotated[str, AfterValidator(_check_expression)]
"""A pydantic field holding a condition; invalid text fails validation with the column."""
