"""Field paths into a record as operator config writes them: a record field (`assetId`, `value`,
...) or `attr.<key>[.<key>...]` below attr. Validated when the config is; a path that does not
exist on a record reads as None (a missing key, or a key looked up in something not a map).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator

from streamcalc.records import Record

RECORD_FIELDS = frozenset(Record.__struct_fields__)


def check_field_path(path: str) -> str:
    parts = path.split(".")
    if parts[0] not in RECORD_FIELDS or "" in parts or (len(parts) > 1 and parts[0] != "attr"):
        raise ValueError(f"{path!r} is not a record field or attr.<key>[.<key>...]")
    return path


def check_attr_path(path: str) -> str:
    check_field_path(path)
    if not path.startswith("attr."):
        raise ValueError(f"expected a path below attr (attr.<key>[.<key>...]), got {path!r}")
    return path


FieldPath = Annotated[str, AfterValidator(check_field_path)]
AttrPath = Annotated[str, AfterValidator(check_attr_path)]


def getter(path: str) -> Callable[[Record], Any]:
    """A function reading `path` (already validated) from a record."""
    head, *rest = path.split(".")

    def get(record: Record) -> Any:
        value: Any = getattr(record, head)
        for key in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get
