"""The whole story over real HTTP: save -> release -> start -> ingest -> consume -> get state
-> pause -> delete -> get state -> start (resume) -> ingest -> consume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import IN, ORG, OUT, STAGE, Service, pipeline_json, record, running_service, wait_for

from streamcalc.catalog.sqlite import open_catalog
from streamcalc.client import EnosError, StreamcalcClient


@pytest.fixture(params=["lmdb", "redis", "kafka", "redis+postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """The service on the embedded log and LMDB state under its data dir; on a redis-server's
    database for state; on the session's Kafka broker for the log; or on Redis state with its
    catalog on a PostgreSQL database too (what a cluster's replicas share)."""
    backends = {}
    if request.param == "kafka":
        backends["log"] = str(request.getfixturevalue("kafka_url"))
    if request.param.startswith("redis"):
        backends["state"] = str(request.getfixturevalue("redis_url"))
    if request.param.endswith("postgresql"):
        backends["catalog"] = str(request.getfixturevalue("postgres_url"))
    with running_service(tmp_path, backends=backends) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> Iterator[StreamcalcClient]:
    with service.client() as c:
        yield c


def sums(client: StreamcalcClient, offset: int = 0) -> list[tuple[str, float]]:
    got = client.consume(OUT, offset=offset, limit=1000)["records"]
    return [(r["record"]["assetId"], r["record"]["value"]) for r in got]


@pytest.mark.slow
def test_save_release_start_ingest_pause_delete_resume(service: Service, client: StreamcalcClient) -> None:
    pid = client.save_pipeline(None, pipeline_json(), name="daily sums")
    assert client.get_pipeline(pid)["status"] == "DRAFT"
    client.release_pipeline(pid)
    assert client.get_pipeline(pid, if_released=True)["status"] == "PUBLISHED"
    client.start_pipeline(pid, kafka_rate=1_000_000)

    ingested = client.produce(
        IN, [record(a, v, i) for i, (a, v) in enumerate([("a1", 1), ("a2", 10), ("a1", 2), ("a3", 100)])]
    )
    assert ingested == {"count": 4, "rejected": []}
    wait_for(lambda: len(sums(client)) == 4, what="outputs")
    assert sums(client) == [("a1", 1), ("a2", 10), ("a1", 3), ("a3", 100)]

    def state() -> list[tuple[str, float]]:
        items = client.get_stage_state(pid, STAGE, ["a1", "a2", "a3", "nobody"], ["p"])
        return [(i["assetId"], i["windows"][0]["sum"]) for i in items]

    # while running, get answers the last committed state (commits follow outputs within commit_interval_s)
    wait_for(lambda: state() == [("a1", 3), ("a2", 10), ("a3", 100)], what="the state committed")

    with pytest.raises(EnosError) as running:
        client.delete_stage_state(pid, STAGE, ["a1"], ["p"])
    assert running.value.code == 61199 and "PAUSED" in running.value.msg

    client.pause_pipeline(pid)
    assert client.get_pipeline(pid)["status"] == "PAUSED"
    assert client.delete_stage_state(pid, STAGE, ["a1", "a3"], ["p"]) is True
    assert [i["assetId"] for i in client.get_stage_state(pid, STAGE, ["a1", "a2", "a3"], ["p"])] == ["a2"]

    client.start_pipeline(pid)  # resumes
    assert client.get_pipeline(pid)["status"] == "RUNNING"
    client.produce(IN, [record("a1", 5, 10), record("a2", 5, 10), record("a3", 5, 10)])
    wait_for(lambda: len(sums(client)) == 7, what="outputs after resume")
    assert sums(client, offset=4) == [("a1", 5), ("a2", 15), ("a3", 5)]

    with service.catalog() as catalog:
        audit = catalog.audit_log(ORG, pid)
    assert [(a.action, a.detail["keysDeleted"], a.detail["keysRequested"]) for a in audit] == [
        ("deleteStageState", 2, 2)
    ]


def test_offset_and_lag_is_sampled_while_running(client: StreamcalcClient) -> None:
    pid = client.save_pipeline(None, pipeline_json())
    client.release_pipeline(pid)
    client.start_pipeline(pid)
    client.produce(IN, [record("a1", 1, i) for i in range(20)])

    def caught_up() -> bool:
        series = client.offset_lag(pid)["lagAndOffset"]
        return bool(series) and series[-1]["offset"] == 20 and series[-1]["lag"] == 0

    wait_for(caught_up, what="a sample showing the input consumed")
    data = client.offset_lag(pid)
    assert data["pipelineId"] == pid and data["topicName"] == IN
    assert all(set(s) == {"lag", "offset", "ts"} for s in data["lagAndOffset"])


def test_stop_clears_state_and_a_restart_reads_from_the_start(client: StreamcalcClient) -> None:
    pid = client.save_pipeline(None, pipeline_json())
    client.release_pipeline(pid)
    client.start_pipeline(pid)
    client.produce(IN, [record("a1", 1), record("a1", 1, 1)])
    wait_for(lambda: len(sums(client)) == 2, what="outputs")

    client.stop_pipeline(pid)

    assert client.get_pipeline(pid)["status"] == "STOPPED"
    assert client.get_stage_state(pid, STAGE, ["a1"], ["p"]) == []
    client.start_pipeline(pid)
    wait_for(lambda: len(sums(client)) == 4, what="the input read again")
    assert sums(client)[2:] == [("a1", 1), ("a1", 2)]


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else "sqlite"


@pytest.mark.slow
def test_reset_offset_to_latest_skips_the_backlog_and_earliest_reads_it_again(
    client: StreamcalcClient,
) -> None:
    pid = client.save_pipeline(None, pipeline_json())
    client.release_pipeline(pid)
    client.start_pipeline(pid)
    client.produce(IN, [record("a1", 1)])
    wait_for(lambda: len(sums(client)) == 1, what="outputs")
    client.pause_pipeline(pid)
    client.produce(IN, [record("a1", 10, 1), record("a1", 10, 2)])
    client.reset_offset(pid, to="latest")
    client.start_pipeline(pid)
    client.produce(IN, [record("a1", 100, 3)])
    wait_for(lambda: len(sums(client)) == 2, what="the record after the reset")
    assert sums(client)[1] == ("a1", 101)  # the two paused-over records were skipped
    client.pause_pipeline(pid)
    client.reset_offset(pid, to="earliest")
    client.start_pipeline(pid)
    wait_for(lambda: len(sums(client)) == 6, what="the input read again")
    assert sums(client)[2:] == [("a1", 102), ("a1", 112), ("a1", 122), ("a1", 222)]


def test_pipelines_survive_a_service_restart(tmp_path: Path, catalog_url: str) -> None:
    backends = {"catalog": catalog_url}
    with running_service(tmp_path, backends=backends) as first, first.client() as client:
        pid = client.save_pipeline(None, pipeline_json(), name="kept")
        client.release_pipeline(pid)
        client.start_pipeline(pid)
        client.produce(IN, [record("a1", 1)])
        wait_for(lambda: len(sums(client)) == 1, what="first output")
    with running_service(tmp_path, backends=backends) as second, second.client() as client:
        assert client.get_pipeline(pid)["status"] == "RUNNING"
        client.produce(IN, [record("a1", 2, 1)])
        wait_for(lambda: len(sums(client)) == 2, what="output after the restart")
        assert sums(client) == [("a1", 1), ("a1", 3)]


def test_a_pipeline_that_cannot_resume_is_run_error_and_the_service_still_starts(tmp_path: Path) -> None:
    catalog = open_catalog(tmp_path)
    broken = catalog.create_pipeline(ORG, "broken", {"stages": [{"instanceName": "Gone_01"}]}, {})
    catalog.release_pipeline(ORG, broken.pipeline_id)
    catalog.set_status(ORG, broken.pipeline_id, "RUNNING")
    catalog.close()
    with running_service(tmp_path) as service, service.client() as client:
        assert client.get_pipeline(broken.pipeline_id)["status"] == "RUN_ERROR"
        assert client.list_pipelines(if_released=True)["count"] == 1
