"""The catalog on a PostgreSQL database (psycopg 3), shared by every replica and machine that
reaches it: `--catalog postgresql://user:password@host:port/db` (any libpq URL).

The schema is `pgschema`'s Alembic revisions, brought to head at open under an advisory lock.
Connections come from a small pool, since FastAPI calls sync endpoints from a thread pool;
each is checked before it is lent, so a server restart costs no request. Every call is one
transaction: writes run at READ COMMITTED and lock the pipeline row they read before changing
it (`FOR UPDATE`), so concurrent writers, in this process or another, apply one after the
other as SQLite's `BEGIN IMMEDIATE` makes them; reads that take several statements (a count
and its page) run in one REPEATABLE READ snapshot. JSON is stored as `json`, not `jsonb`, so a
pipelineJson keeps its keys' order. Any failure of the server or the driver is
`CatalogUnavailable`; its messages are libpq's, which never carry the password. A pipeline's
lifecycle lock is a session advisory lock, keyed by the pipeline's lock digest.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, fields
from typing import Any, cast

import psycopg
import sqlalchemy.exc
from psycopg import sql
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool

from streamcalc.catalog import pgschema
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
from streamcalc.catalog.locks import busy, lock_digest
from streamcalc.clock import Clock
from streamcalc.errors import translate_errors

POOL_SIZE = 8
"""Connections at most per process: FastAPI's sync endpoints run on a thread pool."""
WAIT_TIMEOUT_S = 10.0
"""How long a call waits for a connection (the server down, the pool busy) before it fails."""

_DELETION_COLUMNS = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(Deletion))
"""Deletion's fields, in its order: the table's columns are named as they are."""
_SELECT_DELETIONS = sql.SQL("SELECT {} FROM deletions ").format(_DELETION_COLUMNS)
_INSERT_DELETION = sql.SQL("INSERT INTO deletions ({}) VALUES ({})").format(
    _DELETION_COLUMNS, sql.SQL(", ").join(sql.Placeholder() * len(fields(Deletion)))
)
_DROP_DELETIONS = sql.SQL(
    "WITH gone AS (DELETE FROM deletions WHERE at_ms < %s RETURNING seq, {0}) "
    "SELECT {0} FROM gone ORDER BY seq"
).format(_DELETION_COLUMNS)
_SELECT_PIPELINES = (
    "SELECT pipeline_id, org_id, name, status, design, released, meta, release_version, updated_ms "
    "FROM pipelines "
)
_GET_PIPELINE = f"{_SELECT_PIPELINES}WHERE pipeline_id = %s AND org_id = %s"
_LOCK_PIPELINE = f"{_GET_PIPELINE} FOR UPDATE"
_PAGE_PIPELINES = (
    f"{_SELECT_PIPELINES}WHERE org_id = %s AND (status != 'DRAFT') = %s ORDER BY seq LIMIT %s OFFSET %s"
)
_COUNT_PIPELINES = "SELECT count(*) FROM pipelines WHERE org_id = %s AND (status != 'DRAFT') = %s"
_SELECT_ACCOUNT = "SELECT app_key, org_id, app_secret, created_ms FROM accounts WHERE app_key = %s"


