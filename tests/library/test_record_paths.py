"""The record's fields and paths (library.common.record_paths), which operator config, stage
requiredFields, conditions and filter expressions all read through."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, rec

from streamcalc.library.common.record_paths import (
    FIELD_KINDS,
    ID_FIELDS,
    check_attr_path,
    check_field_path,
    getter,
    reader,
    split_path,
)
from streamcalc.library.merger import GROUP_TAG_FIELDS
from streamcalc.records import Record

R = rec("a1", "p", BASE_MS, 12, attr={"a": {"b": "x", "n": None}, "list": [{"b": 1}, [7, 8]], "s": "t"})


def test_the_fields_are_the_records_own_in_its_order() -> None:
    assert tuple(FIELD_KINDS) == Record.__struct_fields__
    assert ID_FIELDS == ("orgId", "modelId", "modelIdPath", "assetId", "pointId")
    assert GROUP_TAG_FIELDS == ("assetId", "orgId", "modelId", "modelIdPath", "pointId")


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("value", ("value",)),
        ("assetId", ("assetId",)),
        ("attr", ("attr",)),
        ("attr.a.b", ("attr", "a", "b")),
        ("attr.odd key", ("attr", "odd key")),
        ("vaule", None),
        ("value.x", None),
        ("attr.", None),
        ("attr..a", None),
        ("", None),
        (".attr", None),
    ],
)
def test_split_path(path: str, parts: tuple[str, ...] | None) -> None:
    assert split_path(path) == parts
    if parts is None:
        with pytest.raises(ValueError, match="is not a record field or attr"):
            check_field_path(path)
    else:
        assert check_field_path(path) == path


def test_attr_paths() -> None:
    assert check_attr_path("attr.a") == "attr.a"
    for path in ("attr", "value"):
        with pytest.raises(ValueError, match="expected a path below attr"):
            check_attr_path(path)


@pytest.mark.parametrize(
    ("segments", "value"),
    [
        (("value",), 12),
        (("time",), BASE_MS),
        (("attr", "a", "b"), "x"),
        (("attr", "a", "n"), None),
        (("attr", "a", "missing"), None),
        (("attr", "s", "x"), None),  # a key in something not a map
        (("attr", "list", 0, "b"), 1),
        (("attr", "list", 1, 1), 8),
        (("attr", "list", 2), None),  # past the end
        (("attr", "list", "0"), None),  # a key in a list
        (("attr", "a", 0), None),  # an index in a map
    ],
)
def test_reader(segments: tuple[str | int, ...], value: Any) -> None:
    assert reader(segments)(R) == value


def lookup_before(record: Record, path: str) -> Any:
    """How record_paths.getter and the pipeline's requiredFields read a dotted path before."""
    head, *rest = path.split(".")
    value: Any = getattr(record, head)
    for key in rest:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


trees = st.recursive(
    st.none() | st.integers(0, 2) | st.sampled_from(["x", ""]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(attr=st.dictionaries(st.sampled_from("ab"), trees, max_size=2), keys=st.lists(st.sampled_from("ab0")))
def test_getter_reads_dotted_paths_as_before(attr: dict[str, Any], keys: list[str]) -> None:
    record = rec("a1", "p", BASE_MS, 1, attr=attr)
    path = ".".join(["attr", *keys])
    assert getter(path)(record) == lookup_before(record, path)
