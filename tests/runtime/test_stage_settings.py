"""The settings every stage may declare: requiredFields, preconditions, onRecordError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from runtime_support import BASE_MS, IN, OUT, fill, read_all, run_in_process

from streamcalc.log.embedded import open_log
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.records import Record, decode_record, encode_record
from streamcalc.runtime.errorlane import decode_error, error_topic
from streamcalc.runtime.executor import StageFailed
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.runner import Runner
from streamcalc.state.lmdb import open_pipeline_state


def rec(value: Any, quality: int | None = None, attr: dict[str, Any] | None = None) -> bytes:
    return encode_record(
        Record(
            orgId="o1",
            modelId="m1",
            modelIdPath="/m1",
            assetId="a1",
            pointId="p",
            time=BASE_MS,
            value=value,
            quality=quality,
            attr=attr or {},
        )
    )


def selector_pipeline(**settings: Any) -> dict[str, Any]:
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {"instanceName": "PointSelector_01", "config": {"points": ["m1::p"]}, **settings},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }


def run(
    tmp_path: Path, messages: list[bytes], definition: dict[str, Any]
) -> tuple[list[Record], list[Any], int]:
    log_ = open_log(tmp_path)
    fill(log_, IN, messages)
    log_.close()
    runner = run_in_process(tmp_path, "p1", definition)
    log_ = open_log(tmp_path)
    try:
        outputs = [decode_record(m) for m in read_all(log_, OUT)]
        errors = [decode_error(m) for m in read_all(log_, error_topic("p1"))]
    finally:
        log_.close()
    return outputs, errors, runner.stats.discarded


@pytest.mark.parametrize(
    ("settings", "messages", "passed", "reasons"),
    [
        (
            {"requiredFields": ["quality"]},
            [rec(1, quality=0), rec(2)],
            [1],
            ["required field quality is missing"],
        ),
        (
            {"requiredFields": ["attr.site.id"]},
            [rec(1, attr={"site": {"id": "s1"}}), rec(2, attr={"site": 3})],
            [1],
            ["required field attr.site.id is missing"],
        ),
        ({"requiredFields": ["value"]}, [rec(None), rec(3)], [3], ["required field value is missing"]),
        (
            {"preconditions": {"field": "value", "op": ">", "value": 0}},
            [rec(-1), rec(0), rec(5)],
            [5],
            ["preconditions not met"] * 2,
        ),
        (
            {"preconditions": [{"op": ">=", "value": 1}, {"field": "quality", "op": "==", "value": None}]},
            [rec(1), rec(1, quality=2), rec(0)],
            [1],
            ["preconditions not met"] * 2,
        ),
    ],
)
def test_refused_records_go_to_the_error_lane_with_the_reason(
    tmp_path: Path, settings: dict[str, Any], messages: list[bytes], passed: list[Any], reasons: list[str]
) -> None:
    outputs, errors, discarded = run(tmp_path, messages, selector_pipeline(**settings))
    assert [r.value for r in outputs] == passed
    assert [(e.stage, e.reason) for e in errors] == [("PointSelector_01", r) for r in reasons]
    assert discarded == 0


def test_discard_drops_and_counts(tmp_path: Path) -> None:
    settings = {"requiredFields": ["quality"], "onRecordError": "DISCARD"}
    outputs, errors, discarded = run(
        tmp_path, [rec(1), rec(2, quality=1), rec(3)], selector_pipeline(**settings)
    )
    assert [r.value for r in outputs] == [2] and errors == [] and discarded == 2


def test_discard_also_applies_to_what_the_operator_itself_refuses(tmp_path: Path) -> None:
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {
                "instanceName": "SimplifiedTimeWindowAggregator_01",
                "onRecordError": "DISCARD",
                "config": {
                    "rules": [
                        {"inputPoint": "m1::p", "windowSize": 1, "windowUnit": "day", "outputPoint": "m1::s"}
                    ]
                },
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }
    outputs, errors, discarded = run(tmp_path, [rec("text"), rec(2)], definition)
    assert [r.value for r in outputs] == [2] and errors == [] and discarded == 1


def test_stop_pipeline_fails_the_batch_and_commits_nothing(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, [rec(1, quality=0), rec(2)])
    store = open_pipeline_state(tmp_path, "p1")
    graph = build_graph(selector_pipeline(requiredFields=["quality"], onRecordError="STOP_PIPELINE"))
    runner = Runner("p1", graph, log_, store, options=RunnerOptions(max_wait_s=0))
    runner.recover()
    with pytest.raises(StageFailed, match="STOP_PIPELINE"):
        runner.run_once()
    assert log_.end_offset(OUT, 0) == 0 and store.checkpoint().offsets == {}
    store.close()
    log_.close()


def test_destinations_screen_what_they_write(tmp_path: Path) -> None:
    definition = selector_pipeline()
    definition["stages"][2]["preconditions"] = {"field": "quality", "op": "!=", "value": 9}
    outputs, errors, _ = run(tmp_path, [rec(1, quality=9), rec(2, quality=1)], definition)
    assert [r.value for r in outputs] == [2] and [e.stage for e in errors] == ["EDHKafkaProducer_01"]


@pytest.mark.parametrize(
    ("stage", "settings", "field"),
    [
        (1, {"requiredFields": ["nope"]}, "requiredFields"),
        (1, {"requiredFields": ["value.x"]}, "requiredFields"),
        (1, {"requiredFields": ["attr..x"]}, "requiredFields"),
        (1, {"onRecordError": "IGNORE"}, "onRecordError"),
        (1, {"preconditions": {"op": ">", "value": None}}, "preconditions"),
        (1, {"preconditions": "${record:value('/value') > 0}"}, "preconditions"),
        (0, {"requiredFields": ["quality"]}, "requiredFields"),
    ],
)
def test_bad_settings_name_the_stage_and_field(stage: int, settings: dict[str, Any], field: str) -> None:
    definition = selector_pipeline()
    definition["stages"][stage].update(settings)
    with pytest.raises(PipelineError) as info:
        build_graph(definition)
    assert info.value.stage == definition["stages"][stage]["instanceName"]
    assert info.value.field is not None and info.value.field.startswith(field)


def test_error_entries_keep_the_refused_record(tmp_path: Path) -> None:
    _, errors, _ = run(tmp_path, [rec(7)], selector_pipeline(requiredFields=["quality"]))
    assert errors[0].record is not None and msgspec.structs.asdict(errors[0].record)["value"] == 7
