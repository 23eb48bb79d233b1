"""RecordFilter: one output per matching filter, renamed by that filter's outputPoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, PipelineRun, pipeline, rec

from streamcalc.library import KeyedState, get_operator
from streamcalc.library.record_filter import MAX_FILTERS, RECORD_FILTER, RecordFilterConfig
from streamcalc.pipeline import build_graph
from streamcalc.pipeline.errors import PipelineError
from streamcalc.records import Record

T = BASE_MS
STAGE = "RecordFilter_01"


class StatelessContext:
    """A StageContext for a stateless stage: any use of state is a test failure."""

    def __init__(self) -> None:
        self.rejected: list[tuple[Record, str]] = []

    @property
    def stage(self) -> str:
        return STAGE

    @property
    def state(self) -> KeyedState[Any]:
        raise AssertionError("RecordFilter is stateless")

    def reject(self, record: Record, reason: str) -> None:
        self.rejected.append((record, reason))


def run_filter(filters: list[dict[str, Any]], batch: list[Record]) -> list[Record]:
    assert RECORD_FILTER.build is not None
    operator = RECORD_FILTER.build(RecordFilterConfig.model_validate({"filters": filters}))
    ctx = StatelessContext()
    out = operator.process(batch, ctx)
    assert ctx.rejected == []
    return out


def test_registered_as_a_stateless_processor() -> None:
    assert get_operator("RecordFilter") is RECORD_FILTER
    assert (RECORD_FILTER.role, RECORD_FILTER.state_kind, RECORD_FILTER.state_type) == (
        "processor",
        "none",
        None,
    )


BIG = {"expression": "record.value > 10"}
EVEN = {"expression": "record.value % 2 == 0"}

FILTER_CASES = [
    pytest.param(
        [BIG],
        [
            rec("a1", "p", T, 5),
            rec("a1", "p", T + 1, 11),
            rec("a1", "p", T + 2, None),
            rec("a1", "p", T + 3, "x"),
        ],
        [("p", 11)],
        id="one-filter-keeps-matches-only",
    ),
    pytest.param(
        [BIG, EVEN],
        [
            rec("a1", "p", T, 12),
            rec("a1", "p", T + 1, 4),
            rec("a1", "p", T + 2, 13),
            rec("a1", "p", T + 3, 3),
        ],
        [("p", 12), ("p", 12), ("p", 4), ("p", 13)],
        id="k-matches-k-outputs-in-filter-order",
    ),
    pytest.param(
        [BIG, {**BIG, "outputPoint": "m1::big"}, {**EVEN, "outputPoint": "m1::even"}],
        [rec("a1", "p", T, 12), rec("a1", "p", T + 1, 7)],
        [("p", 12), ("big", 12), ("even", 12)],
        id="each-copy-gets-its-filters-output",
    ),
    pytest.param(
        [{"expression": "record.value > 10 && record.attr.a.b == 'x'"}],
        [
            rec("a1", "p", T, 11, attr={"a": {"b": "x"}}),
            rec("a1", "p", T + 1, 11, attr={"a": {"b": "y"}}),
            rec("a1", "p", T + 2, 9, attr={"a": {"b": "x"}}),
            rec("a1", "p", T + 3, 11),
        ],
        [("p", 11)],
        id="enos-example",
    ),
    pytest.param(
        [{"expression": "#record.attr.list[1].b >= 2 || record.pointId == 'q'"}],
        [
            rec("a1", "p", T, 1, attr={"list": [{"b": 9}, {"b": 2}]}),
            rec("a1", "p", T + 1, 2, attr={"list": [{"b": 9}]}),
            rec("a1", "q", T + 2, 3),
        ],
        [("p", 1)],
        id="undefined-left-of-or-makes-the-whole-condition-false",
    ),
    pytest.param(
        [{"expression": "record.pointId == 'q' || #record.attr.list[1].b >= 2"}],
        [
            rec("a1", "p", T, 1, attr={"list": [{"b": 9}, {"b": 2}]}),
            rec("a1", "p", T + 1, 2, attr={"list": [{"b": 9}]}),
            rec("a1", "q", T + 2, 3),
        ],
        [("p", 1), ("q", 3)],
        id="list-paths-and-short-circuit-or",
    ),
    pytest.param(
        [{"expression": "record.value / record.attr.scale > 1"}, {"expression": "!(record.value > 0)"}],
        [
            rec("a1", "p", T, 5, attr={"scale": 0}),
            rec("a1", "p", T + 1, 5, attr={"scale": 2}),
            rec("a1", "p", 0, None),
        ],
        [("p", 5)],
        id="undefined-never-matches-even-negated",
    ),
]


@pytest.mark.parametrize(("filters", "batch", "expected"), FILTER_CASES)
def test_record_filter_table(
    filters: list[dict[str, Any]], batch: list[Record], expected: list[tuple[str, Any]]
) -> None:
    assert [(r.pointId, r.value) for r in run_filter(filters, batch)] == expected


def test_without_output_a_match_passes_unchanged() -> None:
    record = rec("a1", "p", T, 11, quality=2, dq=7, attr={"k": [1]})
    assert run_filter([BIG, BIG], [record]) == [record, record]


def test_output_point_renames_and_keeps_the_rest() -> None:
    record = rec("a1", "p", T, 11, model="child", path="/m1/child", quality=2, dq=7, attr={"k": [1]})
    (out,) = run_filter([{**BIG, "outputPoint": "m1::big"}], [record])
    assert out == rec("a1", "big", T, 11, model="m1", path="/m1/child", quality=2, dq=7, attr={"k": [1]})


def test_output_point_only_matches_records_of_its_model() -> None:
    batch = [
        rec("a1", "p", T, 11, model="m1"),
        rec("a1", "p", T, 12, model="m2"),
        rec("a1", "p", T, 13, model="m3"),
    ]
    out = run_filter([{**BIG, "outputPoint": "m2::big"}, BIG], batch)
    assert [(r.modelId, r.pointId, r.value) for r in out] == [
        ("m1", "p", 11),
        ("m2", "big", 12),
        ("m2", "p", 12),
        ("m3", "p", 13),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.integers(-20, 20), st.none(), st.text(max_size=2)), max_size=20),
    st.lists(st.integers(-20, 20), min_size=1, max_size=5),
)
def test_each_record_is_emitted_once_per_matching_filter(values: list[Any], thresholds: list[int]) -> None:
    batch = [rec("a1", "p", T + i, v) for i, v in enumerate(values)]
    filters = [{"expression": f"record.value >= {t}"} for t in thresholds]
    expected = [r for r in batch for t in thresholds if type(r.value) is int and r.value >= t]
    assert run_filter(filters, batch) == expected


CONFIG_ERRORS = [
    ({"filters": []}, "config.filters", "at least 1 item"),
    ({}, "config.filters", "Field required"),
    (
        {"filters": [{"expression": "record.value >"}]},
        "config.filters.0.expression",
        "Value error, column 15: expected a number, string, true, false, nil, record or '(', "
        "found the end of the expression",
    ),
    (
        {"filters": [BIG, {"expression": "record.vaule > 1"}]},
        "config.filters.1.expression",
        "Value error, column 8: record has no field 'vaule'",
    ),
    (
        {"filters": [{"expression": "record.value + 1"}]},
        "config.filters.0.expression",
        "column 1: the expression must be a condition, but it gives a number",
    ),
    (
        {"filters": [{"expression": "(" * 65 + "true" + ")" * 65}]},
        "config.filters.0.expression",
        "column 65: expression nested deeper than 64 levels",
    ),
    (
        {"filters": [{"expression": "true" + " " * 4096}]},
        "config.filters.0.expression",
        "column 4097: the expression is longer than 4096 characters",
    ),
    (
        {"filters": [{**BIG, "outputMeasurementId": "m_power"}]},
        "config.filters.0.outputMeasurementId",
        "outputMeasurementId is not supported: it needs the EnOS 0.4.0 new data format",
    ),
    ({"filters": [{**BIG, "outputPoint": "big"}]}, "config.filters.0.outputPoint", "{modelId}::{pointId}"),
    (
        {"filters": [{**BIG, "condition": "*"}]},
        "config.filters.0.condition",
        "Extra inputs are not permitted",
    ),
    ({"filters": [BIG] * (MAX_FILTERS + 1)}, "config.filters", f"at most {MAX_FILTERS} items"),
]


@pytest.mark.parametrize(("config", "field", "message"), CONFIG_ERRORS)
def test_invalid_config_names_the_stage_and_field(config: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        build_graph(pipeline(STAGE, config))
    assert (info.value.stage, info.value.field) == (STAGE, field)
    assert message in info.value.reason
    assert str(info.value).startswith(f"stage {STAGE}: {field}: ")


def test_a_valid_config_builds() -> None:
    graph = build_graph(pipeline(STAGE, {"filters": [BIG, {**EVEN, "outputPoint": "m1::even"}]}))
    node = graph.node(STAGE)
    assert node is not None and node.op is RECORD_FILTER
    assert isinstance(node.config, RecordFilterConfig) and len(node.config.filters) == 2


def test_record_filter_in_a_pipeline(tmp_path: Path) -> None:
    config = {
        "filters": [
            {"expression": "record.value > 10"},
            {"expression": "record.value % 2 == 0 && record.attr.site == 'pv'", "outputPoint": "m1::even_pv"},
        ]
    }
    records = [
        rec("a1", "p", T, 12, attr={"site": "pv"}),
        rec("a1", "p", T + 1, 4, attr={"site": "pv"}),
        rec("a2", "p", T + 2, 14),
        rec("a2", "p", T + 3, 3, attr={"site": "pv"}),
        rec("a3", "p", T + 4, "12"),
    ]
    run = PipelineRun(tmp_path, pipeline(STAGE, config), records, batch=2)
    assert [(r.assetId, r.pointId, r.value) for r in run.outputs] == [
        ("a1", "p", 12),
        ("a1", "even_pv", 12),
        ("a1", "even_pv", 4),
        ("a2", "p", 14),
    ]
    assert run.outputs[0] == records[0]
    assert run.errors == []
