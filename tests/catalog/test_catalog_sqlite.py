"""SqliteCatalog: every Catalog method, org isolation, and sharing the file with other processes."""

from __future__ import annotations

import inspect
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from streamcalc.catalog import AuditEntry, Catalog, StatusChange, TokenGrant
from streamcalc.catalog.sqlite import SCHEMA_VERSION, SqliteCatalog, open_catalog
from streamcalc.clock import ManualClock

CatalogFactory = Callable[..., SqliteCatalog]
DESIGN = {"stages": [{"instanceName": "PointSelector_01", "config": {"points": ["p1"]}}], "desc": "描述"}


def _is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


def _raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain connection to look at the file beside the catalog."""
    return closing(sqlite3.connect(path))


@pytest.fixture
def catalog(catalog_factory: CatalogFactory) -> SqliteCatalog:
    return catalog_factory()


# the file


def test_implements_every_catalog_method_with_its_signature() -> None:
    names = [n for n, v in vars(Catalog).items() if callable(v) and not n.startswith("_")]

    assert len(names) == 17
    for name in names:
        assert inspect.signature(getattr(SqliteCatalog, name)) == inspect.signature(getattr(Catalog, name)), (
            name
        )


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


def test_open_catalog_creates_the_data_dir(tmp_path: Path) -> None:
    catalog = open_catalog(tmp_path / "a" / "b", ManualClock(5))
    try:
        catalog.ensure_org("o1")
    finally:
        catalog.close()

    assert (tmp_path / "a" / "b" / "catalog.sqlite3").is_file()


def test_close_twice_is_a_no_op(catalog: SqliteCatalog) -> None:
    catalog.close()
    catalog.close()


# orgs and accounts


def test_ensure_org_is_idempotent(catalog: SqliteCatalog, tmp_path: Path) -> None:
    catalog.ensure_org("o1")
    catalog.ensure_org("o1")
    catalog.ensure_org("o2")

    with _raw(tmp_path / "catalog.sqlite3") as conn:
        assert conn.execute("SELECT org_id FROM orgs ORDER BY org_id").fetchall() == [("o1",), ("o2",)]
    with pytest.raises(ValueError):
        catalog.ensure_org(" ")


def test_create_account_generates_uuid_keys(catalog: SqliteCatalog, manual_clock: ManualClock) -> None:
    a = catalog.create_account("o1")
    b = catalog.create_account("o1")

    assert _is_uuid4(a.app_key) and _is_uuid4(a.app_secret)
    assert len({a.app_key, a.app_secret, b.app_key, b.app_secret}) == 4
    assert (a.org_id, a.created_ms) == ("o1", manual_clock.wall_ms())
    assert catalog.account(a.app_key) == a
    assert catalog.account("nobody") is None


def test_create_account_with_given_keys_is_idempotent(
    catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    first = catalog.create_account("o1", "key", "secret")
    manual_clock.advance(60)

    assert catalog.create_account("o1", "key", "secret") == first
    assert catalog.create_account("o1", "key") == first
    assert catalog.account("key") == first


@pytest.mark.parametrize(("org", "secret"), [("o2", "secret"), ("o1", "other"), ("o2", None)])
def test_create_account_refuses_another_org_or_secret(
    catalog: SqliteCatalog, org: str, secret: str | None
) -> None:
    first = catalog.create_account("o1", "key", "secret")

    with pytest.raises(ValueError, match="key"):
        catalog.create_account(org, "key", secret)

    assert catalog.account("key") == first


@pytest.mark.parametrize(("org", "key", "secret"), [("", None, None), ("o1", "", None), ("o1", "k", " ")])
def test_create_account_refuses_empty_values(
    catalog: SqliteCatalog, org: str, key: str | None, secret: str | None
) -> None:
    with pytest.raises(ValueError):
        catalog.create_account(org, key, secret)


# tokens


def test_tokens_save_read_and_expire(catalog: SqliteCatalog) -> None:
    catalog.save_token("h1", TokenGrant("k1", 1_000))
    catalog.save_token("h2", TokenGrant("k1", 2_000))
    catalog.save_token("h3", TokenGrant("k2", 3_000))

    assert catalog.token("h2") == TokenGrant("k1", 2_000)
    assert catalog.token("nope") is None
    assert catalog.delete_expired_tokens(999) == 0
    assert catalog.delete_expired_tokens(2_000) == 2  # expiring at now counts as expired
    assert catalog.token("h1") is None and catalog.token("h2") is None
    assert catalog.token("h3") == TokenGrant("k2", 3_000)
    assert catalog.delete_expired_tokens(2_000) == 0


def test_save_token_replaces_a_grant(catalog: SqliteCatalog) -> None:
    catalog.save_token("h", TokenGrant("k", 1_000))
    catalog.save_token("h", TokenGrant("k", 5_000))

    assert catalog.token("h") == TokenGrant("k", 5_000)


# pipelines


def test_create_pipeline(catalog: SqliteCatalog, manual_clock: ManualClock) -> None:
    record = catalog.create_pipeline("o1", "p", DESIGN, {"templateType": 1, "desc": "x"})

    assert _is_uuid4(record.pipeline_id)
    assert (record.org_id, record.name, record.status) == ("o1", "p", "DRAFT")
    assert record.design == DESIGN and record.released is None
    assert record.meta == {"templateType": 1, "desc": "x"}
    assert (record.release_version, record.updated_ms) == (0, manual_clock.wall_ms())
    assert catalog.pipeline("o1", record.pipeline_id) == record
    assert catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id != record.pipeline_id


def test_save_pipeline_updates_only_given_fields_and_merges_meta(
    catalog: SqliteCatalog, manual_clock: ManualClock
) -> None:
    record = catalog.create_pipeline("o1", "p", DESIGN, {"a": 1, "b": 2})
    manual_clock.advance(10)

    saved = catalog.save_pipeline("o1", record.pipeline_id, name=None, design=None, meta={"b": 3, "c": 4})
    assert saved is not None
    assert (saved.name, saved.design, saved.meta) == ("p", DESIGN, {"a": 1, "b": 3, "c": 4})
    assert saved.updated_ms == record.updated_ms + 10_000

    renamed = catalog.save_pipeline("o1", record.pipeline_id, name="q", design={"stages": []}, meta={})
    assert renamed is not None
    assert (renamed.name, renamed.design, renamed.meta) == ("q", {"stages": []}, {"a": 1, "b": 3, "c": 4})
    assert renamed.status == "DRAFT" and renamed.released is None
    assert catalog.pipeline("o1", record.pipeline_id) == renamed
    assert catalog.save_pipeline("o1", "no-such-id", name="x", design=None, meta={}) is None


def test_release_copies_the_design(catalog: SqliteCatalog) -> None:
    pid = catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id

    first = catalog.release_pipeline("o1", pid)
    assert first is not None
    assert (first.status, first.released, first.release_version) == ("PUBLISHED", DESIGN, 1)

    catalog.save_pipeline("o1", pid, name=None, design={"stages": ["v2"]}, meta={})
    kept = catalog.pipeline("o1", pid)
    assert kept is not None and kept.released == DESIGN and kept.design == {"stages": ["v2"]}

    second = catalog.release_pipeline("o1", pid)
    assert second is not None
    assert (second.released, second.release_version) == ({"stages": ["v2"]}, 2)
    assert catalog.release_pipeline("o1", "no-such-id") is None


def test_pipelines_pages_released_and_drafts_oldest_first(catalog: SqliteCatalog) -> None:
    ids = [catalog.create_pipeline("o1", f"p{i}", DESIGN, {}).pipeline_id for i in range(7)]
    for pid in ids[1::2]:  # 3 released: p1, p3, p5
        catalog.release_pipeline("o1", pid)
    catalog.set_status("o1", ids[3], "RUNNING")
    catalog.create_pipeline("o2", "other", DESIGN, {})

    def names(released: bool, offset: int, limit: int) -> tuple[int, list[str]]:
        total, page = catalog.pipelines("o1", released=released, offset=offset, limit=limit)
        return total, [r.name for r in page]

    assert names(True, 0, 10) == (3, ["p1", "p3", "p5"])
    assert names(True, 1, 1) == (3, ["p3"])
    assert names(True, 3, 10) == (3, [])
    assert names(False, 0, 2) == (4, ["p0", "p2"])
    assert names(False, 2, 2) == (4, ["p4", "p6"])
    assert catalog.pipelines("nobody", released=False, offset=0, limit=10) == (0, [])


def test_running_pipelines_of_every_org(catalog: SqliteCatalog) -> None:
    a = catalog.create_pipeline("o1", "a", DESIGN, {}).pipeline_id
    b = catalog.create_pipeline("o2", "b", DESIGN, {}).pipeline_id
    c = catalog.create_pipeline("o2", "c", DESIGN, {}).pipeline_id
    for org, pid in (("o1", a), ("o2", b), ("o2", c)):
        catalog.release_pipeline(org, pid)
    catalog.set_status("o1", a, "RUNNING")
    catalog.set_status("o2", c, "RUNNING")
    catalog.set_status("o2", b, "PAUSED")

    assert [(r.org_id, r.pipeline_id) for r in catalog.running_pipelines()] == [("o1", a), ("o2", c)]


def test_set_status_and_history(catalog: SqliteCatalog, manual_clock: ManualClock) -> None:
    pid = catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id
    t0 = manual_clock.wall_ms()
    manual_clock.advance(1)
    catalog.release_pipeline("o1", pid)
    manual_clock.advance(1)
    catalog.set_status("o1", pid, "RUNNING")
    manual_clock.advance(1)
    catalog.set_status("o1", pid, "RUN_ERROR", "worker failed repeatedly")

    record = catalog.pipeline("o1", pid)
    assert record is not None and record.status == "RUN_ERROR" and record.updated_ms == t0 + 3_000
    assert catalog.status_history("o1", pid) == [
        StatusChange(pid, "DRAFT", t0),
        StatusChange(pid, "PUBLISHED", t0 + 1_000),
        StatusChange(pid, "RUNNING", t0 + 2_000),
        StatusChange(pid, "RUN_ERROR", t0 + 3_000, "worker failed repeatedly"),
    ]
    catalog.set_status("o1", "no-such-id", "RUNNING")
    assert catalog.status_history("o1", "no-such-id") == []


# org isolation: every pipeline method, called by another org, answers nothing and changes nothing

OTHER = "o2"
ISOLATION_CASES: list[tuple[str, Callable[[SqliteCatalog, str], Any], Any]] = [
    ("pipeline", lambda c, pid: c.pipeline(OTHER, pid), None),
    (
        "save_pipeline",
        lambda c, pid: c.save_pipeline(OTHER, pid, name="x", design={"x": 1}, meta={"x": 1}),
        None,
    ),
    ("release_pipeline", lambda c, pid: c.release_pipeline(OTHER, pid), None),
    ("set_status", lambda c, pid: c.set_status(OTHER, pid, "STOPPED", "hijack"), None),
    ("status_history", lambda c, pid: c.status_history(OTHER, pid), []),
    ("pipelines/released", lambda c, pid: c.pipelines(OTHER, released=True, offset=0, limit=10), (0, [])),
    ("pipelines/drafts", lambda c, pid: c.pipelines(OTHER, released=False, offset=0, limit=10), (0, [])),
    ("audit_log", lambda c, pid: c.audit_log(OTHER, pid), []),
]


@pytest.mark.parametrize(
    ("call", "expected"), [(c[1], c[2]) for c in ISOLATION_CASES], ids=[c[0] for c in ISOLATION_CASES]
)
def test_another_org_sees_and_touches_nothing(
    catalog: SqliteCatalog, call: Callable[[SqliteCatalog, str], Any], expected: Any
) -> None:
    draft = catalog.create_pipeline("o1", "draft", DESIGN, {"m": 1}).pipeline_id
    live = catalog.create_pipeline("o1", "live", DESIGN, {"m": 1}).pipeline_id
    catalog.release_pipeline("o1", live)
    catalog.audit(AuditEntry("o1", "k1", "release", live, {}, 1))
    catalog.ensure_org(OTHER)
    before = [(catalog.pipeline("o1", p), catalog.status_history("o1", p)) for p in (draft, live)]

    for pid in (draft, live):
        assert call(catalog, pid) == expected

    assert [(catalog.pipeline("o1", p), catalog.status_history("o1", p)) for p in (draft, live)] == before


# audit


def test_audit_log_by_org_and_pipeline_in_order(catalog: SqliteCatalog) -> None:
    entries = [
        AuditEntry("o1", "k1", "save", "p1", {"name": "描述", "n": [1, 2]}, 10),
        AuditEntry("o1", "k1", "token", None, {}, 11),
        AuditEntry("o2", "k2", "save", "p1", {}, 12),
        AuditEntry("o1", "k3", "start", "p1", {"kafkaRate": 100}, 13),
    ]
    for entry in entries:
        catalog.audit(entry)

    assert catalog.audit_log("o1") == [entries[0], entries[1], entries[3]]
    assert catalog.audit_log("o1", "p1") == [entries[0], entries[3]]
    assert catalog.audit_log("o2") == [entries[2]]
    assert catalog.audit_log("o3") == []


# sharing: threads on one instance, other instances and processes on the same file


def test_threads_share_one_instance(catalog: SqliteCatalog) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                pid = catalog.create_pipeline("o1", f"{n}-{i}", DESIGN, {}).pipeline_id
                catalog.set_status("o1", pid, "PUBLISHED")
                assert catalog.pipeline("o1", pid) is not None
        except BaseException as e:  # reported below, with the failing thread's error
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert catalog.pipelines("o1", released=True, offset=0, limit=1)[0] == 160


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
        from streamcalc.catalog import open_catalog

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
