"""SqliteCatalog beyond the contract (test_catalog_contract.py runs that on SQLite too): the
file, its schema and mode, and sharing it with other connections and processes."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from streamcalc.catalog import Deletion
from streamcalc.catalog.sqlite import SCHEMA_VERSION, SqliteCatalog, open_catalog, open_url
from streamcalc.clock import ManualClock

CatalogFactory = Callable[..., SqliteCatalog]


def _raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain connection to look at the file beside the catalog."""
    return closing(sqlite3.connect(path))


@pytest.fixture
def catalog(catalog_factory: CatalogFactory) -> SqliteCatalog:
    return catalog_factory()


# the file


def test_schema_version_and_wal_mode(catalog: SqliteCatalog, tmp_path: Path) -> None:
    with _raw(tmp_path / "catalog.sqlite3") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_reopening_keeps_data_and_one_schema_version(catalog_factory: CatalogFactory, tmp_path: Path) -> None:
    first = catalog_factory()
    account = first.create_account("o1")
    first.close()

    second = catalog_factory()

    assert second.account(account.app_key) == account
    with _raw(tmp_path / "catalog.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_newer_schema_is_refused(catalog_factory: CatalogFactory, tmp_path: Path) -> None:
    catalog_factory().close()
    with _raw(tmp_path / "catalog.sqlite3") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        conn.commit()

    with pytest.raises(ValueError, match="newer"):
        catalog_factory()


def test_a_version_1_file_is_migrated_and_keeps_its_data(
    catalog_factory: CatalogFactory, tmp_path: Path
) -> None:
    first = catalog_factory()
    account = first.create_account("o1")
    pipeline = first.create_pipeline("o1", "kept", {"stages": []}, {})
    first.close()
    with _raw(tmp_path / "catalog.sqlite3") as conn:  # what streamcalc with schema 1 wrote
        conn.execute("DROP TABLE deletions")
        conn.execute("UPDATE schema_version SET version = 1")
        conn.commit()

    second = catalog_factory()

    assert second.account(account.app_key) == account
    assert second.pipeline("o1", pipeline.pipeline_id) == pipeline
    second.add_deletion(Deletion("d1", "o1", pipeline.pipeline_id, "s", "s", 1, 1, 1, "k", 5, 1, 0))
    assert [d.deletion_id for d in second.deletions("o1", pipeline.pipeline_id)] == ["d1"]
    with _raw(tmp_path / "catalog.sqlite3") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_version_2_file_drops_its_deletions_whose_values_it_held(
    catalog_factory: CatalogFactory, tmp_path: Path
) -> None:
    """Schema 2 kept a deletion's values in the catalog; since 3 the state store keeps them, so
    a schema 2 deletion could never be restored and is dropped (the audit still lists it)."""
    first = catalog_factory()
    pipeline = first.create_pipeline("o1", "kept", {"stages": []}, {})
    first.close()
    with _raw(tmp_path / "catalog.sqlite3") as conn:  # what streamcalc with schema 2 wrote
        conn.execute("ALTER TABLE deletions ADD COLUMN deleted_values BLOB")
        conn.execute(
            "INSERT INTO deletions (deletion_id, org_id, pipeline_id, stage, state_name, assets, points, "
            "keys, actor, at_ms, status_changes, release_version, deleted_values) "
            "VALUES ('old', 'o1', ?, 's', 's', 1, 1, 1, 'k', 5, 1, 0, x'00')",
            (pipeline.pipeline_id,),
        )
        conn.execute("UPDATE schema_version SET version = 2")
        conn.commit()

    second = catalog_factory()

    assert second.deletions("o1", pipeline.pipeline_id) == []
    assert second.pipeline("o1", pipeline.pipeline_id) == pipeline
    with _raw(tmp_path / "catalog.sqlite3") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(deletions)")]
        assert "deleted_values" not in columns
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(3,)]


def test_file_is_private_even_with_a_permissive_umask(
    catalog_factory: CatalogFactory, tmp_path: Path
) -> None:
    old = os.umask(0)
    try:
        catalog = catalog_factory()
        catalog.create_account("o1")
    finally:
        os.umask(old)

    files = [p for p in tmp_path.iterdir() if p.name.startswith("catalog.sqlite3")]
    assert {p.name for p in files} >= {"catalog.sqlite3", "catalog.sqlite3-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


@pytest.mark.parametrize(
    ("opener", "file"),
    [
        (lambda place, clock: open_catalog(place, clock), "catalog.sqlite3"),
        (lambda place, clock: open_url(str(place / "cat.sqlite3"), clock), "cat.sqlite3"),
    ],
    ids=["open_catalog", "open_url"],
)
def test_opening_creates_the_file_and_its_directory(
    tmp_path: Path, opener: Callable[[Path, ManualClock], SqliteCatalog], file: str
) -> None:
    catalog = opener(tmp_path / "a" / "b", ManualClock(5))
    try:
        catalog.ensure_org("o1")
    finally:
        catalog.close()

    assert (tmp_path / "a" / "b" / file).is_file()


def test_ensure_org_records_each_org_once(catalog: SqliteCatalog, tmp_path: Path) -> None:
    catalog.ensure_org("o1")
    catalog.ensure_org("o1")
    catalog.ensure_org("o2")

    with _raw(tmp_path / "catalog.sqlite3") as conn:
        assert conn.execute("SELECT org_id FROM orgs ORDER BY org_id").fetchall() == [("o1",), ("o2",)]


# other connections and processes on the same file


def test_a_writer_waits_for_another_connections_write_lock(
    catalog_factory: CatalogFactory, tmp_path: Path
) -> None:
    catalog_factory()  # creates the file and schema
    second = catalog_factory()
    blocker = sqlite3.connect(tmp_path / "catalog.sqlite3", isolation_level=None)
    results: list[object] = []

    def create() -> None:
        try:
            results.append(second.create_account("o1", "waiting", "s"))
        except BaseException as e:  # without busy_timeout: "database is locked"
            results.append(e)

    blocker.execute("BEGIN IMMEDIATE")
    thread = threading.Thread(target=create)
    thread.start()
    thread.join(0.3)  # let the writer reach the lock (only makes the test sharper; no timing is asserted)
    blocker.execute("COMMIT")
    blocker.close()
    thread.join()

    assert [type(r).__name__ for r in results] == ["Account"], results


def test_another_process_creates_an_account_while_open(
    catalog_factory: CatalogFactory, python_process_factory: Any, tmp_path: Path
) -> None:
    catalog = catalog_factory()
    catalog.create_account("o1", "first", "s1")
    assert catalog.account("first") is not None  # a read transaction has run on this connection

    helper = python_process_factory(
        """
        import sys
        from pathlib import Path
        from streamcalc.catalog.sqlite import open_catalog

        catalog = open_catalog(Path(sys.argv[1]))
        account = catalog.create_account("o2")
        catalog.close()
        print(account.app_key, account.app_secret)
        """,
        tmp_path,
    )
    app_key, app_secret = python_process_factory.finish(helper).split()

    account = catalog.account(app_key)
    assert account is not None and (account.org_id, account.app_secret) == ("o2", app_secret)
    catalog.create_account("o1", "after", "s2")  # and this instance still writes
    assert catalog.account("after") is not None
