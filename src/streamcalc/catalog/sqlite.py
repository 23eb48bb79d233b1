"""The catalog on one SQLite file (stdlib sqlite3), shared by the service and the CLI.

WAL mode lets readers run beside one writer, and busy_timeout makes a second process (e.g.
`streamcalc accounts create` while the service runs) wait for the write lock instead of
failing. Every write is one `BEGIN IMMEDIATE` transaction. One connection per instance,
guarded by a lock, because FastAPI calls sync endpoints from a thread pool. The file holds
appSecrets, so it is created readable by its owner only (SQLite gives the -wal and -shm
files the same mode). A failure of SQLite itself is `CatalogUnavailable`. Pipeline lifecycle
locks are flocks on files in `<file>.locks/` (`locks.FileLocks`).

The schema is version 1's tables plus one migration per later version (`_MIGRATIONS`), applied
in order to a new file and to an older one alike. Deletions are listed here; the values they
removed are kept by the state store (schema 2 kept them here, and schema 3 drops those rows).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple
from pathlib import Path
from typing import Any, cast

from streamcalc.catalog.base import (
    Account,
    AuditEntry,
    CatalogUnavailable,
    Deletion,
    PipelineRecord,
    PipelineStatus,
    StatusChange,
    TokenGrant,
    require_text,
)
from streamcalc.catalog.locks import FileLocks
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
_SELECT_DELETION_ROWS = (  # Deletion's fields, in its order
    "SELECT deletion_id, org_id, pipeline_id, stage, state_name, assets, points, keys, actor, at_ms, "
    "status_changes, release_version, generation, restored_ms, restored_generation FROM deletions "
)
_SELECT_DELETIONS = f"{_SELECT_DELETION_ROWS}WHERE org_id = ? AND pipeline_id = ? ORDER BY seq DESC"
_INSERT_DELETION = (
    "INSERT INTO deletions (deletion_id, org_id, pipeline_id, stage, state_name, assets, points, keys, "
    "actor, at_ms, status_changes, release_version, generation, restored_ms, restored_generation) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_PIPELINES = (
    "SELECT pipeline_id, org_id, name, status, design, released, meta, release_version, updated_ms "
    "FROM pipelines "
)
_GET_PIPELINE = f"{_SELECT_PIPELINES}WHERE pipeline_id = ? AND org_id = ?"
_PAGE_PIPELINES = (
    f"{_SELECT_PIPELINES}WHERE org_id = ? AND (status != 'DRAFT') = ? ORDER BY seq LIMIT ? OFFSET ?"
)
_COUNT_PIPELINES = "SELECT count(*) FROM pipelines WHERE org_id = ? AND (status != 'DRAFT') = ?"
_RUNNING_PIPELINES = f"{_SELECT_PIPELINES}WHERE status = 'RUNNING' ORDER BY seq"
_SELECT_ACCOUNT = "SELECT app_key, org_id, app_secret, created_ms FROM accounts WHERE app_key = ?"
_INSERT_PIPELINE = (
    "INSERT INTO pipelines (pipeline_id, org_id, name, status, design, released, meta, release_version, "
    "created_ms, updated_ms) VALUES (?, ?, ?, 'DRAFT', ?, NULL, ?, 0, ?, ?)"
)
_INSERT_AUDIT = (
    "INSERT INTO audit (org_id, actor, action, pipeline_id, detail, at_ms) VALUES (?, ?, ?, ?, ?, ?)"
)


@translate_errors(sqlite3.Error, CatalogUnavailable, "SQLite catalog")
class SqliteCatalog:
    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pipeline_locks = FileLocks(path.with_name(f"{path.name}.locks"))
        # created 0600 before SQLite opens it (SQLite would honour the umask); it holds appSecrets
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE))
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self._write() as db:
            _create_schema(db)

    # orgs and accounts

    def ensure_org(self, org_id: str) -> None:
        require_text(org_id, "org_id")
        with self._write() as db:
            self._ensure_org(db, org_id)

    def create_account(
        self, org_id: str, app_key: str | None = None, app_secret: str | None = None
    ) -> Account:
        require_text(org_id, "org_id")
        key = app_key if app_key is not None else str(uuid.uuid4())
        require_text(key, "app_key")
        with self._write() as db:
            existing = db.execute(_SELECT_ACCOUNT, (key,)).fetchone()
            if existing is not None:
                account = Account(*existing)
                if account.org_id != org_id or app_secret not in (None, account.app_secret):
                    raise ValueError(f"appKey {key!r} already exists with another org or secret")
                return account
            secret = app_secret if app_secret is not None else str(uuid.uuid4())
            require_text(secret, "app_secret")
            self._ensure_org(db, org_id)
            account = Account(key, org_id, secret, self._clock.wall_ms())
            db.execute("INSERT INTO accounts VALUES (?, ?, ?, ?)", (key, org_id, secret, account.created_ms))
            return account

    def account(self, app_key: str) -> Account | None:
        row = self._one(_SELECT_ACCOUNT, (app_key,))
        return None if row is None else Account(*row)

    # access tokens

    def save_token(self, token_hash: str, grant: TokenGrant) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?)",
                (token_hash, grant.app_key, grant.expires_ms),
            )

    def token(self, token_hash: str) -> TokenGrant | None:
        row = self._one("SELECT app_key, expires_ms FROM tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else TokenGrant(*row)

    def delete_expired_tokens(self, now_ms: int) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM tokens WHERE expires_ms <= ?", (now_ms,)).rowcount

    # pipelines

    def create_pipeline(
        self, org_id: str, name: str, design: dict[str, Any], meta: dict[str, Any]
    ) -> PipelineRecord:
        require_text(org_id, "org_id")
        pipeline_id = str(uuid.uuid4())
        now = self._clock.wall_ms()
        with self._write() as db:
            self._ensure_org(db, org_id)
            db.execute(_INSERT_PIPELINE, (pipeline_id, org_id, name, _dump(design), _dump(meta), now, now))
            _add_history(db, pipeline_id, "DRAFT", now, None)
            record = self._get(db, org_id, pipeline_id)
        assert record is not None
        return record

    def save_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        *,
        name: str | None,
        design: dict[str, Any] | None,
        meta: dict[str, Any],
    ) -> PipelineRecord | None:
        with self._write() as db:
            record = self._get(db, org_id, pipeline_id)
            if record is None:
                return None
            name = record.name if name is None else name
            design_text = _dump(record.design if design is None else design)
            db.execute(
                "UPDATE pipelines SET name = ?, design = ?, meta = ?, updated_ms = ? WHERE pipeline_id = ?",
                (name, design_text, _dump({**record.meta, **meta}), self._clock.wall_ms(), pipeline_id),
            )
            return self._get(db, org_id, pipeline_id)

    def release_pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        now = self._clock.wall_ms()
        with self._write() as db:
            current = self._get(db, org_id, pipeline_id)
            if current is None:
                return None
            status = "PAUSED" if current.status == "PAUSED" else "PUBLISHED"
            db.execute(
                "UPDATE pipelines SET released = design, release_version = release_version + 1, "
                "status = ?, updated_ms = ? WHERE pipeline_id = ?",
                (status, now, pipeline_id),
            )
            if status != current.status:
                _add_history(db, pipeline_id, status, now, None)
            return self._get(db, org_id, pipeline_id)

    def pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        with self._read() as db:
            return self._get(db, org_id, pipeline_id)

    def pipelines(
        self, org_id: str, *, released: bool, offset: int, limit: int
    ) -> tuple[int, list[PipelineRecord]]:
        with self._read() as db:
            (total,) = db.execute(_COUNT_PIPELINES, (org_id, released)).fetchone()
            rows = db.execute(_PAGE_PIPELINES, (org_id, released, max(limit, 0), max(offset, 0))).fetchall()
        return total, [_record(row) for row in rows]

    def running_pipelines(self) -> list[PipelineRecord]:
        with self._read() as db:
            rows = db.execute(_RUNNING_PIPELINES).fetchall()
        return [_record(row) for row in rows]

    def set_status(
        self, org_id: str, pipeline_id: str, status: PipelineStatus, reason: str | None = None
    ) -> None:
        now = self._clock.wall_ms()
        with self._write() as db:
            changed = db.execute(
                "UPDATE pipelines SET status = ?, updated_ms = ? WHERE pipeline_id = ? AND org_id = ?",
                (status, now, pipeline_id, org_id),
            ).rowcount
            if changed:
                _add_history(db, pipeline_id, status, now, reason)

    def status_history(self, org_id: str, pipeline_id: str) -> list[StatusChange]:
        with self._read() as db:
            rows = db.execute(
                "SELECT h.pipeline_id, h.status, h.at_ms, h.reason FROM status_history h "
                "JOIN pipelines p ON p.pipeline_id = h.pipeline_id "
                "WHERE h.pipeline_id = ? AND p.org_id = ? ORDER BY h.seq",
                (pipeline_id, org_id),
            ).fetchall()
        return [StatusChange(*row) for row in rows]

    # audit

    def audit(self, entry: AuditEntry) -> None:
        with self._write() as db:
            e = entry
            db.execute(_INSERT_AUDIT, (e.org_id, e.actor, e.action, e.pipeline_id, _dump(e.detail), e.at_ms))

    def audit_log(self, org_id: str, pipeline_id: str | None = None) -> list[AuditEntry]:
        sql = "SELECT org_id, actor, action, pipeline_id, detail, at_ms FROM audit WHERE org_id = ?"
        params: tuple[str, ...] = (org_id,)
        if pipeline_id is not None:
            sql, params = sql + " AND pipeline_id = ?", (org_id, pipeline_id)
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY seq", params).fetchall()
        return [
            AuditEntry(o, actor, action, p, json.loads(detail), at)
            for o, actor, action, p, detail, at in rows
        ]

    # deletions

    def add_deletion(self, deletion: Deletion) -> None:
        with self._write() as db:
            db.execute(_INSERT_DELETION, astuple(deletion))

    def complete_deletion(self, org_id: str, deletion_id: str, keys: int, generation: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deletions SET keys = ?, generation = ? WHERE deletion_id = ? AND org_id = ?",
                (keys, generation, deletion_id, org_id),
            )

    def discard_deletion(self, org_id: str, deletion_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM deletions WHERE deletion_id = ? AND org_id = ?", (deletion_id, org_id))

    def deletions(self, org_id: str, pipeline_id: str) -> list[Deletion]:
        with self._read() as db:
            rows = db.execute(_SELECT_DELETIONS, (org_id, pipeline_id)).fetchall()
        return [Deletion(*row) for row in rows]

    def mark_restored(self, org_id: str, deletion_id: str, at_ms: int, generation: int) -> bool:
        with self._write() as db:
            return bool(
                db.execute(
                    "UPDATE deletions SET restored_ms = ?, restored_generation = ? "
                    "WHERE deletion_id = ? AND org_id = ? AND restored_ms IS NULL",
                    (at_ms, generation, deletion_id, org_id),
                ).rowcount
            )

    def drop_deletions(self, before_ms: int) -> list[Deletion]:
        with self._write() as db:
            rows = db.execute(f"{_SELECT_DELETION_ROWS}WHERE at_ms < ?", (before_ms,)).fetchall()
            db.execute("DELETE FROM deletions WHERE at_ms < ?", (before_ms,))
        return [Deletion(*row) for row in rows]

    # lifecycle lock

    @contextmanager
    def pipeline_lock(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        with self._pipeline_locks.hold(org_id, pipeline_id, timeout_s):
            yield

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

    def _one(self, sql: str, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        with self._read() as db:
            row: tuple[Any, ...] | None = db.execute(sql, params).fetchone()
        return row

    def _ensure_org(self, db: sqlite3.Connection, org_id: str) -> None:
        db.execute("INSERT OR IGNORE INTO orgs VALUES (?, ?)", (org_id, self._clock.wall_ms()))

    @staticmethod
    def _get(db: sqlite3.Connection, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        row = db.execute(_GET_PIPELINE, (pipeline_id, org_id)).fetchone()
        return None if row is None else _record(row)


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


def _add_history(
    db: sqlite3.Connection, pipeline_id: str, status: str, at_ms: int, reason: str | None
) -> None:
    db.execute(
        "INSERT INTO status_history (pipeline_id, status, at_ms, reason) VALUES (?, ?, ?, ?)",
        (pipeline_id, status, at_ms, reason),
    )


def _record(row: tuple[Any, ...]) -> PipelineRecord:
    pipeline_id, org_id, name, status, design, released, meta, release_version, updated_ms = row
    return PipelineRecord(
        pipeline_id=pipeline_id,
        org_id=org_id,
        name=name,
        status=cast(PipelineStatus, status),
        design=json.loads(design),
        released=None if released is None else json.loads(released),
        meta=json.loads(meta),
        release_version=release_version,
        updated_ms=updated_ms,
    )


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
