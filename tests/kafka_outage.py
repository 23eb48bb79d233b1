"""A Kafka broker that can go away and come back with its data: a private Tansu that
advertises a proxy's address, so every client connection passes the proxy, which drops them
all and refuses new ones while it is down (Tansu's memory storage would lose the data if the
broker itself were restarted)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kafka_broker import TansuBroker
from redis_server import CuttingProxy, free_port

OUTAGE_ENV = {
    "STREAMCALC_KAFKA_TIMEOUT_S": "1",
    "STREAMCALC_KAFKA__MESSAGE_TIMEOUT_MS": "2000",
    "STREAMCALC_KAFKA__RECONNECT_BACKOFF_MAX_MS": "200",
}
"""Short bounds, so that calls fail within seconds of the outage and reconnect soon after."""


@dataclass
class ReachableBroker:
    url: str
    proxy: CuttingProxy


@contextmanager
def broker_behind_a_proxy(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReachableBroker]:
    """The broker's URL (through the proxy) with OUTAGE_ENV set for this process and its workers."""
    for name, value in OUTAGE_ENV.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    proxy = CuttingProxy(port)
    broker = TansuBroker(directory, port=port, advertised_port=proxy.port)
    try:
        yield ReachableBroker(f"kafka://127.0.0.1:{proxy.port}", proxy)
    finally:
        proxy.close()
        broker.stop()
