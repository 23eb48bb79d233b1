"""OffLimitTagger: attr.isOutlier is True iff the value lies outside the rule's interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from library_support import BASE_MS, PipelineRun, pipeline, rec
from pydantic import ValidationError
from stateless_support import run_stateless

from streamcalc.library.common.intervals import Interval, parse_interval
from streamcalc.library.off_limit import OFF_LIMIT_TAGGER, OffLimitTaggerConfig
from streamcalc.records import Record

T = BASE_MS


def tag(interval: str, values: list[Any]) -> list[bool]:
    rule = {"inputPoint": "m1::p", "interval": interval, "outputPoint": "m1::p_olt"}
    out, rejected = run_stateless(OFF_LIMIT_TAGGER, {"rules": [rule]}, [rec("a1", "p", T, v) for v in values])
    assert rejected == []
    return [r.attr["isOutlier"] for r in out]


OUTLIER_CASES = [
    ("[2,10)", [1.999, 2, 5, 9.99, 10, 11], [True, False, False, False, True, True]),
    ("(2,10]", [2, 2.0001, 10, 10.0001], [True, False, False, True]),
    ("(2,10)", [2, 5, 10], [True, False, True]),
    ("[2,10]", [1, 2, 10, 11], [True, False, False, True]),
    ("(-inf,5)", [-1e300, 4.99, 5, 6], [False, False, True, True]),
    ("(-inf,5]", [-(10**30), 5, 5.0001], [False, False, True]),
    ("(0,+inf)", [-1, 0, 1e-9, 1e300], [True, True, False, False]),
    ("[0,+inf)", [-0.1, 0, 0.0, 7], [True, False, False, False]),
    ("(-inf,+inf)", [-1e308, 0, 1e308], [False, False, False]),
    ("[3,3]", [2.9, 3, 3.0, 3.1], [True, False, False, True]),
    ("[-0.99, 1e3)", [-1, -0.99, 999.5, 1000], [True, False, False, True]),
    (" ( -∞ , 3 ] ", [3, 4], [False, True]),
    ("[1,Infinity)", [0, 1, 10**20], [True, False, False]),
    ("(-INF,inf)", [1], [False]),
    ("(-infinity,+∞)", [1], [False]),
]


@pytest.mark.parametrize(("interval", "values", "expected"), OUTLIER_CASES)
def test_is_outlier_table(interval: str, values: list[Any], expected: list[bool]) -> None:
    assert tag(interval, values) == expected


PARAM_CASES = [
    ("[2,10)", (2, 10, True, True, True, False)),
    ("(-0.99,+inf)", (-0.99, None, True, False, False, False)),
    ("(-inf,5]", (None, 5, False, True, False, True)),
    ("(-inf,+inf)", (None, None, False, False, False, False)),
    ("[1.5,2.5]", (1.5, 2.5, True, True, True, True)),
]


@pytest.mark.parametrize(("interval", "params"), PARAM_CASES)
def test_outlier_attr_carries_the_rule(interval: str, params: tuple[Any, ...]) -> None:
    rule = {"inputPoint": "m1::p", "interval": interval, "outputPoint": "m1::p_olt"}
    (out,), _ = run_stateless(OFF_LIMIT_TAGGER, {"rules": [rule]}, [rec("a1", "p", T, 0)])
    keys = ("minValue", "maxValue", "enableMinJudger", "enableMaxJudger", "minIncluding", "maxIncluding")
    assert out.attr["outlierAttr"] == dict(zip(keys, params, strict=True))
    assert [type(out.attr["outlierAttr"][k]) for k in keys[:2]] == [type(p) for p in params[:2]]


def test_output_is_the_record_renamed_with_the_tags_added() -> None:
    rules = [
        {"inputPoint": "m1::p", "interval": "[0,1]", "outputPoint": "m1::p_a"},
        {"inputPoint": "m1::p", "interval": "[5,9]", "outputPoint": "m1::p_b"},
    ]
    record = rec("a1", "p", T, 3, model="child", path="/m1/child", quality=9, dq=5, attr={"k": [1]})
    out, rejected = run_stateless(OFF_LIMIT_TAGGER, {"rules": rules}, [record, rec("a1", "x", T, 3)])
    assert rejected == []
    assert [(r.modelId, r.modelIdPath, r.pointId, r.attr["isOutlier"]) for r in out] == [
        ("m1", "/m1/child", "p_a", True),
        ("m1", "/m1/child", "p_b", True),
    ]
    a, b = out
    assert (a.assetId, a.time, a.value, a.quality, a.dq, a.orgId) == ("a1", T, 3, 9, 5, "o1")
    assert a.attr["k"] == [1] and set(a.attr) == {"k", "isOutlier", "outlierAttr"}
    assert a.attr["outlierAttr"]["maxValue"] == 1 and b.attr["outlierAttr"]["minValue"] == 5
    assert record.attr == {"k": [1]}


@pytest.mark.parametrize("value", ["5", None, True, False])
def test_a_value_that_is_not_a_number_goes_to_the_error_lane(value: Any) -> None:
    rules = [
        {"inputPoint": "m1::p", "interval": "[0,10]", "outputPoint": "m1::p_a"},
        {"inputPoint": "m1::p", "interval": "[0,1]", "outputPoint": "m1::p_b"},
    ]
    bad = rec("a1", "p", T, value)
    out, rejected = run_stateless(OFF_LIMIT_TAGGER, {"rules": rules}, [bad, rec("a1", "p", T + 1, 5)])
    assert [(r.pointId, r.time) for r in out] == [("p_a", T + 1), ("p_b", T + 1)]
    assert len(rejected) == 1 and rejected[0][0] is bad and "is not a number" in rejected[0][1]


@pytest.mark.parametrize(
    "interval",
    ["2,10", "[2,10", "2,10)", "[2;10)", "[1,2,3]", "[a,2]", "[-inf,5)", "(1,+inf]", "(+inf,5)", "(1,-inf)",
     "(5,2)", "(3,3)", "[3,3)", "(nan,1)", "(1e999,2e999)", "()", "(,1)", "[0x1,2]"],
)  # fmt: skip
def test_invalid_interval_is_refused(interval: str) -> None:
    with pytest.raises(ValidationError):
        OffLimitTaggerConfig.model_validate(
            {"rules": [{"inputPoint": "m1::p", "interval": interval, "outputPoint": "m1::p_olt"}]}
        )


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"inputPoint": "m1::p", "interval": "[0,1]", "outputPoint": "m2::p_olt"}],
        [{"inputPoint": "m1::p", "interval": "[0,1]", "outputPoint": "m1::p"}],
        [{"inputPoint": "m1::p", "outputPoint": "m1::p_olt"}],
        [{"inputPoint": "m1::p", "interval": "[0,1]", "outputPoint": "m1::o", "minMax": "0,1"}],
        [
            {"inputPoint": "m1::p", "interval": "[0,1]", "outputPoint": "m1::o"},
            {"inputPoint": "m1::q", "interval": "[0,1]", "outputPoint": "m1::o"},
        ],
    ],
)
def test_invalid_off_limit_config_is_refused(rules: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        OffLimitTaggerConfig.model_validate({"rules": rules})


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-(10**6), 10**6)


@given(
    st.one_of(st.none(), finite),
    st.one_of(st.none(), finite),
    st.booleans(),
    st.booleans(),
    st.lists(finite, max_size=8),
)
def test_agrees_with_a_plain_interval_check(
    lo: float | None, hi: float | None, lo_closed: bool, hi_closed: bool, extra: list[float]
) -> None:
    lo_closed, hi_closed = lo_closed and lo is not None, hi_closed and hi is not None
    if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lo_closed and hi_closed))):
        return
    text = (
        ("[" if lo_closed else "(")
        + ("-inf" if lo is None else repr(lo))
        + ","
        + ("+inf" if hi is None else repr(hi))
        + ("]" if hi_closed else ")")
    )
    values = [v for v in (lo, hi) if v is not None] + extra
    expected = [
        not (
            (lo is None or v > lo or (lo_closed and v == lo))
            and (hi is None or v < hi or (hi_closed and v == hi))
        )
        for v in values
    ]
    assert tag(text, values) == expected
    assert parse_interval(text) == Interval(lo, hi, lo_closed, hi_closed)


def test_off_limit_tagger_in_a_pipeline(tmp_path: Path) -> None:
    config = {
        "rules": [
            {"inputPoint": "m1::p", "interval": "(2,10]", "outputPoint": "m1::p_olt"},
            {"inputPoint": "m1::q", "interval": "(-inf,0)", "outputPoint": "m1::q_olt"},
        ]
    }
    records: list[Record] = [
        rec("a1", "p", T, 2),
        rec("a1", "p", T + 1, 10),
        rec("a1", "q", T + 2, -1),
        rec("a1", "p", T + 3, "broken"),
        rec("a1", "x", T + 4, 100),
        rec("a2", "q", T + 5, 0.0),
    ]
    run = PipelineRun(tmp_path, pipeline("OffLimitTagger_01", config), records, batch=2)
    assert [(r.assetId, r.pointId, r.value, r.attr["isOutlier"]) for r in run.outputs] == [
        ("a1", "p_olt", 2, True),
        ("a1", "p_olt", 10, False),
        ("a1", "q_olt", -1, False),
        ("a2", "q_olt", 0.0, True),
    ]
    assert [(e.stage, e.record.time if e.record else None) for e in run.errors] == [
        ("OffLimitTagger_01", T + 3)
    ]
