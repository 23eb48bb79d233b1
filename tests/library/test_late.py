"""LatePointTagger: late iff older than the latest time seen before it for its key."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, OperatorHarness, PipelineRun, open_store, pipeline, rec
from pydantic import ValidationError

from streamcalc.library.late import LATE_POINT_TAGGER, QUALITY_LATE, QUALITY_ON_TIME, LatePointTaggerConfig
from streamcalc.records import Record

T = BASE_MS
L, OK = QUALITY_LATE, QUALITY_ON_TIME
P_RULE = {"inputPoint": "m1::p", "outputPoint": "m1::p_tag"}


def test_quality_codes() -> None:
    assert (QUALITY_ON_TIME, QUALITY_LATE) == (0, 1)


LATE_CASES = [
    pytest.param(
        [P_RULE],
        [
            rec("a1", "p", T + 10, 1),
            rec("a1", "p", T + 5, 2),
            rec("a1", "p", T + 10, 3),
            rec("a1", "p", T + 11, 4),
        ],
        [("p_tag", T + 10, OK), ("p_tag", T + 5, L), ("p_tag", T + 10, OK), ("p_tag", T + 11, OK)],
        [("a1", "p", T + 11)],
        id="older-is-late-equal-is-not",
    ),
    pytest.param(
        [P_RULE],
        [rec("a1", "p", T + 10, 1), rec("a1", "p", T + 3, 2), rec("a1", "p", T + 7, 3)],
        [("p_tag", T + 10, OK), ("p_tag", T + 3, L), ("p_tag", T + 7, L)],
        [("a1", "p", T + 10)],
        id="late-records-do-not-move-the-reference-back",
    ),
    pytest.param(
        [P_RULE, {"inputPoint": "m1::q", "outputPoint": "m1::q_tag"}],
        [rec("a1", "p", T + 10, 1), rec("a2", "p", T, 1), rec("a1", "q", T, 1), rec("a1", "x", T, 1)],
        [("p_tag", T + 10, OK), ("p_tag", T, OK), ("q_tag", T, OK)],
        [("a1", "p", T + 10), ("a1", "q", T), ("a2", "p", T)],
        id="first-record-of-each-key-is-on-time",
    ),
    pytest.param(
        [P_RULE, {"inputPoint": "m1::p", "outputPoint": "m1::p_tag2"}],
        [rec("a1", "p", T + 1, 1, quality=9, dq=5), rec("a1", "p", T, 1, quality=9, dq=5)],
        [("p_tag", T + 1, OK), ("p_tag2", T + 1, OK), ("p_tag", T, L), ("p_tag2", T, L)],
        [("a1", "p", T + 1)],
        id="every-rule-of-a-point-emits-quality-replaced",
    ),
]


@pytest.mark.parametrize(("rules", "batch", "expected", "items"), LATE_CASES)
def test_late_point_tagger_table(
    tmp_path: Path, rules: list[dict[str, Any]], batch: list[Record], expected: list[Any], items: list[Any]
) -> None:
    h = OperatorHarness(open_store(tmp_path), LATE_POINT_TAGGER, {"rules": rules})
    out = h.run(batch)
    assert [(r.pointId, r.time, r.quality) for r in out] == expected
    assert [(i["assetId"], i["pointId"], i["time"]) for i in h.items()] == items
    assert all(set(i) == {"assetId", "pointId", "time"} for i in h.items())
    assert h.rejected == []


def test_output_keeps_everything_but_point_and_quality(tmp_path: Path) -> None:
    h = OperatorHarness(open_store(tmp_path), LATE_POINT_TAGGER, {"rules": [P_RULE]})
    record = rec("a1", "p", T, "v", model="child", path="/m1/child", quality=9, dq=5, attr={"k": [1]})
    (out,) = h.run([record])
    assert out == rec("a1", "p_tag", T, "v", model="m1", path="/m1/child", quality=0, dq=5, attr={"k": [1]})


@pytest.mark.parametrize("restart", [False, True])
def test_reference_carries_across_batches(tmp_path: Path, restart: bool) -> None:
    h = OperatorHarness(open_store(tmp_path), LATE_POINT_TAGGER, {"rules": [P_RULE]})
    h.run([rec("a1", "p", T + 100, 1)])
    if restart:
        h.restart()
    out = h.run([rec("a1", "p", T + 50, 1), rec("a1", "p", T + 200, 1)])
    if restart:
        h.restart()
    out += h.run([rec("a1", "p", T + 150, 1)])
    assert [r.quality for r in out] == [L, OK, L]
    assert h.items() == [{"assetId": "a1", "pointId": "p", "time": T + 200}]


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"inputPoint": "m1::p", "outputPoint": "m2::p_tag"}],
        [{"inputPoint": "m1::p", "outputPoint": "m1::p"}],
        [{**P_RULE, "lateCode": 2}],
        [P_RULE, {"inputPoint": "m1::q", "outputPoint": "m1::p_tag"}],
    ],
)
def test_invalid_late_config_is_refused(rules: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        LatePointTaggerConfig.model_validate({"rules": rules})


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a1", "a2"]), st.integers(0, 30)), max_size=30),
    st.integers(1, 7),
)
def test_late_iff_older_than_the_max_seen_before(events: list[tuple[str, int]], split: int) -> None:
    records = [rec(a, "p", T + t, i) for i, (a, t) in enumerate(events)]
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Path(d))
        try:
            h = OperatorHarness(store, LATE_POINT_TAGGER, {"rules": [P_RULE]})
            got = []
            for i in range(0, len(records), split):
                got += [(r.assetId, r.time, r.quality) for r in h.run(records[i : i + split])]
                h.restart()
            items = h.items()
        finally:
            store.close()
    expected = []
    for i, r in enumerate(records):
        before = [x.time for x in records[:i] if x.assetId == r.assetId]
        expected.append((r.assetId, r.time, L if before and r.time < max(before) else OK))
    assert got == expected
    latest = {a: max(r.time for r in records if r.assetId == a) for a in sorted({r.assetId for r in records})}
    assert items == [{"assetId": a, "pointId": "p", "time": t} for a, t in latest.items()]


def test_late_point_tagger_in_a_pipeline(tmp_path: Path) -> None:
    stage = "LatePointTagger_01"
    times = [10, 20, 15, 20, 30, 5]
    records = [rec("a1", "p", T + t, i) for i, t in enumerate(times)] + [rec("a2", "p", T, 0)]
    run = PipelineRun(tmp_path, pipeline(stage, {"rules": [P_RULE]}), records, batch=2)
    assert [(r.assetId, r.pointId, r.time - T, r.quality) for r in run.outputs] == [
        ("a1", "p_tag", 10, OK),
        ("a1", "p_tag", 20, OK),
        ("a1", "p_tag", 15, L),
        ("a1", "p_tag", 20, OK),
        ("a1", "p_tag", 30, OK),
        ("a1", "p_tag", 5, L),
        ("a2", "p_tag", 0, OK),
    ]
    assert run.errors == []
    assert run.state_items(stage, ["a1", "a2", "a3"], ["p", "p_tag"]) == [
        {"assetId": "a1", "pointId": "p", "time": T + 30},
        {"assetId": "a2", "pointId": "p", "time": T},
    ]
