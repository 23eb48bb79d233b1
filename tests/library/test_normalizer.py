"""Normalizer: cal keeps the listed points' records without attr; origin reads origin messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from library_support import BASE_MS, PipelineRun, pipeline, rec
from pydantic import ValidationError
from stateless_support import run_stateless

from streamcalc.library.normalizer import NORMALIZER, NormalizerConfig
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.records import Record

T = BASE_MS
CAL = {"type": "cal", "points": ["m1::p", "m1::q"]}
ORIGIN = {"type": "origin", "points": ["m1::p", "m1::q"]}

CASES = [
    pytest.param(
        [rec("a1", "p", T, 1, attr={"x": 1}), rec("a1", "x", T, 2), rec("a2", "q", T, 3)],
        [("a1", "p", 1), ("a2", "q", 3)],
        id="listed-points-only",
    ),
    pytest.param(
        [rec("a1", "p", T, 1, model="m2"), rec("a1", "p", T, 2, model="child", path="/m1/child")],
        [("a1", "p", 2)],
        id="model-or-parent-model-matches",
    ),
]


@pytest.mark.parametrize(("batch", "expected"), CASES)
def test_cal_normalizer_table(batch: list[Record], expected: list[tuple[str, str, Any]]) -> None:
    out, rejected = run_stateless(NORMALIZER, CAL, batch)
    assert [(r.assetId, r.pointId, r.value) for r in out] == expected and rejected == []
    assert all(r.attr == {} for r in out)


def test_cal_keeps_everything_but_attr() -> None:
    record = rec("a1", "p", T, "v", quality=9, dq=5, attr={"lastRecordAppender": {"value": 1}})
    (out,), _ = run_stateless(NORMALIZER, CAL, [record])
    assert out == rec("a1", "p", T, "v", quality=9, dq=5)
    assert record.attr == {"lastRecordAppender": {"value": 1}}


@given(st.lists(st.tuples(st.sampled_from(["p", "q", "x"]), st.booleans()), max_size=20))
def test_cal_output_is_the_selected_subsequence_without_attr(events: list[tuple[str, bool]]) -> None:
    batch = [
        rec("a1", p, T + i, i, attr={"k": i} if has_attr else {}) for i, (p, has_attr) in enumerate(events)
    ]
    out, _ = run_stateless(NORMALIZER, CAL, batch)
    assert [r.value for r in out] == [r.value for r in batch if r.pointId != "x"]
    assert all(not r.attr for r in out)


def origin_message(*items: dict[str, Any], model: str = "m1") -> bytes:
    return json.dumps({"orgId": "o1", "modelId": model, "payload": list(items)}).encode()


def test_origin_splits_messages_into_records_of_the_listed_points(tmp_path: Path) -> None:
    messages = [
        origin_message(
            {
                "assetId": "a1",
                "time": T,
                "measurepoints": {"p": 1.5, "q": {"value": 2, "quality": 9}, "x": 0},
            },
            {"assetId": "a2", "time": T + 1, "measurepoints": {"p": "on"}},
        ),
        b"not json",
        origin_message({"assetId": "a3", "time": T + 2, "measurepoints": {"p": [1], "q": 4}}),
    ]
    run = PipelineRun(tmp_path, pipeline("Normalizer_01", ORIGIN), [], batch=2, messages=messages)
    assert [(r.assetId, r.pointId, r.time, r.value, r.quality) for r in run.outputs] == [
        ("a1", "p", T, 1.5, None),
        ("a1", "q", T, 2, 9),
        ("a2", "p", T + 1, "on", None),
        ("a3", "q", T + 2, 4, None),
    ]
    assert all(r.orgId == "o1" and r.modelIdPath == "/m1" for r in run.outputs)
    # the bad message whole, and the bad point alone with the message it came in
    assert [(e.stage, e.offset, e.raw) for e in run.errors] == [
        ("EDHKafkaConsumer_01", 1, b"not json"),
        ("EDHKafkaConsumer_01", 2, messages[2]),
    ]
    assert "asset a3 point p: invalid point value" in run.errors[1].reason


def test_origin_without_points_keeps_every_point(tmp_path: Path) -> None:
    message = origin_message({"assetId": "a1", "time": T, "measurepoints": {"p": 1, "x": 2}})
    run = PipelineRun(
        tmp_path, pipeline("Normalizer_01", {"type": "origin"}), [], batch=5, messages=[message]
    )
    assert [r.pointId for r in run.outputs] == ["p", "x"]


def test_a_source_of_origin_messages_feeds_origin_normalizers_only() -> None:
    fan_out = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": "t_in"}, "outputLanes": ["raw"]},
            {"instanceName": "Normalizer_01", "config": ORIGIN, "inputLanes": ["raw"], "outputLanes": ["n"]},
            {"instanceName": "PointSelector_01", "config": {"points": ["m1::p"]}, "inputLanes": ["raw"]},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": "t_out"}, "inputLanes": ["n"]},
        ]
    }
    fan_out["stages"][2]["outputLanes"] = ["s"]
    fan_out["stages"][3]["inputLanes"] = ["n", "s"]
    with pytest.raises(PipelineError, match=r"PointSelector_01.*read it after the origin Normalizer"):
        build_graph(fan_out)
    chained = pipeline("PointSelector_01", {"points": ["m1::p"]})
    chained["stages"].insert(2, {"instanceName": "Normalizer_01", "config": ORIGIN})
    with pytest.raises(PipelineError, match=r"Normalizer_01.*straight from a source"):
        build_graph(chained)
    assert build_graph(pipeline("Normalizer_01", ORIGIN)).origin_sources == {"EDHKafkaConsumer_01"}


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"type": "cal"},
        {"type": "cal", "points": []},
        {"type": "cal", "points": ["p"]},
        {**CAL, "x": 1},
        {"type": "origin", "points": []},
        {"type": "raw"},
    ],
)
def test_invalid_normalizer_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NormalizerConfig.model_validate(config)


def test_cal_normalizer_in_a_pipeline(tmp_path: Path) -> None:
    records = [rec("a1", "p", T, 1, attr={"a": 1}), rec("a1", "x", T, 2), rec("a2", "q", T + 1, 3, quality=1)]
    run = PipelineRun(tmp_path, pipeline("Normalizer_01", CAL), records, batch=2)
    assert run.outputs == [rec("a1", "p", T, 1), rec("a2", "q", T + 1, 3, quality=1)]
    assert run.errors == []
