"""CumulantDecomposer: delta * scale of each reading against the attached last reading, kept
only while the slope (per hour, on the raw delta) lies in [min, max]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from library_support import BASE_MS, IN, OUT, PipelineRun, rec
from pydantic import ValidationError
from stateless_support import run_stateless

from streamcalc.library.common.attrs import CUMULANT_ATTR
from streamcalc.library.cumulant import CUMULANT_DECOMPOSER, CumulantDecomposerConfig
from streamcalc.records import Record

T = BASE_MS
H = 3_600_000
FIXED = {"scale": {"type": "fixed", "value": 2}, "slope": {"type": "fixed", "min": 0, "max": 10}}


def rule(**over: Any) -> dict[str, Any]:
    return {"inputPoint": "m1::p_lra", "outputPoint": "m1::energy", **FIXED, **over}


def reading(time: int, value: Any, last: tuple[int, Any] | None, **attr: Any) -> Record:
    if last is not None:
        attr["lastRecordAppender"] = {"assetId": "a1", "pointId": "p", "time": last[0], "value": last[1]}
    return rec("a1", "p_lra", time, value, attr=attr)


def decompose(
    rules: list[dict[str, Any]], batch: list[Record]
) -> tuple[list[Record], list[tuple[Record, str]]]:
    return run_stateless(CUMULANT_DECOMPOSER, {"rules": rules}, batch)


CASES = [
    pytest.param(rule(), reading(T + 1_000_000, 11, (T, 10)), (2.0, 3.6), id="enos-example-slope-per-hour"),
    pytest.param(rule(), reading(T + H, 7, None), None, id="no-last-record-no-output"),
    pytest.param(rule(), reading(T + H, 5, (T, 100)), None, id="reset-negative-slope-dropped"),
    pytest.param(rule(), reading(T + H, 100, (T, 0)), None, id="slope-above-max-dropped"),
    pytest.param(rule(), reading(T + H, 10, (T, 0)), (20.0, 10.0), id="slope-equal-max-kept"),
    pytest.param(rule(), reading(T + H, 4, (T, 4)), (0.0, 0.0), id="flat-slope-equal-min-kept"),
    pytest.param(
        rule(slope={"type": "fixed", "min": 1, "max": 10}),
        reading(T + H, 4, (T, 4)),
        None,
        id="flat-below-min",
    ),
    pytest.param(rule(), reading(T, 5, (T, 4)), None, id="same-time-dropped"),
    pytest.param(rule(), reading(T, 5, (T + H, 4)), None, id="older-than-last-dropped"),
    pytest.param(rule(), reading(T + H // 2, 2.5, (T, 0.5)), (4.0, 4.0), id="half-hour"),
]


@pytest.mark.parametrize(("config", "record", "expected"), CASES)
def test_cumulant_table(config: dict[str, Any], record: Record, expected: tuple[float, float] | None) -> None:
    out, rejected = decompose([config], [record])
    assert rejected == []
    if expected is None:
        assert out == []
        return
    (o,) = out
    assert (o.value, o.attr[CUMULANT_ATTR]["slope"]) == pytest.approx(expected)
    assert (o.assetId, o.modelId, o.pointId, o.time) == ("a1", "m1", "energy", record.time)


ATTR_CASES = [
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {"scale": 3}, 3, id="attr-scale"),
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {"scale": 0.5}, 0.5, id="attr-scale-float"),
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {}, 1, id="missing-scale-is-1"),
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {"scale": 0}, 1, id="zero-scale-is-1"),
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {"scale": -2}, 1, id="negative-scale-is-1"),
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {"scale": "2"}, 1, id="string-scale-is-1"),
    pytest.param({"type": "attr", "path": "attr.meter.scale"}, {"scale": True}, 1, id="bool-scale-is-1"),
    pytest.param({"type": "attr", "path": "attr.meter.scale.x"}, {"scale": 3}, 1, id="path-below-a-number"),
]


@pytest.mark.parametrize(("scale", "meter", "expected"), ATTR_CASES)
def test_scale_from_the_record_attr(scale: dict[str, Any], meter: dict[str, Any], expected: float) -> None:
    (o,), _ = decompose([rule(scale=scale)], [reading(T + H, 5, (T, 1), meter=meter)])
    assert o.value == 4 * expected and o.attr[CUMULANT_ATTR]["scale"] == expected


SLOPE_ATTR = {"type": "attr", "path": "attr.meter.maxSlope"}


@pytest.mark.parametrize(
    ("meter", "delta", "kept", "max_slope"),
    [
        ({"maxSlope": 5}, 5, True, 5),
        ({"maxSlope": 5}, 6, False, 5),
        ({"maxSlope": 5}, -1, False, 5),
        ({}, 10**9, True, None),
        ({"maxSlope": "5"}, 10**9, True, None),
        ({"maxSlope": -1}, 10**9, True, None),
        ({}, -1, False, None),
        ({"maxSlope": 0}, 0, True, 0),
    ],
)
def test_slope_max_from_the_record_attr(
    meter: dict[str, Any], delta: int, kept: bool, max_slope: Any
) -> None:
    out, _ = decompose([rule(slope=SLOPE_ATTR)], [reading(T + H, 100 + delta, (T, 100), meter=meter)])
    assert len(out) == kept
    if kept:
        detail = out[0].attr[CUMULANT_ATTR]
        assert (detail["minSlope"], detail["maxSlope"]) == (0, max_slope)


def test_output_keeps_the_record_and_adds_the_detail() -> None:
    record = reading(T + H, 12.5, (T, 10), site="s1")
    record = Record(**{**{f: getattr(record, f) for f in record.__struct_fields__}, "quality": 3, "dq": 7})
    rules = [rule(), rule(outputPoint="m1::energy2", scale={"type": "fixed", "value": 0.5})]
    out, _ = decompose(rules, [record, rec("a1", "other", T, 1)])
    assert [(o.pointId, o.value) for o in out] == [("energy", 5.0), ("energy2", 1.25)]
    o = out[0]
    assert (o.quality, o.dq, o.modelIdPath, o.orgId) == (3, 7, "/m1", "o1")
    assert o.attr["site"] == "s1" and o.attr["lastRecordAppender"] == record.attr["lastRecordAppender"]
    assert o.attr[CUMULANT_ATTR] == {
        "scale": 2.0,
        "slope": 2.5,
        "minSlope": 0.0,
        "maxSlope": 10.0,
        "delta": 2.5,
    }
    assert CUMULANT_ATTR not in record.attr


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (reading(T + H, "12", (T, 10)), "is not a number"),
        (reading(T + H, None, (T, 10)), "is not a number"),
        (reading(T + H, True, (T, 10)), "is not a number"),
        (reading(T + H, 12, (T, "10")), "last record's value"),
        (rec("a1", "p_lra", T, 1, attr={"lastRecordAppender": {"value": 1}}), "last record's time"),
    ],
)
def test_bad_values_go_to_the_error_lane(record: Record, reason: str) -> None:
    out, rejected = decompose([rule(), rule(outputPoint="m1::energy2")], [record])
    assert out == [] and len(rejected) == 1
    assert rejected[0][0] is record and reason in rejected[0][1]


@pytest.mark.parametrize(
    "over",
    [
        {"scale": {"type": "fixed", "value": 0}},
        {"scale": {"type": "fixed", "value": -1}},
        {"scale": {"type": "attribute", "name": "m1::ct"}},
        {"scale": {"type": "attr", "path": "meter.scale"}},
        {"scale": {"type": "attr", "path": "value"}},
        {"scale": {"type": "attr", "path": "attr."}},
        {"slope": {"type": "fixed", "min": -1, "max": 10}},
        {"slope": {"type": "fixed", "min": 5, "max": 5}},
        {"slope": {"type": "fixed", "min": 0}},
        {"slope": {"type": "attr", "path": "attr.x", "min": 0}},
        {"outputPoint": "m2::energy"},
        {"outputPoint": "m1::p_lra"},
        {"scale": None},
    ],
)
def test_invalid_cumulant_config_is_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CumulantDecomposerConfig.model_validate({"rules": [rule(**over)]})


@given(st.lists(st.tuples(st.integers(1, 10**7), st.integers(0, 10**6)), min_size=1, max_size=20))
def test_a_rising_meter_sums_to_its_total_rise(steps: list[tuple[int, int]]) -> None:
    """With the slope unlimited, the deltas of consecutive readings telescope."""
    times, values = [T], [1000]
    for dt, rise in steps:
        times.append(times[-1] + dt)
        values.append(values[-1] + rise)
    batch = [reading(times[0], values[0], None)]
    batch += [
        reading(t, v, (times[i], values[i]))
        for i, (t, v) in enumerate(zip(times[1:], values[1:], strict=True))
    ]
    config = rule(scale={"type": "fixed", "value": 3}, slope=SLOPE_ATTR)
    out, rejected = decompose([config], batch)
    assert rejected == [] and len(out) == len(steps)
    assert sum(o.value for o in out) == 3 * (values[-1] - values[0])  # type: ignore[misc]


def test_cumulant_decomposer_after_last_record_appender(tmp_path: Path) -> None:
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {
                "instanceName": "LastRecordAppender_01",
                "config": {"rules": [{"inputPoint": "m1::meter", "outputPoint": "m1::meter_lra"}]},
            },
            {
                "instanceName": "CumulantDecomposer_01",
                "config": {
                    "rules": [
                        {
                            "inputPoint": "m1::meter_lra",
                            "outputPoint": "m1::energy",
                            "scale": {"type": "fixed", "value": 10},
                            "slope": {"type": "fixed", "min": 0, "max": 50},
                        }
                    ]
                },
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }
    readings = [100, 102, 101, 105, 105, 200, 201, "bad"]
    records = [rec("a1", "meter", T + i * H, v) for i, v in enumerate(readings)] + [rec("a2", "meter", T, 7)]
    run = PipelineRun(tmp_path, definition, records, batch=3)
    assert [(r.assetId, r.pointId, (r.time - T) // H, r.value) for r in run.outputs] == [
        ("a1", "energy", 1, 20.0),
        ("a1", "energy", 3, 40.0),
        ("a1", "energy", 4, 0.0),
        ("a1", "energy", 6, 10.0),
    ]
    assert [(e.stage, e.record.value if e.record else None) for e in run.errors] == [
        ("CumulantDecomposer_01", "bad")
    ]
