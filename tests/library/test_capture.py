"""RecordCapturer and RecordRestorer: captures shared across a pipeline, restored on triggers,
kept across restarts, addressed (get and delete) through any capturer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from library_support import BASE_MS, IN, OUT, PipelineRun, rec
from pydantic import ValidationError

from streamcalc.library.capture import RecordRestorerConfig
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.service.errors import ApiError
from streamcalc.service.stage_state import state_name, stateful_stage
from streamcalc.state.lmdb import open_pipeline_state

T = BASE_MS
RESTORE_P = {"inputPoint": "m1::trig", "restorePoint": "m1::p", "outputPoint": "m1::p_restored"}
RESTORE_R = {"inputPoint": "m1::trig", "restorePoint": "m1::r", "outputPoint": "m1::r_restored"}


def capture_pipeline(capturers: dict[str, list[str]], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Source -> each capturer and the restorer, side by side -> one destination."""
    branches = [*capturers, "RecordRestorer_01"]
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}, "outputLanes": ["in"]},
            *(
                {
                    "instanceName": name,
                    "config": {"points": points},
                    "inputLanes": ["in"],
                    "outputLanes": [name],
                }
                for name, points in capturers.items()
            ),
            {
                "instanceName": "RecordRestorer_01",
                "config": {"rules": rules},
                "inputLanes": ["in"],
                "outputLanes": ["RecordRestorer_01"],
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}, "inputLanes": branches},
        ]
    }


def outputs(run: PipelineRun) -> list[tuple[str, str, int, Any]]:
    return [(r.assetId, r.pointId, r.time, r.value) for r in run.outputs]


def test_a_trigger_restores_the_latest_capture_of_its_asset_renamed(tmp_path: Path) -> None:
    definition = capture_pipeline({"RecordCapturer_01": ["m1::p"]}, [RESTORE_P])
    records = [
        rec("a1", "p", T, 1.5),
        rec("a1", "trig", T + 10, 0),  # restores a1/p = 1.5, with the captured time
        rec("a2", "trig", T + 20, 0),  # a2 has no capture: nothing
        rec("a1", "p", T - 1_000, 7),  # the latest capture wins, whatever its time
        rec("a1", "x", T + 30, 9),  # neither captured nor a trigger
        rec("a1", "trig", T + 40, 0),
    ]
    run = PipelineRun(tmp_path, definition, records, batch=2)
    assert outputs(run) == [("a1", "p_restored", T, 1.5), ("a1", "p_restored", T - 1_000, 7)]
    assert run.errors == []
    (item,) = run.state_items("RecordCapturer_01", ["a1", "a2"], ["p", "trig"])
    assert (item["assetId"], item["pointId"], item["time"], item["value"]) == ("a1", "p", T - 1_000, 7)
    assert set(item) == {"modelId", "modelIdPath", "assetId", "pointId", "time", "value", "quality", "attr"}


def test_captures_are_committed_state_that_a_new_worker_restores(tmp_path: Path) -> None:
    definition = capture_pipeline({"RecordCapturer_01": ["m1::p"]}, [RESTORE_P])
    PipelineRun(tmp_path, definition, [rec("a1", "p", T, 4)], batch=10)
    second = PipelineRun(tmp_path, definition, [rec("a1", "trig", T + 1, 0)], batch=10)
    assert outputs(second) == [("a1", "p_restored", T, 4)]


def test_a_capture_earlier_in_the_same_batch_is_restored(tmp_path: Path) -> None:
    """The capturer is listed (and so runs) before the restorer: it has seen the whole batch."""
    definition = capture_pipeline({"RecordCapturer_01": ["m1::p"]}, [RESTORE_P])
    run = PipelineRun(tmp_path, definition, [rec("a1", "trig", T, 0), rec("a1", "p", T + 1, 2)], batch=10)
    assert outputs(run) == [("a1", "p_restored", T + 1, 2)]


def test_every_capturer_of_a_pipeline_shares_one_state(tmp_path: Path) -> None:
    definition = capture_pipeline(
        {"RecordCapturer_01": ["m1::p"], "RecordCapturer_02": ["m1::r"]}, [RESTORE_P, RESTORE_R]
    )
    records = [rec("a1", "p", T, 1), rec("a1", "r", T, 2), rec("a1", "trig", T + 5, 0)]
    run = PipelineRun(tmp_path, definition, records, batch=1)
    assert outputs(run) == [("a1", "p_restored", T, 1), ("a1", "r_restored", T, 2)]
    for capturer in ("RecordCapturer_01", "RecordCapturer_02"):
        items = run.state_items(capturer, ["a1"], ["p", "r"])
        assert [(i["pointId"], i["value"]) for i in items] == [("p", 1), ("r", 2)]


def test_a_deleted_capture_is_no_longer_restored(tmp_path: Path) -> None:
    definition = capture_pipeline({"RecordCapturer_01": ["m1::p"]}, [RESTORE_P])
    PipelineRun(tmp_path, definition, [rec("a1", "p", T, 1), rec("a2", "p", T, 2)], batch=10)
    op = stateful_stage(definition, "RecordCapturer_01")
    store = open_pipeline_state(tmp_path, "p1")
    try:
        assert store.delete_keys(state_name(op, "RecordCapturer_01"), ["a1"], ["p"]) == 1
    finally:
        store.close()
    run = PipelineRun(
        tmp_path, definition, [rec("a1", "trig", T + 1, 0), rec("a2", "trig", T + 1, 0)], batch=10
    )
    assert outputs(run) == [("a2", "p_restored", T, 2)]


def test_the_restorer_keeps_no_state_of_its_own() -> None:
    definition = capture_pipeline({"RecordCapturer_01": ["m1::p"]}, [RESTORE_P])
    with pytest.raises(ApiError) as e:
        stateful_stage(definition, "RecordRestorer_01")
    assert e.value.code == 61107


def test_only_captures_of_the_restore_points_model_are_restored(tmp_path: Path) -> None:
    definition = capture_pipeline({"RecordCapturer_01": ["m1::p", "m2::p"]}, [RESTORE_P])
    records = [rec("a1", "p", T, 1, model="m2"), rec("a1", "trig", T + 1, 0)]
    assert outputs(PipelineRun(tmp_path, definition, records, batch=10)) == []


def test_a_restorer_without_a_capturer_is_refused() -> None:
    definition = capture_pipeline({}, [RESTORE_P])
    with pytest.raises(
        PipelineError, match="RecordRestorer reads state that no stage of this pipeline keeps"
    ):
        build_graph(definition)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({**RESTORE_P, "outputPoint": "m2::p_restored"}, "same modelId"),
        ({"inputPoint": "m1::trig", "restorePoint": "m1::p"}, "outputPoint"),
        ({**RESTORE_P, "restorePoint": "p"}, "modelId"),
    ],
)
def test_bad_restore_rules_name_the_problem(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RecordRestorerConfig.model_validate({"rules": [rule]})
