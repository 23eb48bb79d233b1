"""PostgresCatalog beyond the contract (test_catalog_contract.py runs that on PostgreSQL too):
its migrations, processes opening and writing one database together, and a server that is
wrong, away or restarted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from postgres_server import PASSWORD, PostgresServer, fresh_database
from streamcalc.backends import Backends, BackendUnavailable
from streamcalc.catalog import CatalogUnavailable, Deletion
from streamcalc.catalog.pgschema import HEAD, upgrade
from streamcalc.catalog.postgresql import PostgresCatalog
from streamcalc.clock import ManualClock

CatalogFactory = Callable[[], PostgresCatalog]


@pytest.fixture
def catalog_on(postgres_url: str, manual_clock: ManualClock) -> Iterator[CatalogFactory]:
    """`make()`: a PostgresCatalog on the test's database; closes every one it opened."""
    opened: list[PostgresCatalog] = []

    def make() -> PostgresCatalog:
        opened.append(PostgresCatalog(postgres_url, manual_clock))
        return opened[-1]

    yield make
    for catalog in opened:
        catalog.close()


def _revision(url: str) -> list[tuple[str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchall()


# migrations


def test_a_new_database_is_brought_to_head_once(catalog_on: CatalogFactory, postgres_url: str) -> None:
    account = catalog_on().create_account("o1")
    again = catalog_on()

    assert again.account(account.app_key) == account
    assert _revision(postgres_url) == [(HEAD,)]


def test_an_older_schema_is_upgraded_and_keeps_its_data(postgres_url: str, manual_clock: ManualClock) -> None:
    upgrade(postgres_url, "1")  # the catalog before deletions were listed
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO orgs VALUES ('o1', 1)")
        conn.execute("INSERT INTO accounts VALUES ('key', 'o1', 'secret', 2)")
        conn.execute(
            "INSERT INTO pipelines (pipeline_id, org_id, name, status, design, released, meta, "
            "release_version, created_ms, updated_ms) "
            """VALUES ('p1', 'o1', 'old', 'PAUSED', '{"stages":[]}', '{"stages":[]}', '{"v":"1"}', 1, 3, 4)"""
        )
        conn.execute("INSERT INTO status_history (pipeline_id, status, at_ms) VALUES ('p1', 'PAUSED', 4)")
    assert _revision(postgres_url) == [("1",)]

    catalog = PostgresCatalog(postgres_url, manual_clock)
    try:
        assert _revision(postgres_url) == [(HEAD,)]
        assert catalog.account("key") is not None
        record = catalog.pipeline("o1", "p1")
        assert record is not None
        assert (record.name, record.status, record.meta, record.release_version) == (
            "old",
            "PAUSED",
            {"v": "1"},
            1,
        )
        assert [c.status for c in catalog.status_history("o1", "p1")] == ["PAUSED"]
        deletion = Deletion("d1", "o1", "p1", "S_01", "S_01", 1, 1, 0, "key", 5, 1, 1)
        catalog.add_deletion(deletion)  # revision 2's table
        assert catalog.deletions("o1", "p1") == [deletion]
    finally:
        catalog.close()


def test_a_newer_schema_is_refused(catalog_on: CatalogFactory, postgres_url: str) -> None:
    catalog_on().close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'from-the-future'")

    with pytest.raises(ValueError, match="newer than this streamcalc"):
        catalog_on()


def test_processes_opening_a_new_database_together_do_not_race(
    postgres_url: str, python_process_factory: Any
) -> None:
    script = """
        import sys
        from streamcalc.catalog.postgresql import PostgresCatalog
        from streamcalc.clock import SYSTEM_CLOCK
        sys.stdin.readline()  # all start migrating at once
        catalog = PostgresCatalog(sys.argv[1], SYSTEM_CLOCK)
        print(catalog.create_account("o1", "shared-key", "shared-secret").app_key)
        catalog.close()
    """
    procs = [python_process_factory(script, postgres_url) for _ in range(4)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()

    outputs = [python_process_factory.finish(proc) for proc in procs]

    assert outputs == ["shared-key\n"] * 4
    assert _revision(postgres_url) == [(HEAD,)]


# sharing one database


def test_writes_of_one_catalog_are_seen_by_another_at_once(catalog_on: CatalogFactory) -> None:
    a, b = catalog_on(), catalog_on()
    record = a.create_pipeline("o1", "shared", {"stages": []}, {})

    b.set_status("o1", record.pipeline_id, "RUNNING")

    assert [p.pipeline_id for p in a.running_pipelines()] == [record.pipeline_id]
    assert [c.status for c in a.status_history("o1", record.pipeline_id)] == ["DRAFT", "RUNNING"]


# the server


def test_a_wrong_password_is_refused_without_printing_it(
    tmp_path: Path, postgres_url: str, manual_clock: ManualClock
) -> None:
    url = postgres_url.replace(PASSWORD, "not-the-password")
    backends = Backends.resolve(tmp_path, catalog=url, clock=manual_clock)

    with pytest.raises(BackendUnavailable) as info:
        backends.check("catalog")

    assert "password authentication failed" in str(info.value)
    assert "not-the-password" not in str(info.value) and ":***@" in str(info.value)


def test_a_server_that_went_away_is_catalog_unavailable_and_its_return_is_served(
    manual_clock: ManualClock,
) -> None:
    server = PostgresServer()
    try:
        with fresh_database(server.url()) as url:
            catalog = PostgresCatalog(url, manual_clock)
            try:
                account = catalog.create_account("o1")
                server.stop()
                with pytest.raises(CatalogUnavailable, match="PostgreSQL catalog"):
                    catalog.account(account.app_key)

                server.start()

                assert catalog.account(account.app_key) == account
            finally:
                catalog.close()
    finally:
        server.close()
