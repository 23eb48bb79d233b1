"""A real service for API tests: uvicorn on a free port in a thread, and signed clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from redis_server import free_port
from streamcalc.backends import Backends
from streamcalc.catalog import Account, Catalog
from streamcalc.client import EnosError, StreamcalcClient
from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.service.app import create_app
from streamcalc.service.settings import Bootstrap, ServiceSettings
from streamcalc.signing import token_request_encryption

ORG, APP_KEY, APP_SECRET = (
    "o1",
    "11111111-aaaa-4bbb-8ccc-000000000001",
    "22222222-dddd-4eee-8fff-000000000002",
)
IN, OUT = f"MEASURE_POINT_INTERNAL_{ORG}", f"MEASURE_POINT_CAL_{ORG}"
STAGE = "SimplifiedTimeWindowAggregator_01"
BASE_MS = 1_767_225_600_000


@dataclass
class Service:
    url: str
    data_dir: Path
    catalog_url: str = "sqlite"
    """The service's --catalog (bare sqlite: the file under data_dir)."""

    @contextmanager
    def catalog(self) -> Iterator[Catalog]:
        """The service's catalog, opened beside it as another process would open it."""
        backends = Backends.resolve(self.data_dir, catalog=self.catalog_url)
        try:
            yield backends.catalog
        finally:
            backends.close()

    def client(
        self, org_id: str = ORG, app_key: str = APP_KEY, app_secret: str = APP_SECRET
    ) -> StreamcalcClient:
        return StreamcalcClient(self.url, org_id, app_key, app_secret)


def service_app(
    data_dir: Path, clock: Clock = SYSTEM_CLOCK, backends: dict[str, str] | None = None, **settings: Any
) -> FastAPI:
    """The app on the backends named by `backends` (part -> URL; the embedded ones under
    `data_dir` by default), with the test org's account."""
    bootstrap = Bootstrap(org_id=ORG, app_key=APP_KEY, app_secret=SecretStr(APP_SECRET))
    options = {"bootstrap": bootstrap, "lag_sample_interval_s": 0.1, **settings}
    opened = Backends.resolve(data_dir, clock=clock, **(backends or {}))
    return create_app(ServiceSettings(data_dir=data_dir, **options), opened)


@contextmanager
def serving(app: FastAPI, data_dir: Path, catalog_url: str = "sqlite") -> Iterator[Service]:
    """`app` served by uvicorn on a free loopback port until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield Service(f"http://127.0.0.1:{port}", data_dir, catalog_url)
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def running_service(
    data_dir: Path, clock: Clock = SYSTEM_CLOCK, backends: dict[str, str] | None = None, **settings: Any
) -> Iterator[Service]:
    app = service_app(data_dir, clock, backends, **settings)
    with serving(app, data_dir, (backends or {}).get("catalog", "sqlite")) as service:
        yield service


def pipeline_json(in_topic: str = IN, out_topic: str = OUT) -> dict[str, Any]:
    return {
        "stages": [
            {
                "instanceName": "EDHKafkaConsumer_01",
                "stageName": "EDHKafkaConsumer",
                "config": {"topic": in_topic},
            },
            {
                "instanceName": "PointSelector_01",
                "stageName": "PointSelector",
                "config": {"points": ["m1::p"]},
            },
            {
                "instanceName": STAGE,
                "stageName": "SimplifiedTimeWindowAggregator",
                "config": {
                    "rules": [
                        {
                            "inputPoint": "m1::p",
                            "windowSize": 1,
                            "windowUnit": "day",
                            "outputPoint": "m1::p_sum",
                        }
                    ]
                },
            },
            {
                "instanceName": "EDHKafkaProducer_01",
                "stageName": "EDHKafkaProducer",
                "config": {"topic": out_topic},
            },
        ]
    }


def released(client: StreamcalcClient, in_topic: str = IN) -> str:
    """A new pipeline, released: ready to start."""
    pid = client.save_pipeline(None, pipeline_json(in_topic))
    client.release_pipeline(pid)
    return pid


def other_org(service: Service, org_id: str = "o2") -> Account:
    """A service account of another org, made as `streamcalc accounts create` makes one while
    the service runs."""
    with service.catalog() as catalog:
        return catalog.create_account(org_id)


def access_token(service: Service, app_key: str = APP_KEY, app_secret: str = APP_SECRET) -> str:
    """A token from the token service, as a browser or Prometheus holds it (for Bearer calls)."""
    ts = int(time.time() * 1000)
    body = {
        "appKey": app_key,
        "timestamp": ts,
        "encryption": token_request_encryption(app_key, ts, app_secret),
    }
    doc = httpx.post(f"{service.url}/apim-token-service/v2.0/token/get", json=body).json()
    assert doc["status"] == 0, doc
    return str(doc["data"]["accessToken"])


def code_of(call: Callable[[], Any]) -> tuple[int, str]:
    """The EnOS code and message `call` fails with."""
    with pytest.raises(EnosError) as info:
        call()
    return info.value.code, info.value.msg


def record(asset: str, value: float, offset_ms: int = 0, point: str = "p", org: str = ORG) -> dict[str, Any]:
    return {
        "orgId": org,
        "modelId": "m1",
        "modelIdPath": "/m1",
        "assetId": asset,
        "pointId": point,
        "time": BASE_MS + offset_ms,
        "value": value,
    }


def wait_for(predicate: Any, timeout_s: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result
