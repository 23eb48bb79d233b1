"""RecordCapturer's shared captures over real HTTP: get them through a capturer, delete one
while paused, and the restorer no longer brings it back after resume; the restorer is 61107."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_support import IN, OUT, record, running_service, wait_for

from streamcalc.client import EnosError, StreamcalcClient

CAPTURER, RESTORER = "RecordCapturer_01", "RecordRestorer_01"
PIPELINE: dict[str, Any] = {
    "stages": [
        {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}, "outputLanes": ["in"]},
        {
            "instanceName": CAPTURER,
            "config": {"points": ["m1::ratio"]},
            "inputLanes": ["in"],
            "outputLanes": ["c"],
        },
        {
            "instanceName": RESTORER,
            "config": {
                "rules": [
                    {"inputPoint": "m1::tick", "restorePoint": "m1::ratio", "outputPoint": "m1::ratio_now"}
                ]
            },
            "inputLanes": ["in"],
            "outputLanes": ["r"],
        },
        {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}, "inputLanes": ["c", "r"]},
    ]
}


def restored(client: StreamcalcClient) -> list[tuple[str, float]]:
    got = client.consume(OUT, offset=0, limit=1000)["records"]
    return [(r["record"]["assetId"], r["record"]["value"]) for r in got]


def test_captures_are_read_and_deleted_through_the_capturer(tmp_path: Path) -> None:
    with running_service(tmp_path) as service, service.client() as client:
        pid = client.save_pipeline(None, PIPELINE, name="captures")
        client.release_pipeline(pid)
        client.start_pipeline(pid)
        client.produce(IN, [record("a1", 40, 0, point="ratio"), record("a2", 80, 0, point="ratio")])
        client.produce(IN, [record("a1", 0, 1, point="tick"), record("a2", 0, 1, point="tick")])
        wait_for(lambda: restored(client) == [("a1", 40), ("a2", 80)], what="restored records")

        client.pause_pipeline(pid)
        items = client.get_stage_state(pid, CAPTURER, ["a1", "a2"], ["ratio"])
        assert [(i["assetId"], i["pointId"], i["value"]) for i in items] == [
            ("a1", "ratio", 40),
            ("a2", "ratio", 80),
        ]
        with pytest.raises(EnosError) as stateless:
            client.get_stage_state(pid, RESTORER, ["a1"], ["ratio"])
        assert stateless.value.code == 61107
        assert client.delete_stage_state(pid, CAPTURER, ["a1"], ["ratio"]) is True
        assert [i["assetId"] for i in client.get_stage_state(pid, CAPTURER, ["a1", "a2"], ["ratio"])] == [
            "a2"
        ]

        client.start_pipeline(pid)
        client.produce(IN, [record("a1", 0, 2, point="tick"), record("a2", 0, 2, point="tick")])
        wait_for(lambda: len(restored(client)) == 3, what="the second restore")
        assert restored(client) == [("a1", 40), ("a2", 80), ("a2", 80)]
        client.stop_pipeline(pid)
