"""Normalizer (cal): keep the listed points' records and strip their attr; origin is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from library_support import BASE_MS, PipelineRun, pipeline, rec
from pydantic import ValidationError
from stateless_support import run_stateless

from streamcalc.library.normalizer import NORMALIZER, ORIGIN_REFUSED, NormalizerConfig
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.records import Record

T = BASE_MS
CAL = {"type": "cal", "points": ["m1::p", "m1::q"]}

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


def test_origin_is_refused_with_where_to_send_origin_messages() -> None:
    with pytest.raises(ValidationError, match="normalise them at ingest"):
        NormalizerConfig.model_validate({"type": "origin"})
    definition = pipeline("Normalizer_01", {"type": "origin"})
    with pytest.raises(PipelineError) as e:
        build_graph(definition)
    assert "Normalizer_01" in str(e.value) and "log append --origin" in str(e.value)
    assert "topics/{topic}/records" in ORIGIN_REFUSED


@pytest.mark.parametrize(
    "config",
    [{}, {"type": "cal"}, {"type": "cal", "points": []}, {"type": "cal", "points": ["p"]}, {**CAL, "x": 1}],
)
def test_invalid_normalizer_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NormalizerConfig.model_validate(config)


def test_cal_normalizer_in_a_pipeline(tmp_path: Path) -> None:
    records = [rec("a1", "p", T, 1, attr={"a": 1}), rec("a1", "x", T, 2), rec("a2", "q", T + 1, 3, quality=1)]
    run = PipelineRun(tmp_path, pipeline("Normalizer_01", CAL), records, batch=2)
    assert run.outputs == [rec("a1", "p", T, 1), rec("a2", "q", T + 1, 3, quality=1)]
    assert run.errors == []
