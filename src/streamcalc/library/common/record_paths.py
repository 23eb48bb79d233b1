"""The record's fields, and paths into a record, for everyone that names them: operator config
(`assetId`, `attr.<key>[.<key>...]`), a stage's requiredFields, conditions and the filter
expressions (which also index lists: `record.attr.a[1]`).

Only `attr` has sub-fields. Reading a path never raises: a missing key, a key looked up in
something not a map, or an index in something not a list reads as None.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator

from streamcalc.records import Record

FieldKind: TypeAlias = Literal["string", "number", "any"]

FIELD_KINDS: dict[str, FieldKind] = {
    "orgId": "string",
    "modelId": "string",
    "modelIdPath": "string",
    "assetId": "string",
    "pointId": "string",
    "time": "number",
    "value": "any",
    "quality": "any",
    "dq": "any",
    "attr": "any",
}
"""Every field of a record, in the record's order, with what every record holds there."""
RECORD_FIELDS = tuple(FIELD_KINDS)
ID_FIELDS = tuple(f for f, kind in FIELD_KINDS.items() if kind == "string")
"""The fields naming where a record comes from: non-empty strings on every record."""
ATTR = "attr"
"""The one field with sub-fields."""

Segment: TypeAlias = str | int
"""A field or dict key (str), or below attr a list index (int)."""


def split_path(path: str) -> tuple[str, ...] | None:
    """`attr.a.b` -> ("attr", "a", "b"); None when `path` names no record field or attr key."""
    parts = tuple(path.split("."))
    if parts[0] not in FIELD_KINDS or "" in parts or (len(parts) > 1 and parts[0] != ATTR):
        return None
    return parts


def check_field_path(path: str) -> str:
    if split_path(path) is None:
        raise ValueError(f"{path!r} is not a record field or attr.<key>[.<key>...]")
    return path


def check_attr_path(path: str) -> str:
    check_field_path(path)
    if not path.startswith(f"{ATTR}."):
        raise ValueError(f"expected a path below attr (attr.<key>[.<key>...]), got {path!r}")
    return path


FieldPath = Annotated[str, AfterValidator(check_field_path)]
AttrPath = Annotated[str, AfterValidator(check_attr_path)]


def reader(segments: Sequence[Segment]) -> Callable[[Record], Any]:
    """A function reading the path `segments` (already validated: a field, then attr's keys and
    indexes) from a record."""
    get = operator.attrgetter(str(segments[0]))
    rest = tuple(segments[1:])
    if not rest:
        return get

    def walk(record: Record) -> Any:
        value: Any = record.attr
        for seg in rest:
            if type(seg) is int:
                if not isinstance(value, list | tuple) or seg >= len(value):
                    return None
                value = value[seg]
            elif isinstance(value, dict):
                value = value.get(seg)
            else:
                return None
        return value

    return walk


def getter(path: str) -> Callable[[Record], Any]:
    """A function reading the dotted `path` (already validated) from a record."""
    return reader(path.split("."))
