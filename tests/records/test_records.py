"""Records: the codec keeps value types and rejects bad messages precisely; the origin normaliser."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcalc.records import (
    MAX_ID_LENGTH,
    OriginError,
    OriginMessage,
    Record,
    Rejected,
    decode_record,
    decode_records,
    encode_record,
    encode_records,
    normalise_origin,
)

BASE: dict[str, Any] = {
    "orgId": "o15",
    "modelId": "inverter",
    "modelIdPath": "/pv/inverter",
    "assetId": "asset-1",
    "pointId": "power",
    "time": 1_700_000_000_000,
    "value": 1,
}


def raw_record(**changes: Any) -> bytes:
    """JSON bytes of a valid record with `changes` applied (a value of ... removes the field)."""
    doc = {**BASE, **changes}
    return msgspec.json.encode({k: v for k, v in doc.items() if v is not ...})


def typed(x: Any) -> Any:
    """A structure that compares unequal when a type changed (1 == 1.0 == True in plain Python)."""
    if isinstance(x, dict):
        return ("dict", {k: typed(v) for k, v in x.items()})
    if isinstance(x, list):
        return ("list", [typed(v) for v in x])
    return (type(x).__name__, x)


def typed_record(r: Record) -> dict[str, Any]:
    return {f: typed(getattr(r, f)) for f in r.__struct_fields__}


# codec: round trip keeps types


@pytest.mark.parametrize(
    ("value", "expected_type"),
    [
        (0, int),
        (-7, int),
        (2**63 - 1, int),
        (1.0, float),
        (-0.5, float),
        (1e300, float),
        (True, bool),
        (False, bool),
        ("12.5", str),
        ("", str),
        ("ünïcødé ✓", str),
        (None, type(None)),
    ],
)
def test_decode_keeps_value_type(value: Any, expected_type: type) -> None:
    record = decode_record(raw_record(value=value))
    assert type(record.value) is expected_type
    assert record.value == value


def test_round_trip_keeps_every_field_and_type() -> None:
    original = Record(
        orgId="o15",
        modelId="inverter",
        modelIdPath="/pv/inverter",
        assetId="a:1/ü",
        pointId="p.1",
        time=0,
        value=1.0,
        quality=2,
        dq=0,
        attr={"n": 1, "f": 1.0, "b": True, "s": "x", "z": None, "l": [1, 2.0, False], "d": {"k": "v"}},
    )
    decoded = decode_record(encode_record(original))
    assert decoded == original
    assert typed_record(decoded) == typed_record(original)


def test_encode_omits_defaults_and_decode_restores_them() -> None:
    record = decode_record(raw_record())
    assert (record.quality, record.dq, record.attr) == (None, None, {})
    assert set(msgspec.json.decode(encode_record(record))) == set(BASE)


def test_record_key_is_asset_and_point() -> None:
    assert decode_record(raw_record(assetId="A", pointId="P")).key == ("A", "P")


def test_encode_records_matches_encode_record_in_order() -> None:
    records = [decode_record(raw_record(value=v)) for v in (1, 2.5, "x", None)]
    assert encode_records(records) == [encode_record(r) for r in records]
    assert [decode_record(b) for b in encode_records(records)] == records


# codec: precise rejection reasons


@pytest.mark.parametrize(
    ("raw", "reason_parts"),
    [
        (raw_record(value=...), ["missing required field", "value"]),
        (raw_record(assetId=...), ["missing required field", "assetId"]),
        (raw_record(assetId=""), ["length >= 1", "$.assetId"]),
        (raw_record(pointId=""), ["length >= 1", "$.pointId"]),
        (raw_record(assetId="a" * (MAX_ID_LENGTH + 1)), ["length <= 128", "$.assetId"]),
        (raw_record(time=-1), [">= 0", "$.time"]),
        (raw_record(time=1.5), ["Expected `int`", "float", "$.time"]),
        (raw_record(time=1.0), ["Expected `int`", "float", "$.time"]),
        (raw_record(time="1700000000000"), ["Expected `int`", "str", "$.time"]),
        (raw_record(value=[1, 2]), ["array", "$.value"]),
        (raw_record(value={"v": 1}), ["object", "$.value"]),
        (raw_record(quality="good"), ["$.quality"]),
        (raw_record(extra=1), ["unknown field", "extra"]),
        (b'{"orgId": "o15", "modelId"', ["truncated"]),
        (b"not json", ["malformed"]),
        (b"[]", ["Expected `object`", "array"]),
        (b"", ["truncated"]),
    ],
)
def test_decode_records_rejects_with_precise_reason(raw: bytes, reason_parts: list[str]) -> None:
    records, rejected = decode_records([raw])
    assert records == []
    assert len(rejected) == 1
    assert rejected[0].index == 0
    assert rejected[0].raw == raw
    assert rejected[0].reason.startswith("invalid record: ")
    for fragment in reason_parts:
        assert fragment in rejected[0].reason


def test_decode_records_keeps_good_ones_in_order_and_indexes_bad_ones() -> None:
    batch = [
        raw_record(value=1),
        raw_record(time=-5),
        raw_record(value=2.0),
        b"{",
        raw_record(value="three"),
        raw_record(unknown=True),
        raw_record(value=None),
    ]
    records, rejected = decode_records(batch)
    assert [r.value for r in records] == [1, 2.0, "three", None]
    assert [type(r.value) for r in records] == [int, float, str, type(None)]
    assert [(r.index, r.raw) for r in rejected] == [(1, batch[1]), (3, batch[3]), (5, batch[5])]
    assert all(isinstance(r, Rejected) for r in rejected)


def test_decode_records_accepts_memoryview_and_bytearray_and_returns_raw_as_bytes() -> None:
    bad = bytearray(b"{oops")
    records, rejected = decode_records([memoryview(raw_record()), bad])
    assert len(records) == 1
    assert rejected[0].raw == b"{oops"
    assert type(rejected[0].raw) is bytes


def test_decode_record_raises_decode_error() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.time"):
        decode_record(raw_record(time=-1))
    with pytest.raises(msgspec.DecodeError):
        decode_record(b"{")


# codec: property


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=10,
)
_ids = st.text(min_size=1, max_size=MAX_ID_LENGTH)
records_strategy = st.builds(
    Record,
    orgId=_ids,
    modelId=_ids,
    modelIdPath=st.text(min_size=1),
    assetId=_ids,
    pointId=_ids,
    time=st.integers(min_value=0, max_value=2**63 - 1),
    value=_json_scalars,
    quality=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    dq=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    attr=st.dictionaries(st.text(), _json, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(records_strategy)
def test_any_valid_record_survives_encode_decode_unchanged(record: Record) -> None:
    decoded = decode_record(encode_record(record))
    assert decoded == record
    assert typed_record(decoded) == typed_record(record)
    records, rejected = decode_records(encode_records([record, record]))
    assert rejected == []
    assert records == [record, record]


# origin normaliser


def origin(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "orgId": "o15",
        "modelId": "inverter",
        "payload": [{"assetId": "a1", "time": 1000, "measurepoints": {"p1": 1}}],
    }
    doc.update(changes)
    return msgspec.json.encode({k: v for k, v in doc.items() if v is not ...})


def test_origin_multi_asset_multi_point_becomes_one_record_per_point_in_order() -> None:
    raw = origin(
        modelIdPath="/pv/inverter",
        payload=[
            {"assetId": "a1", "time": 1000, "measurepoints": {"p1": 1, "p2": 2.0, "p3": "on"}},
            {"assetId": "a2", "time": 2000, "measurepoints": {"p1": True, "p4": None}},
        ],
    )
    records, errors = normalise_origin(raw)
    assert errors == []
    assert [(r.assetId, r.pointId, r.time, r.value) for r in records] == [
        ("a1", "p1", 1000, 1),
        ("a1", "p2", 1000, 2.0),
        ("a1", "p3", 1000, "on"),
        ("a2", "p1", 2000, True),
        ("a2", "p4", 2000, None),
    ]
    assert [type(r.value) for r in records] == [int, float, str, bool, type(None)]
    assert {(r.orgId, r.modelId, r.modelIdPath) for r in records} == {("o15", "inverter", "/pv/inverter")}
    assert all((r.quality, r.dq, r.attr) == (None, None, {}) for r in records)


def test_origin_value_quality_points() -> None:
    raw = origin(
        payload=[
            {
                "assetId": "a1",
                "time": 5,
                "measurepoints": {
                    "p1": {"value": 3.5, "quality": 9},
                    "p2": {"value": 7},
                    "p3": {"value": "x", "quality": 1, "dq": 2},
                    "p4": {"value": None, "quality": 0},
                },
            }
        ]
    )
    records, errors = normalise_origin(raw)
    assert errors == []
    assert [(r.pointId, typed(r.value), r.quality, r.dq) for r in records] == [
        ("p1", ("float", 3.5), 9, None),
        ("p2", ("int", 7), None, None),
        ("p3", ("str", "x"), 1, 2),
        ("p4", ("NoneType", None), 0, None),
    ]


@pytest.mark.parametrize(
    ("message_path", "item", "expected_model", "expected_path"),
    [
        (None, {}, "inverter", "/inverter"),
        ("/pv/inverter", {}, "inverter", "/pv/inverter"),
        ("/pv/inverter", {"modelIdPath": "/site/meter"}, "inverter", "/site/meter"),
        (None, {"modelId": "meter"}, "meter", "/meter"),
        ("/pv/inverter", {"modelId": "meter"}, "meter", "/pv/inverter"),
    ],
)
def test_origin_model_id_path_defaults(
    message_path: str | None, item: dict[str, Any], expected_model: str, expected_path: str
) -> None:
    changes: dict[str, Any] = {
        "payload": [{"assetId": "a1", "time": 1, "measurepoints": {"p": 1}, **item}],
    }
    if message_path is not None:
        changes["modelIdPath"] = message_path
    records, errors = normalise_origin(origin(**changes))
    assert errors == []
    assert [(r.modelId, r.modelIdPath) for r in records] == [(expected_model, expected_path)]


def test_origin_records_round_trip_through_the_codec() -> None:
    records, _ = normalise_origin(origin(payload=[{"assetId": "a", "time": 3, "measurepoints": {"x": 1.0}}]))
    assert [typed_record(decode_record(b)) for b in encode_records(records)] == [
        typed_record(r) for r in records
    ]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "truncated"),
        (b"42", "Expected `object`"),
        (origin(orgId=""), "$.orgId"),
        (origin(orgId=...), "orgId"),
        (origin(modelId=...), "modelId"),
        (origin(payload=[]), "$.payload"),
        (origin(payload=[{"time": 1, "measurepoints": {"p": 1}}]), "assetId"),
        (origin(payload=[{"assetId": "a", "time": -1, "measurepoints": {"p": 1}}]), "$.payload[0].time"),
        (origin(payload=[{"assetId": "a", "time": 1.5, "measurepoints": {"p": 1}}]), "$.payload[0].time"),
        (origin(payload=[{"assetId": "a", "time": 1, "measurepoints": {}}]), "measurepoints"),
        (origin(payload=[{"assetId": "a", "time": 1, "measurepoints": {"": 1}}]), "measurepoints"),
    ],
)
def test_origin_message_level_errors_raise(raw: bytes, fragment: str) -> None:
    with pytest.raises(OriginError) as info:
        normalise_origin(raw)
    assert info.value.reason.startswith("invalid origin message: ")
    assert fragment in info.value.reason
    assert (info.value.asset_id, info.value.point_id) == (None, None)


@pytest.mark.parametrize(
    ("bad_point", "fragment"),
    [
        ([1, 2], "got list"),
        ({"quality": 1}, "value"),
        ({"value": [1]}, "value"),
        ({"value": {"x": 1}}, "value"),
        ({"value": 1, "quality": "good"}, "quality"),
        ({"value": 1, "quality": 1.5}, "quality"),
        ({"value": 1, "colour": "red"}, "colour"),
    ],
)
def test_origin_bad_point_rejects_only_that_point(bad_point: Any, fragment: str) -> None:
    raw = origin(
        payload=[
            {"assetId": "a1", "time": 1, "measurepoints": {"good1": 1, "bad": bad_point, "good2": 2.5}},
            {"assetId": "a2", "time": 2, "measurepoints": {"good3": "x"}},
        ]
    )
    records, errors = normalise_origin(raw)
    assert [(r.assetId, r.pointId, typed(r.value)) for r in records] == [
        ("a1", "good1", ("int", 1)),
        ("a1", "good2", ("float", 2.5)),
        ("a2", "good3", ("str", "x")),
    ]
    assert len(errors) == 1
    assert (errors[0].asset_id, errors[0].point_id) == ("a1", "bad")
    assert errors[0].reason.startswith("invalid point value: ")
    assert fragment in errors[0].reason
    assert str(errors[0]) == errors[0].reason


def test_origin_accepts_a_decoded_message() -> None:
    message = msgspec.json.decode(origin(), type=OriginMessage)
    assert normalise_origin(message) == normalise_origin(origin())
    records, _ = normalise_origin(message)
    assert [(r.assetId, r.pointId, r.value) for r in records] == [("a1", "p1", 1)]


def test_origin_error_is_a_value_error() -> None:
    assert issubclass(OriginError, ValueError)
