"""The catalog on a PostgreSQL database (psycopg 3), shared by every replica and machine that
reaches it: `--catalog postgresql://user:password@host:port/db` (any libpq URL).

The statements are `sql.SqlCatalog`'s, shared with the SQLite catalog. The schema is
`pgschema`'s Alembic revisions, brought to head at open under an advisory lock. Connections
come from a small pool, since FastAPI calls sync endpoints from a thread pool; each is checked
before it is lent, so a server restart costs no request. Every call is one transaction:
writes run at READ COMMITTED and lock the pipeline row they read before changing it
(`FOR UPDATE`), so concurrent writers, in this process or another, apply one after the other
as SQLite's `BEGIN IMMEDIATE` makes them; reads run in one REPEATABLE READ snapshot (a count
and its page agree). JSON is stored as `json`, not `jsonb`, so a pipelineJson keeps its keys'
order. Any failure of the server or the driver is `CatalogUnavailable`; its messages are
libpq's, which never carry the password. A pipeline's lifecycle lock is a session advisory
lock (`AdvisoryLocks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy.exc
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from streamcalc.catalog import pgschema
from streamcalc.catalog.base import CatalogUnavailable
from streamcalc.catalog.locks import busy, lock_digest
from streamcalc.catalog.sql import SqlCatalog
from streamcalc.clock import Clock
from streamcalc.errors import translate_errors

POOL_SIZE = 8
"""Connections at most per process: FastAPI's sync endpoints run on a thread pool."""
WAIT_TIMEOUT_S = 10.0
"""How long a call waits for a connection (the server down, the pool busy) before it fails."""


@translate_errors((psycopg.Error, sqlalchemy.exc.SQLAlchemyError), CatalogUnavailable, "PostgreSQL catalog")
class PostgresCatalog(SqlCatalog):
    _LOCK_ROW = " FOR UPDATE"

    def __init__(self, conninfo: str, clock: Clock) -> None:
        super().__init__(clock, AdvisoryLocks(conninfo))
        pgschema.upgrade(conninfo)
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "connect_timeout": pgschema.CONNECT_TIMEOUT_S},
            configure=_json_as_text,
            check=ConnectionPool.check_connection,
            timeout=WAIT_TIMEOUT_S,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=WAIT_TIMEOUT_S)
        except BaseException:
            self._pool.close()  # its threads would otherwise keep retrying for a catalog never used
            raise

    def close(self) -> None:
        self._pool.close()

    # internals

    @contextmanager
    def _write(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Qmark(conn)

    @contextmanager
    def _read(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield _Qmark(conn)


class AdvisoryLocks:
    """Pipeline lifecycle locks as session advisory locks, keyed by 8 bytes of the pipeline's
    lock digest. Each is held on a connection of its own, not the pool's: a holder's own
    catalog calls must never wait for the connection it holds. Closing that connection ends
    the session, which releases the lock; so does the death of the holder's process."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    @contextmanager
    def hold(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        conn = self._lock(lock_digest(org_id, pipeline_id), pipeline_id, timeout_s)
        try:
            yield
        finally:
            conn.close()  # ends the session, which releases the lock

    def _lock(self, digest: bytes, pipeline_id: str, timeout_s: float) -> psycopg.Connection[Any]:
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


class _Qmark:
    """A psycopg connection that takes sqlite3's `?` placeholders, so both catalogs run one
    text of each statement (none holds a literal `?` or `%`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, query: str, params: tuple[Any, ...] = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(query.replace("?", "%s"), params)


def _json_as_text(conn: psycopg.Connection[Any]) -> None:
    """`json` columns read as their text, as SQLite gives them (SqlCatalog parses them)."""
    conn.adapters.register_loader("json", TextLoader)


def open_url(place: str, clock: Clock) -> PostgresCatalog:
    """The catalog on the database `place` names, its schema brought to head (the composition
    root's entry point)."""
    return PostgresCatalog(place, clock)
