"""Start Pipeline's resourceConfig over real HTTP: a standalone pipeline of N CUs runs as N
worker processes, each reading its share of the source partitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    IN,
    ORG,
    OUT,
    STAGE,
    Service,
    code_of,
    record,
    released,
    running_service,
    service_app,
    serving,
    wait_for,
)

from streamcalc.client import StreamcalcClient
from streamcalc.log import TopicConfig
from streamcalc.log.embedded import open_log
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import Supervisor
from streamcalc.runtime.worker_spec import read_spec

ASSETS = [f"a{i}" for i in range(8)]
THREE = f"THREE_PARTITIONS_{ORG}"


def start_body(client: StreamcalcClient, pid: str, body: dict[str, Any]) -> None:
    client.call("POST", f"/streaming/v2.0/streaming/pipeline/{pid}", {"action": "start"}, body)


def sums_by_asset(client: StreamcalcClient) -> dict[str, list[float]]:
    """Outputs per asset in log order; the order across assets depends on the workers."""
    out: dict[str, list[float]] = {}
    for r in client.consume(OUT, limit=1000)["records"]:
        out.setdefault(r["record"]["assetId"], []).append(r["record"]["value"])
    return out


def worker_pids(supervisor: Supervisor, pid: str) -> list[int | None]:
    info = supervisor.info(pid)
    assert info is not None
    return info.pids


@pytest.mark.slow
def test_resource_config_runs_that_many_workers_and_a_service_restart_keeps_them(tmp_path: Path) -> None:
    first = service_app(tmp_path)
    with serving(first, tmp_path) as service, service.client() as client:
        pid = released(client)
        client.start_pipeline(pid, kafka_rate=1_000_000, resource_config=2)
        assert len(pids := worker_pids(first.state.supervisor, pid)) == 2 and None not in pids

        client.produce(IN, [record(a, 1) for a in ASSETS] + [record(a, 2, 1) for a in ASSETS])

        assert all(client.consume(IN, partition=p)["records"] for p in (0, 1))  # created with 2 partitions
        wait_for(
            lambda: sums_by_asset(client) == {a: [1, 3] for a in ASSETS}, what="the sums of both workers"
        )

        def state() -> dict[str, float]:
            return {
                i["assetId"]: i["windows"][0]["sum"]
                for i in client.get_stage_state(pid, STAGE, ASSETS, ["p"])
            }

        wait_for(lambda: state() == dict.fromkeys(ASSETS, 3), what="both workers' state committed")

    second = service_app(tmp_path)
    with serving(second, tmp_path) as service, service.client() as client:
        assert client.get_pipeline(pid)["status"] == "RUNNING"
        assert len(pids := worker_pids(second.state.supervisor, pid)) == 2 and None not in pids
        assert read_spec(tmp_path, pid).runner_options == RunnerOptions(rate_limit=1_000_000, workers=2)
        client.produce(IN, [record(a, 4, 2) for a in ASSETS])
        wait_for(
            lambda: sums_by_asset(client) == {a: [1, 3, 7] for a in ASSETS}, what="sums after the restart"
        )
        client.pause_pipeline(pid)
        assert worker_pids(second.state.supervisor, pid) == [None, None]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose data dir has a source topic of 3 partitions, made before it started."""
    data_dir = tmp_path_factory.mktemp("workers")
    log_ = open_log(data_dir)
    log_.ensure_topic(TopicConfig(THREE, partitions=3))
    log_.close()
    with running_service(data_dir) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> Iterator[StreamcalcClient]:
    with service.client() as c:
        yield c


@pytest.mark.parametrize("bad", [0, 17, "17", "x", " ", "-1", True, [2]])
def test_resource_config_must_be_a_positive_number_up_to_16_cus(client: StreamcalcClient, bad: Any) -> None:
    pid = released(client)
    code, msg = code_of(lambda: start_body(client, pid, {"executionMode": "0", "resourceConfig": bad}))
    assert code == 61100 and "resourceConfig must be" in msg and repr(bad) in msg
    assert client.get_pipeline(pid)["status"] == "PUBLISHED"


def test_a_source_topic_the_workers_cannot_share_is_61100_naming_it(client: StreamcalcClient) -> None:
    pid = released(client, in_topic=THREE)
    code, msg = code_of(lambda: client.start_pipeline(pid, resource_config=2))
    assert code == 61100 and f"topic {THREE} has 3 partition(s), which 2 workers cannot share" in msg
    assert client.get_pipeline(pid)["status"] == "PUBLISHED"
    client.start_pipeline(pid, resource_config=3)
    assert client.get_pipeline(pid)["status"] == "RUNNING"
    client.stop_pipeline(pid)


def test_cluster_mode_runs_standalone_on_one_worker_its_resource_object_unread(
    service: Service, client: StreamcalcClient
) -> None:
    pid = released(client, in_topic=THREE)
    start_body(
        client, pid, {"executionMode": 1, "resourceConfig": {"server": "1", "yarn": {"workerCount": 2}}}
    )
    assert read_spec(service.data_dir, pid).runner_options.workers == 1
    client.stop_pipeline(pid)
