"""The window aggregators in a real pipeline: embedded log, runner, LMDB, Get Stage State."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from runtime_support import IN, OUT, fill, read_all, run_in_process
from window_testkit import BASE_MS, at, rec

from streamcalc.log.embedded import open_log
from streamcalc.records import decode_record, encode_record
from streamcalc.runtime.errorlane import ErrorEntry, error_topic
from streamcalc.service.stage_state import StateRequest, get_items, stateful_stage
from streamcalc.state.lmdb import open_pipeline_state

FIXED, SLIDING = "FixedTimeWindowAggregator_01", "SlidingTimeWindowAggregator_01"


def definition() -> dict[str, Any]:
    avg = {"inputPoint": "m1::p", "windowSize": 1, "windowUnit": "minute", "aggregator": "avg"}
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}, "outputLanes": ["in"]},
            {
                "instanceName": FIXED,
                "inputLanes": ["in"],
                "outputLanes": ["fixed"],
                "config": {"latencyMinutes": 1, "rules": [{**avg, "outputPoint": "m1::p_avg"}]},
            },
            {
                "instanceName": SLIDING,
                "inputLanes": ["in"],
                "outputLanes": ["sliding"],
                "config": {
                    "rules": [
                        {
                            **avg,
                            "windowSize": 2,
                            "slideSize": 1,
                            "slideUnit": "minute",
                            "aggregator": "sum",
                            "outputPoint": "m1::p_2m",
                        }
                    ]
                },
            },
            {
                "instanceName": "EDHKafkaProducer_01",
                "inputLanes": ["fixed", "sliding"],
                "config": {"topic": OUT},
            },
        ]
    }


INPUT = [
    rec(0, 1),
    rec(30, 3),
    rec(65, 5),  # fires [0, 60) of the fixed rule (avg 2.0) and the sliding [-60, 60) (sum 4)
    rec(50, 8),  # late for [0, 60): within the fixed rule's minute -> re-emitted (avg 4.0);
    # sliding: [-60, 60) is complete (no lateness), [0, 120) is open -> counted there
    rec(125, 7),  # fixed: [60, 120) onTime 5.0, [0, 60) completes; sliding [0, 120) onTime 17
    rec(130, 8, asset="a2"),
    rec(190, 0),  # fixed [120, 180) onTime 7.0; sliding [60, 180) onTime 5 + 7 = 12
    rec(40, 9),  # too late for both operators -> two error lane entries
    rec(200, "bad"),
]


def test_window_aggregators_run_in_a_pipeline_and_serve_their_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log_ = open_log(data)
    fill(log_, IN, [encode_record(r) for r in INPUT])
    log_.close()

    run_in_process(data, "p1", definition(), max_batch_records=3)

    log_ = open_log(data)
    try:
        outputs = [decode_record(m) for m in read_all(log_, OUT)]
        errors = [msgspec.json.decode(m, type=ErrorEntry) for m in read_all(log_, error_topic("p1"))]
    finally:
        log_.close()
    fixed = [
        (r.attr["windowAggregator"]["calMode"], r.time - BASE_MS, r.value)
        for r in outputs
        if r.pointId == "p_avg"
    ]
    sliding = [
        (r.attr["windowAggregator"]["calMode"], r.time - BASE_MS, r.value)
        for r in outputs
        if r.pointId == "p_2m"
    ]
    assert fixed == [("onTime", 0, 2.0), ("late", 0, 4.0), ("onTime", 60_000, 5.0), ("onTime", 120_000, 7.0)]
    assert sliding == [("onTime", -60_000, 4), ("onTime", 0, 17), ("onTime", 60_000, 12)]
    assert sorted((e.stage, e.reason.split(": ")[0]) for e in errors) == [
        (FIXED, "late record for m1::p_avg"),
        (FIXED, "value 'bad' of p is not a finite number"),
        (SLIDING, "late record for m1::p_2m"),
        (SLIDING, "value 'bad' of p is not a finite number"),
    ]

    store = open_pipeline_state(data, "p1")
    try:
        op = stateful_stage(definition(), FIXED)
        items = get_items(store, op, StateRequest("p1", FIXED, ["a1", "a2", "a3"], ["p"]))
    finally:
        store.close()
    assert [(i["assetId"], i["eventTime"]) for i in items] == [("a1", at(190)), ("a2", at(130))]
    a1 = items[0]["windows"]
    assert [(w["startTime"], w["endTime"], w["count"], w["value"], w["lastOutput"]) for w in a1] == [
        (at(120), at(180), 1, 7.0, 7.0),
        (at(180), at(240), 1, 0.0, None),
    ]
    assert {w["outputPoint"] for w in a1} == {"m1::p_avg"}
    assert items[1]["windows"][0]["lastOutput"] is None


@pytest.mark.parametrize("batch_records", [1, 4, 1000])
def test_outputs_do_not_depend_on_batch_size(tmp_path: Path, batch_records: int) -> None:
    messages = [encode_record(r) for r in INPUT]
    results = []
    for name, size in (("ref", 10_000), ("run", batch_records)):
        data = tmp_path / name
        log_ = open_log(data)
        fill(log_, IN, messages)
        log_.close()
        run_in_process(data, "p1", definition(), max_batch_records=size)
        log_ = open_log(data)
        # per output point the order is fixed by the input; across the two stages it follows batches
        results.append(sorted(read_all(log_, OUT), key=lambda m: decode_record(m).pointId))
        log_.close()
    assert results[0] == results[1]
    assert len(results[0]) == 7
