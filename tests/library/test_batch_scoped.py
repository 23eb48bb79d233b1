"""RecordSorterByTime, BatchMerger and Trash: operators over one batch as a whole."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from library_support import BASE_MS, IN, OUT, PipelineRun, pipeline, rec
from pydantic import ValidationError
from stateless_support import run_stateless

from streamcalc.library.batch_scoped import (
    BATCH_MERGER,
    RECORD_SORTER_BY_TIME,
    TRASH,
    BatchMergerConfig,
    EmptyConfig,
)
from streamcalc.library.common.attrs import BATCH_MERGER_ATTR
from streamcalc.library.common.point_rules import record_fields
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.records import Record

T = BASE_MS

# --- RecordSorterByTime -----------------------------------------------------------------------


def test_sorter_sorts_by_time_keeping_batch_order_for_ties() -> None:
    batch = [rec("a1", "p", T + t, i) for i, t in enumerate([5, 1, 5, 0, 1, 9])]
    out, rejected = run_stateless(RECORD_SORTER_BY_TIME, {}, batch)
    assert [(r.time - T, r.value) for r in out] == [(0, 3), (1, 1), (1, 4), (5, 0), (5, 2), (9, 5)]
    assert rejected == [] and all(any(r is b for b in batch) for r in out)


@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["a1", "a2"]), st.sampled_from(["p", "q"]))))
def test_sorter_output_is_a_sorted_stable_permutation(events: list[tuple[int, str, str]]) -> None:
    batch = [rec(a, p, T + t, i) for i, (t, a, p) in enumerate(events)]
    out, _ = run_stateless(RECORD_SORTER_BY_TIME, {}, batch)
    assert sorted(r.value for r in out) == list(range(len(batch)))  # type: ignore[type-var]
    assert [r.time for r in out] == sorted(r.time for r in batch)
    for a, b in pairwise(out):
        assert a.time < b.time or a.value < b.value  # type: ignore[operator]


# --- Trash ------------------------------------------------------------------------------------


def test_trash_drops_everything() -> None:
    out, rejected = run_stateless(TRASH, {}, [rec("a1", "p", T, 1), rec("a1", "q", T, "x")])
    assert out == [] and rejected == []


@pytest.mark.parametrize("config", [{"x": 1}, {"description": "d"}])
def test_empty_configs_refuse_keys(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EmptyConfig.model_validate(config)


def test_a_pipeline_ending_in_trash_is_refused() -> None:
    only_trash = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {"instanceName": "Trash_01"},
        ]
    }
    with pytest.raises(PipelineError, match="needs at least one destination"):
        build_graph(only_trash)
    branch = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}, "outputLanes": ["in"]},
            {"instanceName": "Trash_01", "inputLanes": ["in"], "outputLanes": ["dropped"]},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}, "inputLanes": ["in"]},
        ]
    }
    with pytest.raises(PipelineError, match="output of Trash is not read") as e:
        build_graph(branch)
    assert "Trash_01" in str(e.value)


def test_trash_before_a_destination_writes_nothing(tmp_path: Path) -> None:
    records = [rec("a1", "p", T + i, i) for i in range(5)]
    run = PipelineRun(tmp_path, pipeline("Trash_01", {}), records, batch=2)
    assert run.outputs == [] and run.errors == []


def test_sorter_in_a_pipeline_sorts_each_batch_only(tmp_path: Path) -> None:
    times = [3, 1, 2, 9, 8, 7, 5]
    records = [rec("a1", "p", T + t, i) for i, t in enumerate(times)]
    run = PipelineRun(tmp_path, pipeline("RecordSorterByTime_01", {}), records, batch=3)
    assert [r.time - T for r in run.outputs] == [1, 2, 3, 7, 8, 9, 5]
    assert run.errors == []


# --- BatchMerger ------------------------------------------------------------------------------

MERGE = {"inputPoints": ["m1::p", "m1::q"], "outputPoint": "m1::merged", "fields": ["assetId"]}


def merged(out: list[Record]) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """(assetId, key, [(pointId, value) of the members]) of each output."""
    return [
        (
            r.assetId,
            r.attr[BATCH_MERGER_ATTR]["key"],
            [(m["pointId"], m["value"]) for m in r.attr[BATCH_MERGER_ATTR]["groupedRecords"]],
        )
        for r in out
    ]


MERGE_CASES = [
    pytest.param(
        MERGE,
        [rec("a1", "p", T, 1), rec("a2", "p", T, 2), rec("a1", "q", T + 1, 3), rec("a1", "x", T, 4)],
        [("a1", "a1", [("p", 1), ("q", 3)]), ("a2", "a2", [("p", 2)])],
        id="by-asset-groups-in-first-seen-order-other-points-dropped",
    ),
    pytest.param(
        {**MERGE, "fields": ["assetId", "pointId"]},
        [rec("a1", "p", T, 1), rec("a1", "q", T, 2), rec("a1", "p", T + 1, 3)],
        [("a1", "a1::p", [("p", 1), ("p", 3)]), ("a1", "a1::q", [("q", 2)])],
        id="several-fields-joined-key",
    ),
    pytest.param(
        {**MERGE, "fields": ["value"]},
        [rec("a1", "p", T, 1), rec("a2", "p", T, 1.0), rec("a3", "p", T, True), rec("a4", "q", T, 1)],
        [("a1", "1", [("p", 1), ("q", 1)]), ("a2", "1.0", [("p", 1.0)]), ("a3", "true", [("p", True)])],
        id="values-compared-type-strictly",
    ),
    pytest.param(
        {**MERGE, "fields": ["attr.site.id"]},
        [
            rec("a1", "p", T, 1, attr={"site": {"id": "s1"}}),
            rec("a2", "p", T, 2),
            rec("a3", "p", T, 3, attr={"site": {"id": "s1"}}),
            rec("a4", "p", T, 4, attr={"site": "flat"}),
        ],
        [("a1", "s1", [("p", 1), ("p", 3)]), ("a2", "null", [("p", 2), ("p", 4)])],
        id="attr-path-missing-is-null",
    ),
    pytest.param(
        {**MERGE, "fields": ["attr.tags"]},
        [
            rec("a1", "p", T, 1, attr={"tags": {"x": 1, "y": 2}}),
            rec("a2", "p", T, 2, attr={"tags": {"y": 2, "x": 1}}),
        ],
        [("a1", '{"x":1,"y":2}', [("p", 1), ("p", 2)])],
        id="maps-equal-whatever-their-key-order",
    ),
    pytest.param(MERGE, [rec("a1", "x", T, 1)], [], id="no-input-records-no-output"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "batch", "expected"), MERGE_CASES)
def test_batch_merger_table(config: dict[str, Any], batch: list[Record], expected: list[Any]) -> None:
    out, rejected = run_stateless(BATCH_MERGER, config, batch)
    assert merged(out) == expected and rejected == []


def test_merged_record_is_the_first_member_renamed() -> None:
    first = rec("a1", "p", T + 5, 1.5, model="child", path="/m1/child", quality=2, dq=4, attr={"k": 1})
    second = rec("a1", "q", T, 2)
    (out,), _ = run_stateless(BATCH_MERGER, MERGE, [first, second])
    assert (out.orgId, out.modelId, out.modelIdPath, out.assetId, out.pointId) == (
        "o1",
        "m1",
        "/m1/child",
        "a1",
        "merged",
    )
    assert (out.time, out.value, out.quality, out.dq) == (T + 5, 1.5, 2, 4)
    assert out.attr == {
        "k": 1,
        "crossBatch": {
            "groupedRecords": [record_fields(first), record_fields(second)],
            "enableCache": False,
            "key": "a1",
        },
    }
    assert first.attr == {"k": 1}


def test_output_of_another_model_gets_its_own_path() -> None:
    config = {**MERGE, "outputPoint": "site::merged"}
    (out,), _ = run_stateless(BATCH_MERGER, config, [rec("a1", "p", T, 1, path="/root/m1")])
    assert (out.modelId, out.modelIdPath, out.pointId) == ("site", "/site", "merged")
    (out,), _ = run_stateless(BATCH_MERGER, config, [rec("a1", "p", T, 1, path="/site/m1")])
    assert (out.modelId, out.modelIdPath) == ("site", "/site/m1")


@given(
    st.lists(st.tuples(st.sampled_from(["a1", "a2", "a3"]), st.sampled_from(["p", "q", "x"])), max_size=30)
)
def test_merger_partitions_the_selected_records(events: list[tuple[str, str]]) -> None:
    batch = [rec(a, p, T + i, i) for i, (a, p) in enumerate(events)]
    out, _ = run_stateless(BATCH_MERGER, MERGE, batch)
    members = [m["value"] for r in out for m in r.attr[BATCH_MERGER_ATTR]["groupedRecords"]]
    assert sorted(members) == [r.value for r in batch if r.pointId != "x"]
    assert [r.assetId for r in out] == list(dict.fromkeys(r.assetId for r in batch if r.pointId != "x"))
    for r in out:
        assert {m["assetId"] for m in r.attr[BATCH_MERGER_ATTR]["groupedRecords"]} == {r.assetId}


@pytest.mark.parametrize(
    "over",
    [
        {"fields": []},
        {"fields": ["assetId", "assetId"]},
        {"fields": ["asset"]},
        {"fields": ["value.x"]},
        {"fields": ["attr..x"]},
        {"inputPoints": []},
        {"inputPoints": ["p"]},
        {"outputPoint": "merged"},
        {"elExpression": "${record:value('/assetId')}"},
    ],
)
def test_invalid_batch_merger_config_is_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BatchMergerConfig.model_validate({**MERGE, **over})


def test_batch_merger_in_a_pipeline_merges_within_each_batch(tmp_path: Path) -> None:
    records = [rec("a1", "p", T, 1), rec("a2", "q", T, 2), rec("a1", "q", T, 3), rec("a1", "p", T + 1, 4)]
    run = PipelineRun(tmp_path, pipeline("BatchMerger_01", MERGE), records, batch=3)
    assert merged(run.outputs) == [
        ("a1", "a1", [("p", 1), ("q", 3)]),
        ("a2", "a2", [("q", 2)]),
        ("a1", "a1", [("p", 4)]),
    ]
    assert run.errors == []