@translate_errors((psycopg.Error, sqlalchemy.exc.SQLAlchemyError), CatalogUnavailable, "PostgreSQL catalog")
class PostgresCatalog:
    def __init__(self, conninfo: str, clock: Clock) -> None:
        self._clock = clock
        self._conninfo = conninfo
        pgschema.upgrade(conninfo)
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "connect_timeout": pgschema.CONNECT_TIMEOUT_S},
            check=ConnectionPool.check_connection,
            timeout=WAIT_TIMEOUT_S,
            open=False,
        )
        self._pool.open(wait=True, timeout=WAIT_TIMEOUT_S)

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
        secret = app_secret if app_secret is not None else str(uuid.uuid4())
        require_text(secret, "app_secret")
        now = self._clock.wall_ms()
        with self._write() as db:
            # one statement decides, so two processes creating one appKey agree on who made it
            created = db.execute(
                "INSERT INTO accounts VALUES (%s, %s, %s, %s) ON CONFLICT (app_key) DO NOTHING",
                (key, org_id, secret, now),
            ).rowcount
            if created:
                self._ensure_org(db, org_id)
                return Account(key, org_id, secret, now)
            row = db.execute(_SELECT_ACCOUNT, (key,)).fetchone()
            assert row is not None
            account = Account(*row)
            if account.org_id != org_id or app_secret not in (None, account.app_secret):
                raise ValueError(f"appKey {key!r} already exists with another org or secret")
            return account

    def account(self, app_key: str) -> Account | None:
        with self._read() as db:
            row = db.execute(_SELECT_ACCOUNT, (app_key,)).fetchone()
        return None if row is None else Account(*row)

    # access tokens

    def save_token(self, token_hash: str, grant: TokenGrant) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens VALUES (%s, %s, %s) ON CONFLICT (token_hash) DO UPDATE "
                "SET app_key = excluded.app_key, expires_ms = excluded.expires_ms",
                (token_hash, grant.app_key, grant.expires_ms),
            )

    def token(self, token_hash: str) -> TokenGrant | None:
        with self._read() as db:
            row = db.execute(
                "SELECT app_key, expires_ms FROM tokens WHERE token_hash = %s", (token_hash,)
            ).fetchone()
        return None if row is None else TokenGrant(*row)

    def delete_expired_tokens(self, now_ms: int) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM tokens WHERE expires_ms <= %s", (now_ms,)).rowcount

    # pipelines

    def create_pipeline(
        self, org_id: str, name: str, design: dict[str, Any], meta: dict[str, Any]
    ) -> PipelineRecord:
        require_text(org_id, "org_id")
        pipeline_id = str(uuid.uuid4())
        now = self._clock.wall_ms()
        with self._write() as db:
            self._ensure_org(db, org_id)
            db.execute(
                "INSERT INTO pipelines (pipeline_id, org_id, name, status, design, released, meta, "
                "release_version, created_ms, updated_ms) "
                "VALUES (%s, %s, %s, 'DRAFT', %s, NULL, %s, 0, %s, %s)",
                (pipeline_id, org_id, name, _json(design), _json(meta), now, now),
            )
            _add_history(db, pipeline_id, "DRAFT", now, None)
            record = _get(db, org_id, pipeline_id)
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
            record = _get(db, org_id, pipeline_id, lock=True)
            if record is None:
                return None
            db.execute(
                "UPDATE pipelines SET name = %s, design = %s, meta = %s, updated_ms = %s "
                "WHERE pipeline_id = %s",
                (
                    record.name if name is None else name,
                    _json(record.design if design is None else design),
                    _json({**record.meta, **meta}),
                    self._clock.wall_ms(),
                    pipeline_id,
                ),
            )
            return _get(db, org_id, pipeline_id)

    def release_pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        now = self._clock.wall_ms()
        with self._write() as db:
            current = _get(db, org_id, pipeline_id, lock=True)
            if current is None:
                return None
            status = "PAUSED" if current.status == "PAUSED" else "PUBLISHED"
            db.execute(
                "UPDATE pipelines SET released = design, release_version = release_version + 1, "
                "status = %s, updated_ms = %s WHERE pipeline_id = %s",
                (status, now, pipeline_id),
            )
            if status != current.status:
                _add_history(db, pipeline_id, status, now, None)
            return _get(db, org_id, pipeline_id)

    def pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        with self._read() as db:
            return _get(db, org_id, pipeline_id)

    def pipelines(
        self, org_id: str, *, released: bool, offset: int, limit: int
    ) -> tuple[int, list[PipelineRecord]]:
        with self._read(snapshot=True) as db:
            row = db.execute(_COUNT_PIPELINES, (org_id, released)).fetchone()
            rows = db.execute(_PAGE_PIPELINES, (org_id, released, max(limit, 0), max(offset, 0))).fetchall()
        assert row is not None
        return row[0], [_record(r) for r in rows]

    def running_pipelines(self) -> list[PipelineRecord]:
        with self._read() as db:
            rows = db.execute(f"{_SELECT_PIPELINES}WHERE status = 'RUNNING' ORDER BY seq").fetchall()
        return [_record(row) for row in rows]

    def set_status(
        self, org_id: str, pipeline_id: str, status: PipelineStatus, reason: str | None = None
    ) -> None:
        now = self._clock.wall_ms()
        with self._write() as db:
            changed = db.execute(
                "UPDATE pipelines SET status = %s, updated_ms = %s WHERE pipeline_id = %s AND org_id = %s",
                (status, now, pipeline_id, org_id),
            ).rowcount
            if changed:
                _add_history(db, pipeline_id, status, now, reason)

    def status_history(self, org_id: str, pipeline_id: str) -> list[StatusChange]:
        with self._read() as db:
            rows = db.execute(
                "SELECT h.pipeline_id, h.status, h.at_ms, h.reason FROM status_history h "
                "JOIN pipelines p ON p.pipeline_id = h.pipeline_id "
                "WHERE h.pipeline_id = %s AND p.org_id = %s ORDER BY h.seq",
                (pipeline_id, org_id),
            ).fetchall()
        return [StatusChange(*row) for row in rows]

    # audit

    def audit(self, entry: AuditEntry) -> None:
        e = entry
        with self._write() as db:
            db.execute(
                "INSERT INTO audit (org_id, actor, action, pipeline_id, detail, at_ms) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (e.org_id, e.actor, e.action, e.pipeline_id, _json(e.detail), e.at_ms),
            )

    def audit_log(self, org_id: str, pipeline_id: str | None = None) -> list[AuditEntry]:
        with self._read() as db:
            rows = db.execute(
                "SELECT org_id, actor, action, pipeline_id, detail, at_ms FROM audit "
                "WHERE org_id = %s AND (%s::text IS NULL OR pipeline_id = %s) ORDER BY seq",
                (org_id, pipeline_id, pipeline_id),
            ).fetchall()
        return [AuditEntry(*row) for row in rows]

    # deletions

    def add_deletion(self, deletion: Deletion) -> None:
        with self._write() as db:
            db.execute(_INSERT_DELETION, astuple(deletion))

    def complete_deletion(self, org_id: str, deletion_id: str, keys: int, generation: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deletions SET keys = %s, generation = %s WHERE deletion_id = %s AND org_id = %s",
                (keys, generation, deletion_id, org_id),
            )

    def discard_deletion(self, org_id: str, deletion_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM deletions WHERE deletion_id = %s AND org_id = %s", (deletion_id, org_id))

    def deletions(self, org_id: str, pipeline_id: str) -> list[Deletion]:
        with self._read() as db:
            rows = db.execute(
                _SELECT_DELETIONS + sql.SQL("WHERE org_id = %s AND pipeline_id = %s ORDER BY seq DESC"),
                (org_id, pipeline_id),
            ).fetchall()
        return [Deletion(*row) for row in rows]

    def mark_restored(self, org_id: str, deletion_id: str, at_ms: int, generation: int) -> bool:
        with self._write() as db:
            return bool(
                db.execute(
                    "UPDATE deletions SET restored_ms = %s, restored_generation = %s "
                    "WHERE deletion_id = %s AND org_id = %s AND restored_ms IS NULL",
                    (at_ms, generation, deletion_id, org_id),
                ).rowcount
            )

    def drop_deletions(self, before_ms: int) -> list[Deletion]:
        with self._write() as db:
            rows = db.execute(_DROP_DELETIONS, (before_ms,)).fetchall()
        return [Deletion(*row) for row in rows]

    # lifecycle lock

    @contextmanager
    def pipeline_lock(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        """A session advisory lock on a connection of its own, not the pool's (a holder's own
        calls must never wait for the connection it holds); the server drops it with the
        session when the holder's process dies."""
        conn = self._lock_session(lock_digest(org_id, pipeline_id), pipeline_id, timeout_s)
        try:
            yield
        finally:
            conn.close()  # ends the session, which releases the lock

    def close(self) -> None:
        self._pool.close()

    # internals

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One READ COMMITTED transaction, committed when the block ends without an exception."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A read-only transaction; `snapshot`: every statement inside sees the same data."""
        with self._pool.connection() as conn, conn.transaction():
            isolation = "REPEATABLE READ" if snapshot else "READ COMMITTED"
            conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation} READ ONLY")
            yield conn

    def _lock_session(self, digest: bytes, pipeline_id: str, timeout_s: float) -> psycopg.Connection[Any]:
        key = int.from_bytes(digest[:8], "big", signed=True)
        try:
            conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=pgschema.CONNECT_TIMEOUT_S
            )
        except psycopg.Error as e:
            raise CatalogUnavailable(f"PostgreSQL catalog: {e}") from e
        try:
            # lock_timeout bounds an advisory lock's wait too; 0 would mean no bound
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(timeout_s * 1000))}ms",)
            )
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            conn.close()
            raise busy(pipeline_id, timeout_s) from None
        except psycopg.Error as e:
            conn.close()
            raise CatalogUnavailable(f"PostgreSQL catalog: {e}") from e
        return conn

    def _ensure_org(self, db: psycopg.Connection[Any], org_id: str) -> None:
        db.execute(
            "INSERT INTO orgs VALUES (%s, %s) ON CONFLICT (org_id) DO NOTHING",
            (org_id, self._clock.wall_ms()),
        )


