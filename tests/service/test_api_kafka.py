"""The API on a Kafka log whose broker goes away: ingest, consume and start answer 503 in the
EnOS envelope within the bounds (never a hang), and work again once it is back. The whole
story on Kafka is in test_api_story.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import IN, OUT, code_of, record, released, running_service, wait_for

from kafka_outage import ReachableBroker, broker_behind_a_proxy
from streamcalc.client import EnosError, StreamcalcClient


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReachableBroker]:
    with broker_behind_a_proxy(tmp_path / "kafka", monkeypatch) as b:
        yield b


@pytest.fixture
def client(tmp_path: Path, broker: ReachableBroker) -> Iterator[StreamcalcClient]:
    with running_service(tmp_path / "data", backends={"log": broker.url}) as svc, svc.client() as c:
        yield c


def test_a_broker_that_is_gone_answers_503_in_the_envelope(
    client: StreamcalcClient, broker: ReachableBroker
) -> None:
    pid = released(client)
    client.produce(IN, [record("a1", 1)])
    broker.proxy.go_down()
    for call in (
        lambda: client.produce(IN, [record("a1", 2, 1)]),
        lambda: client.consume(IN),
        lambda: client.start_pipeline(pid),
    ):
        code, msg = code_of(call)
        assert code == 503 and "the log failed" in msg and "retry later" in msg
    broker.proxy.come_back()

    wait_for(lambda: answered(lambda: client.start_pipeline(pid) or True), what="the broker back")
    client.produce(IN, [record("a1", 2, 1)])
    wait_for(lambda: answered(lambda: len(client.consume(OUT)["records"]) == 2), what="outputs")


def answered(call: Callable[[], Any]) -> Any:
    """What `call` returns, or None while the API answers 503 (until its clients reconnect)."""
    try:
        return call()
    except EnosError as e:
        assert e.code == 503
        return None
