"""The API on Redis state: the state is in Redis (nothing under the data dir), a volatile
Redis refuses a start with the reason, and a Redis that is gone answers 503 in the EnOS
envelope, within the retry budget, never a hang. The whole story on Redis is in
test_api_story.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from api_support import IN, STAGE, Service, code_of, record, released, running_service, wait_for

from redis_server import RedisServer
from streamcalc.client import StreamcalcClient


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path / "redis")
    yield s
    s.stop()


@pytest.fixture
def service(tmp_path: Path, server: RedisServer) -> Iterator[Service]:
    with running_service(tmp_path / "data", backends={"state": server.url()}) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> Iterator[StreamcalcClient]:
    with service.client() as c:
        yield c


def test_a_pipelines_state_and_offsets_live_in_redis(
    service: Service, client: StreamcalcClient, server: RedisServer
) -> None:
    pid = released(client)
    client.start_pipeline(pid)
    client.produce(IN, [record("a1", 1), record("a2", 2)])
    wait_for(lambda: len(client.get_stage_state(pid, STAGE, ["a1", "a2"], ["p"])) == 2, what="state")
    raw = redis.Redis(port=server.port)
    assert raw.hexists(f"streamcalc:{{{pid}}}:offsets", f"{IN}:0")
    assert raw.hexists(f"streamcalc:{{{pid}}}:state:{STAGE}", "a1:p")
    assert not (service.data_dir / "state").exists()
    client.pause_pipeline(pid)


def test_a_start_on_volatile_redis_is_refused_with_the_reason(
    client: StreamcalcClient, server: RedisServer
) -> None:
    redis.Redis(port=server.port).config_set("appendonly", "no")
    pid = released(client)
    code, msg = code_of(lambda: client.start_pipeline(pid))
    assert code == 61165 and "appendonly is not yes" in msg and "--allow-volatile-state" in msg
    assert client.get_pipeline(pid)["status"] == "PUBLISHED"


def test_redis_gone_answers_503_in_the_envelope(client: StreamcalcClient, server: RedisServer) -> None:
    pid = released(client)
    client.start_pipeline(pid)
    client.pause_pipeline(pid)
    server.stop()
    for call in (
        lambda: client.get_stage_state(pid, STAGE, ["a1"], ["p"]),
        lambda: client.delete_stage_state(pid, STAGE, ["a1"], ["p"]),
    ):
        code, msg = code_of(call)
        assert code == 503 and "state" in msg and "retry later" in msg
    server.start()
    assert client.get_stage_state(pid, STAGE, ["a1"], ["p"]) == []
