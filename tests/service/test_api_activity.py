"""The console's reads over real HTTP (ours): a pipeline's activity, its rejected records and the
org's audit log; another org's pipeline does not exist for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api_support import IN, STAGE, code_of, other_org, record, released, running_service, wait_for

from streamcalc.client import StreamcalcClient

P = "/streaming/v2.0/streaming/pipeline"


def activity(client: StreamcalcClient, pid: str) -> dict[str, Any]:
    data: dict[str, Any] = client.call("GET", f"{P}/{pid}/activity")
    return data


def test_activity_rejected_and_audit_follow_the_work(tmp_path: Path) -> None:
    with running_service(tmp_path) as service, service.client() as client:
        pid = released(client)
        before = activity(client, pid)
        assert before["status"] == "PUBLISHED" and before["workers"]["pids"] == []
        assert [s["name"] for s in before["stages"]] == [
            "EDHKafkaConsumer_01",
            "PointSelector_01",
            STAGE,
            "EDHKafkaProducer_01",
        ]
        assert before["stages"][2]["inputs"] == ["PointSelector_01"] and before["stages"][2]["stateful"]
        assert before["stages"][0]["recordsIn"] == 0 and before["lastError"] is None

        client.start_pipeline(pid)
        client.produce(IN, [record("a1", 1.0), record("a2", 2.0), record("a1", "x", 5)])  # type: ignore[arg-type]

        def counted() -> dict[str, Any] | None:  # keys are counted every lag_sample_interval_s at most
            a = activity(client, pid)
            return a if (a["stages"][2]["recordsIn"], a["stages"][2]["stateKeys"]) == (3, 2) else None

        running = wait_for(counted, what="the committed counts and keys")
        by_stage = {s["name"]: s for s in running["stages"]}
        assert by_stage[STAGE] | {"recordsOut": 2, "rejected": 1, "stateKeys": 2} == by_stage[STAGE]
        assert by_stage["EDHKafkaProducer_01"]["recordsOut"] == 2
        assert running["partitions"] == [{"topic": IN, "partition": 0, "offset": 3, "endOffset": 3, "lag": 0}]
        assert running["workers"]["status"] == "RUNNING" and running["workers"]["pids"][0] > 0
        assert running["checkpoints"]["count"] >= 1

        rejected = client.call("GET", f"{P}/{pid}/rejected", {"limit": "5"})["records"]
        assert [(r["stage"], r["record"]["value"], r["errorOffset"]) for r in rejected] == [(STAGE, "x", 0)]
        assert "number" in rejected[0]["reason"]

        client.pause_pipeline(pid)
        client.delete_stage_state(pid, STAGE, ["a1"], ["p"])
        entries = client.call("GET", "/streaming/v2.0/audit", {"pipelineId": pid})["entries"]
        assert [(e["action"], e["detail"]["keysDeleted"], e["pipelineId"]) for e in entries] == [
            ("deleteStageState", 1, pid)
        ]
        assert activity(client, pid)["stages"][2]["stateKeys"] == 1  # a delete is seen at once


def test_another_orgs_pipeline_does_not_exist(tmp_path: Path) -> None:
    with running_service(tmp_path) as service, service.client() as client:
        pid = released(client)
        account = other_org(service)
        with service.client("o2", account.app_key, account.app_secret) as other:
            for path in (f"{P}/{pid}/activity", f"{P}/{pid}/rejected"):
                assert code_of(lambda path=path: other.call("GET", path))[0] == 61108  # type: ignore[misc]
            assert other.call("GET", "/streaming/v2.0/audit", {"pipelineId": pid}) == {"entries": []}
        with service.client("o1", account.app_key, account.app_secret) as posing:  # o2's account, o1's id
            assert code_of(lambda: posing.call("GET", "/streaming/v2.0/audit"))[0] == 61106