def open_url(place: str, clock: Clock) -> PostgresCatalog:
    """The catalog on the database `place` names, its schema brought to head (the composition
    root's entry point)."""
    return PostgresCatalog(place, clock)


def _get(
    db: psycopg.Connection[Any], org_id: str, pipeline_id: str, *, lock: bool = False
) -> PipelineRecord | None:
    """The pipeline if it is in the org; `lock`: its row is held until the transaction ends."""
    row = db.execute(_LOCK_PIPELINE if lock else _GET_PIPELINE, (pipeline_id, org_id)).fetchone()
    return None if row is None else _record(row)


def _add_history(
    db: psycopg.Connection[Any], pipeline_id: str, status: str, at_ms: int, reason: str | None
) -> None:
    db.execute(
        "INSERT INTO status_history (pipeline_id, status, at_ms, reason) VALUES (%s, %s, %s, %s)",
        (pipeline_id, status, at_ms, reason),
    )


def _record(row: tuple[Any, ...]) -> PipelineRecord:
    pipeline_id, org_id, name, status, design, released, meta, release_version, updated_ms = row
    return PipelineRecord(
        pipeline_id=pipeline_id,
        org_id=org_id,
        name=name,
        status=cast(PipelineStatus, status),
        design=design,
        released=released,
        meta=meta,
        release_version=release_version,
        updated_ms=updated_ms,
    )


def _json(value: dict[str, Any]) -> Json:
    return Json(value, dumps=lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")))
