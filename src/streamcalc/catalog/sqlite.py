"""The catalog on one SQLite file (stdlib sqlite3), shared by the service and the CLI.

WAL mode lets readers run beside one writer, and busy_timeout makes a second process (e.g.
`streamcalc accounts create` while the service runs) wait for the write lock instead of
failing. Every write is one `BEGIN IMMEDIATE` transaction. One connection per instance,
guarded by a lock, because FastAPI calls sync endpoints from a thread pool. The file holds
appSecrets, so it is created readable by its owner only (SQLite gives the -wal and -shm
files the same mode). A failure of SQLite itself is `CatalogUnavailable`. Pipeline lifecycle
locks are flocks on files in `<file>.locks/` (`locks.FileLocks`).

The statements are `sql.SqlCatalog`'s, shared with the PostgreSQL catalog (SQLite 3.35 or later).
The schema is version 1's tables plus one migration per later version (`_MIGRATIONS`), applied
in order to a new file and to an older one alike. Deletions are listed here; the values they
removed are kept by the state store (schema 2 kept them here, and schema 3 drops those rows).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamcalc.catalog.base import CatalogUnavailable
from streamcalc.catalog.locks import FileLocks
from streamcalc.catalog.sql import SqlCatalog
from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.errors import translate_errors

SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 30.0
CATALOG_FILE = "catalog.sqlite3"
_FILE_MODE = 0o600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orgs (org_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    app_key TEXT PRIMARY KEY, org_id TEXT NOT NULL, app_secret TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, app_key TEXT NOT NULL, expires_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_expiry ON tokens (expires_ms);
CREATE TABLE IF NOT EXISTS pipelines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, pipeline_id TEXT NOT NULL UNIQUE, org_id TEXT NOT NULL,
    name TEXT NOT NULL, status TEXT NOT NULL, design TEXT NOT NULL, released TEXT, meta TEXT NOT NULL,
    release_version INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS pipelines_org ON pipelines (org_id, status);
CREATE TABLE IF NOT EXISTS status_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, pipeline_id TEXT NOT NULL, status TEXT NOT NULL,
    at_ms INTEGER NOT NULL, reason TEXT);
CREATE INDEX IF NOT EXISTS status_history_pipeline ON status_history (pipeline_id);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, org_id TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, pipeline_id TEXT, detail TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS audit_org ON audit (org_id, pipeline_id);
"""
_MIGRATIONS = {
    2: """
CREATE TABLE deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, deletion_id TEXT NOT NULL UNIQUE, org_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL, stage TEXT NOT NULL, state_name TEXT NOT NULL, assets INTEGER NOT NULL,
    points INTEGER NOT NULL, keys INTEGER NOT NULL, actor TEXT NOT NULL, at_ms INTEGER NOT NULL,
    status_changes INTEGER NOT NULL, release_version INTEGER NOT NULL, generation INTEGER,
    restored_ms INTEGER, restored_generation INTEGER, deleted_values BLOB NOT NULL);
CREATE INDEX deletions_pipeline ON deletions (org_id, pipeline_id);
CREATE INDEX deletions_age ON deletions (at_ms);
""",
    3: """
DELETE FROM deletions;
ALTER TABLE deletions DROP COLUMN deleted_values;
""",
}
"""version -> the statements that bring the schema of the version before to it."""


@translate_errors(sqlite3.Error, CatalogUnavailable, "SQLite catalog")
class SqliteCatalog(SqlCatalog):
    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(clock, FileLocks(path.with_name(f"{path.name}.locks")))
        self._lock = threading.Lock()
        # created 0600 before SQLite opens it (SQLite would honour the umask); it holds appSecrets
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE))
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self._write() as db:
            _create_schema(db)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # internals

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot for every statement inside (a count and its page agree)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")


def open_catalog(data_dir: Path, clock: Clock = SYSTEM_CLOCK) -> SqliteCatalog:
    """The catalog of a data dir (`catalog.sqlite3`), created with the dir if missing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteCatalog(data_dir / CATALOG_FILE, clock)


def open_url(place: str, clock: Clock) -> SqliteCatalog:
    """The catalog in file `place`, its directory created if missing (the composition root's
    entry point)."""
    path = Path(place)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteCatalog(path, clock)


def _create_schema(db: sqlite3.Connection) -> None:
    _run_script(db, _SCHEMA)
    (version,) = db.execute("SELECT max(version) FROM schema_version").fetchone()
    if version is None:
        version = 1
        db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    if version > SCHEMA_VERSION:
        raise ValueError(f"catalog schema version {version} is newer than this streamcalc ({SCHEMA_VERSION})")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        _run_script(db, _MIGRATIONS[step])
        db.execute("UPDATE schema_version SET version = ?", (step,))


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script` inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
