"""LastRecordAppender and LastChangedRecordAppender: documented behaviour, state across
batches and restarts, safe conditions, and a real pipeline run with the Get Stage State view."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, OperatorHarness, PipelineRun, open_store, pipeline, rec
from pydantic import ValidationError

from streamcalc.library.appenders import (
    LAST_CHANGED_RECORD_APPENDER,
    LAST_RECORD_APPENDER,
    LastRecordAppenderConfig,
)
from streamcalc.library.expressions.conditions import compile_condition
from streamcalc.records import Record

T = BASE_MS
P_LAST = {"inputPoint": "m1::p", "outputPoint": "m1::p_last"}


def last_of(r: Record) -> Any:
    """The value of the record attached by LastRecordAppender, or '-' when none is attached."""
    attached = r.attr.get("lastRecordAppender")
    return "-" if attached is None else attached["value"]


def item_summary(items: list[dict[str, Any]]) -> list[tuple[str, str, int, Any]]:
    return [(i["assetId"], i["pointId"], i["time"], i["value"]) for i in items]


# --- LastRecordAppender -----------------------------------------------------------------------

LAST_RECORD_CASES = [
    pytest.param(
        [{**P_LAST, "condition": "*"}],
        [rec("a1", "p", T, 1), rec("a1", "p", T + 1, 2), rec("a1", "p", T + 2, 3)],
        [("p_last", 1, "-"), ("p_last", 2, 1), ("p_last", 3, 2)],
        [("a1", "p", T + 2, 3)],
        id="star-every-record-becomes-last",
    ),
    pytest.param(
        [{**P_LAST, "condition": {"field": "value", "op": ">", "value": 0}}],
        [rec("a1", "p", T, 5), rec("a1", "p", T + 1, -1), rec("a1", "p", T + 2, 7), rec("a1", "p", T + 3, 0)],
        [("p_last", 5, "-"), ("p_last", -1, 5), ("p_last", 7, 5), ("p_last", 0, 7)],
        [("a1", "p", T + 2, 7)],
        id="condition-keeps-only-qualifying",
    ),
    pytest.param(
        [{**P_LAST, "condition": {"op": "==", "value": "on"}}],
        [rec("a1", "p", T, "off"), rec("a1", "p", T + 1, "on")],
        [("p_last", "off", "-"), ("p_last", "on", "-")],
        [("a1", "p", T + 1, "on")],
        id="no-qualifying-record-yet-attaches-nothing",
    ),
    pytest.param(
        [
            {**P_LAST, "condition": [{"op": ">=", "value": 0}, {"field": "quality", "op": "==", "value": 0}]},
        ],
        [rec("a1", "p", T, 1, quality=0), rec("a1", "p", T + 1, 2, quality=9), rec("a1", "p", T + 2, 3)],
        [("p_last", 1, "-"), ("p_last", 2, 1), ("p_last", 3, 1)],
        [("a1", "p", T, 1)],
        id="all-comparisons-of-a-list-must-hold",
    ),
    pytest.param(
        [P_LAST],
        [rec("a1", "p", T, 1), rec("a2", "p", T, 10), rec("a1", "q", T, 5), rec("a1", "p", T + 1, 2)],
        [("p_last", 1, "-"), ("p_last", 10, "-"), ("p_last", 2, 1)],
        [("a1", "p", T + 1, 2), ("a2", "p", T, 10)],
        id="keys-apart-and-other-points-dropped",
    ),
    pytest.param(
        [P_LAST],
        [rec("a1", "p", T, 1, model="m2"), rec("a1", "p", T, 2, model="child", path="/m1/child")],
        [("p_last", 2, "-")],
        [("a1", "p", T, 2)],
        id="model-matched-by-id-or-path",
    ),
    pytest.param(
        [
            {**P_LAST, "condition": {"op": ">", "value": 0}},
            {"inputPoint": "m1::p", "outputPoint": "m1::p_neg", "condition": {"op": "<", "value": 0}},
        ],
        [rec("a1", "p", T, 1), rec("a1", "p", T + 1, -1), rec("a1", "p", T + 2, 2)],
        [
            ("p_last", 1, "-"),
            ("p_neg", 1, "-"),
            ("p_last", -1, 1),
            ("p_neg", -1, "-"),
            ("p_last", 2, 1),
            ("p_neg", 2, -1),
        ],
        [("a1", "p", T + 2, 2)],
        id="rules-on-one-point-keep-their-own-last",
    ),
]


@pytest.mark.parametrize(("rules", "batch", "expected", "items"), LAST_RECORD_CASES)
def test_last_record_appender_table(
    tmp_path: Path, rules: list[dict[str, Any]], batch: list[Record], expected: list[Any], items: list[Any]
) -> None:
    h = OperatorHarness(open_store(tmp_path), LAST_RECORD_APPENDER, {"rules": rules})
    out = h.run(batch)
    assert [(r.pointId, r.value, last_of(r)) for r in out] == expected
    assert item_summary(h.items()) == items
    assert h.rejected == []


def test_last_record_appender_output_shape(tmp_path: Path) -> None:
    h = OperatorHarness(open_store(tmp_path), LAST_RECORD_APPENDER, {"rules": [P_LAST]})
    first = rec("a1", "p", T, 1.5, quality=9, dq=3, attr={"up": 1})
    h.run([first])
    (out,) = h.run([rec("a1", "p", T + 60_000, 2.5, attr={"other": True})])
    assert (out.modelId, out.modelIdPath, out.assetId, out.pointId, out.time) == (
        "m1",
        "/m1",
        "a1",
        "p_last",
        T + 60_000,
    )
    assert out.attr == {
        "other": True,
        "lastRecordAppender": {
            "modelId": "m1",
            "modelIdPath": "/m1",
            "assetId": "a1",
            "pointId": "p",
            "time": T,
            "value": 1.5,
            "quality": 9,
            "dq": 3,
            "attr": {"up": 1},
        },
    }
    assert "lastRecordAppender" not in first.attr


@pytest.mark.parametrize("restart", [False, True])
def test_last_record_appender_state_carries_across_batches(tmp_path: Path, restart: bool) -> None:
    h = OperatorHarness(open_store(tmp_path), LAST_RECORD_APPENDER, {"rules": [P_LAST]})
    h.run([rec("a1", "p", T, 1), rec("a2", "p", T, 10)])
    if restart:
        h.restart()
    out = h.run([rec("a2", "p", T + 1, 11), rec("a1", "p", T + 1, 2)])
    assert [(r.assetId, last_of(r)) for r in out] == [("a2", 10), ("a1", 1)]
    assert item_summary(h.items()) == [("a1", "p", T + 1, 2), ("a2", "p", T + 1, 11)]


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ({"op": ">", "value": 0}, {"value": 1}, True),
        ({"op": ">", "value": 0}, {"value": 0}, False),
        ({"op": ">", "value": 0}, {"value": "5"}, False),
        ({"op": ">", "value": 0}, {"value": True}, False),
        ({"op": ">", "value": 0}, {"value": None}, False),
        ({"op": "<=", "value": 2.5}, {"value": 2.5}, True),
        ({"op": "<", "value": "b"}, {"value": "a"}, True),
        ({"op": "<", "value": "b"}, {"value": 1}, False),
        ({"op": "==", "value": 1}, {"value": 1.0}, True),
        ({"op": "==", "value": 1}, {"value": True}, False),
        ({"op": "==", "value": True}, {"value": True}, True),
        ({"op": "!=", "value": 1}, {"value": True}, True),
        ({"field": "quality", "op": "==", "value": None}, {"value": 1}, True),
        ({"field": "quality", "op": ">=", "value": 1}, {"value": 1}, False),
        ({"field": "dq", "op": "!=", "value": 0}, {"value": 1, "dq": 4}, True),
        ({"field": "time", "op": ">=", "value": T}, {"value": 1}, True),
        ({"field": "time", "op": ">", "value": T}, {"value": 1}, False),
        ([{"op": ">", "value": 0}, {"op": "<", "value": 10}], {"value": 5}, True),
        ([{"op": ">", "value": 0}, {"op": "<", "value": 10}], {"value": 10}, False),
    ],
)
def test_conditions(condition: Any, fields: dict[str, Any], expected: bool) -> None:
    config = LastRecordAppenderConfig.model_validate({"rules": [{**P_LAST, "condition": condition}]})
    test = compile_condition(config.rules[0].condition)
    assert test is not None
    assert test(rec("a1", "p", T, **fields)) is expected


def test_star_condition_compiles_to_always() -> None:
    config = LastRecordAppenderConfig.model_validate({"rules": [P_LAST]})
    assert config.rules[0].condition == "*"
    assert compile_condition(config.rules[0].condition) is None


@pytest.mark.parametrize(
    "rule",
    [
        {**P_LAST, "condition": "${record:value('/value') > 0}"},
        {**P_LAST, "condition": "value > 0"},
        {**P_LAST, "condition": {"op": "in", "value": 1}},
        {**P_LAST, "condition": {"op": ">", "value": True}},
        {**P_LAST, "condition": {"op": ">", "value": None}},
        {**P_LAST, "condition": {"field": "orgId", "op": "==", "value": "o1"}},
        {**P_LAST, "condition": []},
        {"inputPoint": "m1::p", "outputPoint": "m2::p_last"},
        {"inputPoint": "m1::p", "outputPoint": "m1::p"},
        {"inputPoint": "p", "outputPoint": "m1::p_last"},
        {**P_LAST, "cacheType": "Redis"},
    ],
)
def test_invalid_last_record_config_is_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LastRecordAppenderConfig.model_validate({"rules": [rule]})


def test_duplicate_output_points_are_refused() -> None:
    with pytest.raises(ValidationError, match="own outputPoint"):
        LastRecordAppenderConfig.model_validate({"rules": [P_LAST, {**P_LAST, "inputPoint": "m1::q"}]})


batches_of_values = st.lists(
    st.lists(st.one_of(st.integers(-5, 5), st.none(), st.text(max_size=1)), max_size=6),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None)
@given(batches_of_values)
def test_last_record_attached_is_the_previous_qualifying_one(batches: list[list[Any]]) -> None:
    """Whatever the batch split, the attached record is the last earlier one with value > 0."""
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Path(d))
        try:
            rule = {**P_LAST, "condition": {"op": ">", "value": 0}}
            h = OperatorHarness(store, LAST_RECORD_APPENDER, {"rules": [rule]})
            got: list[Any] = []
            for i, values in enumerate(batches):
                got += [last_of(r) for r in h.run([rec("a1", "p", T + i, v) for v in values])]
                h.restart()
        finally:
            store.close()
    expected: list[Any] = []
    last: Any = "-"
    for v in (v for values in batches for v in values):
        expected.append(last)
        if type(v) is int and v > 0:
            last = v
    assert got == expected


def test_last_record_appender_in_a_pipeline(tmp_path: Path) -> None:
    stage = "LastRecordAppender_01"
    config = {"rules": [{**P_LAST, "condition": {"op": ">", "value": 0}}]}
    records = [rec("a1", "p", T + i, v) for i, v in enumerate([3, -1, 4, 0, 5])] + [rec("a2", "p", T, 8)]
    run = PipelineRun(tmp_path, pipeline(stage, config), records, batch=2)
    assert [(r.assetId, r.pointId, r.value, last_of(r)) for r in run.outputs] == [
        ("a1", "p_last", 3, "-"),
        ("a1", "p_last", -1, 3),
        ("a1", "p_last", 4, 3),
        ("a1", "p_last", 0, 4),
        ("a1", "p_last", 5, 4),
        ("a2", "p_last", 8, "-"),
    ]
    assert run.errors == []
    items = run.state_items(stage, ["a1", "a2", "a3"], ["p", "p_last"])
    assert items == [
        {
            "modelId": "m1",
            "modelIdPath": "/m1",
            "assetId": "a1",
            "pointId": "p",
            "time": T + 4,
            "value": 5,
            "quality": None,
            "attr": {},
        },
        {
            "modelId": "m1",
            "modelIdPath": "/m1",
            "assetId": "a2",
            "pointId": "p",
            "time": T,
            "value": 8,
            "quality": None,
            "attr": {},
        },
    ]


# --- LastChangedRecordAppender ----------------------------------------------------------------


def changed_of(r: Record) -> tuple[int, Any, Any]:
    a = r.attr["lastChangedRecordAppender"]
    assert a["lastChangedRecord"]["time"] == a["lastChangedTs"]
    assert a["lastChangedRecord"]["value"] == a["lastChangedValue"]
    return a["lastChangedTs"], a["lastChangedValue"], a["lastChangedRecord"]["pointId"]


LAST_CHANGED_CASES = [
    pytest.param(
        [{"inputPoint": "m1::p", "outputPoint": "m1::p_chg"}],
        [rec("a1", "p", T, 1), rec("a1", "p", T + 1, 1), rec("a1", "p", T + 2, 2), rec("a1", "p", T + 3, 2)],
        [
            ("p_chg", 1, (T, 1, "p")),
            ("p_chg", 1, (T, 1, "p")),
            ("p_chg", 2, (T, 1, "p")),
            ("p_chg", 2, (T + 2, 2, "p")),
        ],
        [("a1", "p", T + 2, 2)],
        id="cache-refreshes-only-on-change",
    ),
    pytest.param(
        [{"inputPoint": "m1::p", "outputPoint": "m1::p_chg"}],
        [
            rec("a1", "p", T, 1),
            rec("a1", "p", T + 1, 1.0),
            rec("a1", "p", T + 2, True),
            rec("a1", "p", T + 3, None),
        ],
        [
            ("p_chg", 1, (T, 1, "p")),
            ("p_chg", 1.0, (T, 1, "p")),
            ("p_chg", True, (T + 1, 1.0, "p")),
            ("p_chg", None, (T + 2, True, "p")),
        ],
        [("a1", "p", T + 3, None)],
        id="change-is-type-strict",
    ),
    pytest.param(
        [
            {"inputPoint": "m1::p", "outputPoint": "m1::p_chg"},
            {"inputPoint": "m1::p", "outputPoint": "m1::p_chg2"},
            {"inputPoint": "m1::q", "outputPoint": "m1::q_chg"},
        ],
        [rec("a1", "p", T, "x"), rec("a1", "q", T, 0), rec("a2", "p", T, "y"), rec("a1", "r", T, 0)],
        [
            ("p_chg", "x", (T, "x", "p")),
            ("p_chg2", "x", (T, "x", "p")),
            ("q_chg", 0, (T, 0, "q")),
            ("p_chg", "y", (T, "y", "p")),
            ("p_chg2", "y", (T, "y", "p")),
        ],
        [("a1", "p", T, "x"), ("a1", "q", T, 0), ("a2", "p", T, "y")],
        id="one-cache-per-key-shared-by-rules",
    ),
]


@pytest.mark.parametrize(("rules", "batch", "expected", "items"), LAST_CHANGED_CASES)
def test_last_changed_record_appender_table(
    tmp_path: Path, rules: list[dict[str, Any]], batch: list[Record], expected: list[Any], items: list[Any]
) -> None:
    h = OperatorHarness(open_store(tmp_path), LAST_CHANGED_RECORD_APPENDER, {"rules": rules})
    out = h.run(batch)
    assert [(r.pointId, r.value, changed_of(r)) for r in out] == expected
    assert [type(changed_of(r)[1]) for r in out] == [type(e[2][1]) for e in expected]
    assert item_summary(h.items()) == items


def test_last_changed_state_carries_across_restarts(tmp_path: Path) -> None:
    config = {"rules": [{"inputPoint": "m1::p", "outputPoint": "m1::p_chg"}]}
    h = OperatorHarness(open_store(tmp_path), LAST_CHANGED_RECORD_APPENDER, config)
    h.run([rec("a1", "p", T, 1)])
    h.restart()
    out = h.run([rec("a1", "p", T + 1, 1), rec("a1", "p", T + 2, 3)])
    h.restart()
    out += h.run([rec("a1", "p", T + 3, 3)])
    assert [changed_of(r)[:2] for r in out] == [(T, 1), (T, 1), (T + 2, 3)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0, 1, 2, 1.0, "1"]), max_size=6), min_size=1, max_size=5))
def test_last_changed_attaches_the_last_change_before_the_record(batches: list[list[Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Path(d))
        try:
            config = {"rules": [{"inputPoint": "m1::p", "outputPoint": "m1::p_chg"}]}
            h = OperatorHarness(store, LAST_CHANGED_RECORD_APPENDER, config)
            got: list[tuple[int, Any]] = []
            t = T
            for values in batches:
                batch = []
                for v in values:
                    batch.append(rec("a1", "p", t, v))
                    t += 1
                got += [changed_of(r)[:2] for r in h.run(batch)]
                h.restart()
        finally:
            store.close()
    expected: list[tuple[int, Any]] = []
    cached: tuple[int, Any] | None = None
    for i, v in enumerate(v for values in batches for v in values):
        if cached is None:
            cached = (T + i, v)
        expected.append(cached)
        if type(v) is not type(cached[1]) or v != cached[1]:
            cached = (T + i, v)
    assert [(t, v, type(v)) for t, v in got] == [(t, v, type(v)) for t, v in expected]


def test_last_changed_record_appender_in_a_pipeline(tmp_path: Path) -> None:
    stage = "LastChangedRecordAppender_01"
    config = {"rules": [{"inputPoint": "m1::p", "outputPoint": "m1::p_chg"}]}
    records = [rec("a1", "p", T + i, v, quality=i) for i, v in enumerate([1, 1, 2, 2, 2, 3])]
    run = PipelineRun(tmp_path, pipeline(stage, config), records, batch=4)
    assert [(r.value, changed_of(r)[:2]) for r in run.outputs] == [
        (1, (T, 1)),
        (1, (T, 1)),
        (2, (T, 1)),
        (2, (T + 2, 2)),
        (2, (T + 2, 2)),
        (3, (T + 2, 2)),
    ]
    assert run.state_items(stage, ["a1"], ["p"]) == [
        {
            "modelId": "m1",
            "modelIdPath": "/m1",
            "assetId": "a1",
            "pointId": "p",
            "time": T + 5,
            "value": 3,
            "quality": 5,
            "attr": {},
        }
    ]
