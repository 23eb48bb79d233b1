"""LatestRecordMerger: grouping, triggers, event-time expiry, rejects, state and a real run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, OperatorHarness, PipelineRun, open_store, pipeline, rec
from pydantic import ValidationError

from streamcalc.library.merger import LATEST_RECORD_MERGER, MERGED_POINT, LatestRecordMergerConfig
from streamcalc.records import Record

T = BASE_MS
MIN = 60_000
RULES = [
    {"inputPoint": "m1::p", "outputPoint": "m1::p_out"},
    {"inputPoint": "m1::q"},
    {"inputPoint": "m1::trig", "isTrigger": True, "outputPoint": "m1::merged"},
]


def merged_of(r: Record) -> tuple[str, list[tuple[str, str, Any]]]:
    m = r.attr["latestRecordMerger"]
    return m["mergedTag"], [(x["assetId"], x["pointId"], x["value"]) for x in m["mergedRecords"]]


MERGER_CASES = [
    pytest.param(
        {"rules": RULES, "cacheExpireMinutes": 10},
        [rec("a1", "p", T, 1), rec("a1", "q", T, 2), rec("a1", "p", T + 1, 3), rec("a1", "trig", T + 2, 0)],
        [("a1", "merged", T + 2, ("a1", [("a1", "p", 3), ("a1", "q", 2), ("a1", "trig", 0)]))],
        [("a1", MERGED_POINT, 3)],
        id="trigger-merges-latest-per-point",
    ),
    pytest.param(
        {"rules": RULES, "cacheExpireMinutes": 10},
        [rec("a1", "p", T, 1), rec("a2", "q", T, 2), rec("a2", "trig", T, 9), rec("a1", "trig", T, 8)],
        [
            ("a2", "merged", T, ("a2", [("a2", "q", 2), ("a2", "trig", 9)])),
            ("a1", "merged", T, ("a1", [("a1", "p", 1), ("a1", "trig", 8)])),
        ],
        [("a1", MERGED_POINT, 2), ("a2", MERGED_POINT, 2)],
        id="groups-by-asset-by-default",
    ),
    pytest.param(
        {"rules": RULES, "cacheExpireMinutes": 10},
        [rec("a1", "p", T, 1), rec("a1", "q", T + 5 * MIN, 2), rec("a1", "trig", T + 10 * MIN, 0)],
        [("a1", "merged", T + 10 * MIN, ("a1", [("a1", "p", 1), ("a1", "q", 2), ("a1", "trig", 0)]))],
        [("a1", MERGED_POINT, 3)],
        id="exactly-at-expiry-is-kept",
    ),
    pytest.param(
        {"rules": RULES, "cacheExpireMinutes": 10},
        [rec("a1", "p", T, 1), rec("a1", "q", T + 5 * MIN, 2), rec("a1", "trig", T + 10 * MIN + 1, 0)],
        [("a1", "merged", T + 10 * MIN + 1, ("a1", [("a1", "q", 2), ("a1", "trig", 0)]))],
        [("a1", MERGED_POINT, 2)],
        id="older-than-expiry-is-dropped",
    ),
    pytest.param(
        {"rules": RULES, "cacheExpireMinutes": 10, "mergedBy": "attr.parent"},
        [
            rec("c2", "p", T, 2, attr={"parent": "site"}),
            rec("c1", "p", T, 1, attr={"parent": "site"}),
            rec("c3", "p", T, 3, attr={"parent": "other"}),
            rec("c1", "trig", T, 0, attr={"parent": "site"}),
        ],
        [("c1", "merged", T, ("site", [("c1", "p", 1), ("c1", "trig", 0), ("c2", "p", 2)]))],
        [("other", MERGED_POINT, 1), ("site", MERGED_POINT, 3)],
        id="group-by-attr-path-keeps-each-asset",
    ),
    pytest.param(
        {"rules": RULES, "cacheExpireMinutes": 1},
        [rec("a1", "x", T, 1), rec("a1", "p", T, 1, model="m2"), rec("a1", "q", T, 5)],
        [],
        [("a1", MERGED_POINT, 1)],
        id="no-trigger-no-output-other-points-ignored",
    ),
]


@pytest.mark.parametrize(("config", "batch", "expected", "items"), MERGER_CASES)
def test_latest_record_merger_table(
    tmp_path: Path, config: dict[str, Any], batch: list[Record], expected: list[Any], items: list[Any]
) -> None:
    h = OperatorHarness(open_store(tmp_path), LATEST_RECORD_MERGER, config)
    out = h.run(batch)
    assert [(r.assetId, r.pointId, r.time, merged_of(r)) for r in out] == expected
    got_items = h.items()
    assert [
        (i["assetId"], i["pointId"], len(i["attr"]["latestRecordMerger"]["mergedRecords"])) for i in got_items
    ] == items
    assert h.rejected == []


def test_merger_output_and_state_item_shape(tmp_path: Path) -> None:
    h = OperatorHarness(open_store(tmp_path), LATEST_RECORD_MERGER, {"rules": RULES, "cacheExpireMinutes": 5})
    h.run([rec("a1", "p", T, 1.5, quality=0, dq=7)])
    (out,) = h.run([rec("a1", "trig", T + 1, "go", attr={"k": 1})])
    p_fields = {
        "modelId": "m1",
        "modelIdPath": "/m1",
        "assetId": "a1",
        "pointId": "p",
        "time": T,
        "value": 1.5,
        "quality": 0,
        "dq": 7,
        "attr": {},
    }
    trig_fields = {
        **p_fields,
        "pointId": "trig",
        "time": T + 1,
        "value": "go",
        "quality": None,
        "attr": {"k": 1},
    }
    del trig_fields["dq"]
    assert (out.modelId, out.pointId, out.value, out.time) == ("m1", "merged", "go", T + 1)
    assert out.attr == {
        "k": 1,
        "latestRecordMerger": {"mergedTag": "a1", "mergedRecords": [p_fields, trig_fields]},
    }
    assert h.items() == [
        {
            **{k: v for k, v in trig_fields.items() if k != "attr"},
            "assetId": "a1",
            "pointId": MERGED_POINT,
            "attr": {"latestRecordMerger": {"mergedTag": "a1", "mergedRecords": [p_fields, trig_fields]}},
        }
    ]


def test_merger_state_survives_restart_and_expires_on_event_time(tmp_path: Path) -> None:
    h = OperatorHarness(open_store(tmp_path), LATEST_RECORD_MERGER, {"rules": RULES, "cacheExpireMinutes": 2})
    h.run([rec("a1", "p", T, 1), rec("a1", "q", T + MIN, 2)])
    h.restart()
    (first,) = h.run([rec("a1", "trig", T + 2 * MIN, 0)])
    h.restart()
    (second,) = h.run([rec("a1", "trig", T + 3 * MIN + 1, 1)])
    assert merged_of(first)[1] == [("a1", "p", 1), ("a1", "q", 2), ("a1", "trig", 0)]
    assert merged_of(second)[1] == [("a1", "trig", 1)]
    assert len(h.items()[0]["attr"]["latestRecordMerger"]["mergedRecords"]) == 1


@pytest.mark.parametrize(
    ("attr", "reason"),
    [({}, "None"), ({"parent": 1.5}, "1.5"), ({"parent": ""}, "''"), ({"parent": "x" * 129}, "xxx")],
)
def test_records_without_a_usable_tag_are_rejected(tmp_path: Path, attr: dict[str, Any], reason: str) -> None:
    config = {"rules": RULES, "cacheExpireMinutes": 5, "mergedBy": "attr.parent"}
    h = OperatorHarness(open_store(tmp_path), LATEST_RECORD_MERGER, config)
    bad = rec("a1", "trig", T, 0, attr=attr)
    out = h.run([bad, rec("a1", "trig", T, 1, attr={"parent": 42})])
    assert [merged_of(r) for r in out] == [("42", [("a1", "trig", 1)])]
    assert len(h.rejected) == 1 and h.rejected[0][0] is bad and reason in h.rejected[0][1]


@pytest.mark.parametrize(
    "config",
    [
        {"rules": [{"inputPoint": "m1::p"}], "cacheExpireMinutes": 5},
        {"rules": [{"inputPoint": "m1::p", "isTrigger": True}], "cacheExpireMinutes": 5},
        {"rules": RULES},
        {"rules": RULES, "cacheExpireMinutes": 0},
        {"rules": RULES, "cacheExpireMinutes": 5, "mergedBy": "${record:value('/assetId')}"},
        {"rules": RULES, "cacheExpireMinutes": 5, "mergedBy": "value"},
        {"rules": [*RULES, {"inputPoint": "m1::p"}], "cacheExpireMinutes": 5},
        {
            "rules": [{"inputPoint": "m1::p", "isTrigger": True, "outputPoint": "m2::x"}],
            "cacheExpireMinutes": 5,
        },
        {"rules": RULES, "cacheExpireMinutes": 5, "mergedByExpression": "x"},
    ],
)
def test_invalid_merger_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LatestRecordMergerConfig.model_validate(config)


events = st.lists(
    st.tuples(st.sampled_from(["a1", "a2"]), st.sampled_from(["p", "q", "trig"]), st.integers(0, 20)),
    max_size=25,
)


@settings(max_examples=30, deadline=None)
@given(events, st.integers(1, 5))
def test_merged_records_are_the_unexpired_latest_arrivals(
    evs: list[tuple[str, str, int]], split: int
) -> None:
    """Model: per asset, the last arrival per point; a trigger at t merges those with time >= t - expiry."""
    records = [rec(a, p, T + m * MIN, i) for i, (a, p, m) in enumerate(evs)]
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Path(d))
        try:
            h = OperatorHarness(store, LATEST_RECORD_MERGER, {"rules": RULES, "cacheExpireMinutes": 3})
            got = []
            for i in range(0, len(records), split):
                got += [(r.assetId, r.value, merged_of(r)[1]) for r in h.run(records[i : i + split])]
                h.restart()
        finally:
            store.close()
    cache: dict[str, dict[str, Record]] = {}
    expected = []
    for r in records:
        group = cache.setdefault(r.assetId, {})
        group[r.pointId] = r
        if r.pointId == "trig":
            for p in [p for p, c in group.items() if c.time < r.time - 3 * MIN]:
                del group[p]
            expected.append((r.assetId, r.value, [(r.assetId, p, group[p].value) for p in sorted(group)]))
    assert got == expected


def test_latest_record_merger_in_a_pipeline(tmp_path: Path) -> None:
    stage = "LatestRecordMerger_01"
    config = {"rules": RULES, "cacheExpireMinutes": 10, "mergedBy": "modelId"}
    records = [
        rec("a1", "p", T, 1),
        rec("a2", "q", T, 2),
        rec("a1", "p", T + 1, 3),
        rec("a2", "trig", T + 2, "t1"),
        rec("a2", "p", T + 20 * MIN, 4),
        rec("a1", "trig", T + 20 * MIN, "t2"),
    ]
    run = PipelineRun(tmp_path, pipeline(stage, config), records, batch=3)
    assert [(r.assetId, r.pointId, r.value, merged_of(r)) for r in run.outputs] == [
        ("a2", "merged", "t1", ("m1", [("a1", "p", 3), ("a2", "q", 2), ("a2", "trig", "t1")])),
        ("a1", "merged", "t2", ("m1", [("a1", "trig", "t2"), ("a2", "p", 4)])),
    ]
    (item,) = run.state_items(stage, ["m1", "a1"], [MERGED_POINT, "p"])
    assert (item["assetId"], item["pointId"], item["time"]) == ("m1", MERGED_POINT, T + 20 * MIN)
    assert item["attr"]["latestRecordMerger"]["mergedTag"] == "m1"
    assert [(r["assetId"], r["pointId"]) for r in item["attr"]["latestRecordMerger"]["mergedRecords"]] == [
        ("a1", "trig"),
        ("a2", "p"),
    ]
