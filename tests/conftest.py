"""Shared fixtures: a manual clock, SQLite catalogs on tmp files, helper Python processes for
the cross-process tests of the embedded backends, a redis-server for the Redis backend, a
Kafka-protocol broker for the Kafka log and a PostgreSQL server for the PostgreSQL catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient

from kafka_broker import TansuBroker
from postgres_server import PostgresServer, fresh_database
from redis_server import RedisServer, free_port
from streamcalc.catalog.sqlite import SqliteCatalog
from streamcalc.clock import ManualClock


class PythonProcessFactory:
    """Starts `python -c script *args` with text pipes and reaps every process it started.

    A test talks to its helper through stdin/stdout lines or files in tmp_path, and waits for
    it with `finish()`, which fails the test with the helper's stderr unless it exited 0.
    """

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[str]] = []

    def __call__(self, script: str, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._started.append(proc)
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> str:
        out, err = proc.communicate(timeout=timeout_s)
        assert proc.returncode == 0, f"helper process exited {proc.returncode}:\n{err}"
        return out

    def reap(self) -> None:
        for proc in self._started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def python_process_factory() -> Iterator[PythonProcessFactory]:
    factory = PythonProcessFactory()
    yield factory
    factory.reap()


START_MS = 1_700_000_000_000


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def catalog_factory(tmp_path: Path, manual_clock: ManualClock) -> Iterator[Callable[..., SqliteCatalog]]:
    """`make(path=tmp_path/"catalog.sqlite3", clock=manual_clock)`; closes every catalog it opened."""
    opened: list[SqliteCatalog] = []

    def make(path: Path | None = None, clock: ManualClock | None = None) -> SqliteCatalog:
        catalog = SqliteCatalog(path or tmp_path / "catalog.sqlite3", clock or manual_clock)
        opened.append(catalog)
        return catalog

    yield make
    for catalog in opened:
        catalog.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the session (AOF, appendfsync always), stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty Redis database: STREAMCALC_TEST_REDIS when set (a server of your own, whose
    database is flushed), else the session's private redis-server."""
    url = os.environ.get("STREAMCALC_TEST_REDIS") or request.getfixturevalue("redis_server").url(1)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One private Tansu broker for the session, stopped at the end."""
    broker = TansuBroker(tmp_path_factory.mktemp("kafka"), free_port())
    yield broker
    broker.stop()


@pytest.fixture
def kafka_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """`kafka://host:port` of an empty cluster: STREAMCALC_TEST_KAFKA when set (a cluster for
    tests: its topics and consumer groups are deleted), else the session's Tansu broker."""
    address = os.environ.get("STREAMCALC_TEST_KAFKA") or request.getfixturevalue("kafka_broker").address
    admin = AdminClient({"bootstrap.servers": address})
    empty_kafka(admin)
    yield f"kafka://{address}"
    empty_kafka(admin)


def empty_kafka(admin: AdminClient) -> None:
    """Delete every topic and consumer group, and wait until the metadata shows no topic."""
    groups = [g.group_id for g in admin.list_consumer_groups().result(10).valid]
    if groups:
        for future in admin.delete_consumer_groups(groups).values():
            future.result(10)
    topics = [t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")]
    if topics:
        for future in admin.delete_topics(topics).values():
            future.result(10)
    deadline = time.monotonic() + 30
    while any(not t.startswith("__") for t in admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, "topics still listed 30 s after their deletion"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session, stopped at the end."""
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database, dropped afterwards: on STREAMCALC_TEST_POSTGRES when set (a server
    of your own, whose user may create databases), else on the session's private server."""
    server_url = (
        os.environ.get("STREAMCALC_TEST_POSTGRES") or request.getfixturevalue("postgres_server").url()
    )
    with fresh_database(server_url) as url:
        yield url
