"""The Catalog contract in SQL, written once for the SQLite and the PostgreSQL catalogs.

The statements are the dialect both speak (SQLite 3.35+: ON CONFLICT, RETURNING), with
sqlite3's `?` placeholders (the PostgreSQL catalog hands psycopg `%s`). JSON goes in and comes
out as text, so what a caller gets back is a fresh copy, as json.loads gives it. A subclass
supplies the transactions (`_write`, `_read`), the lock a write takes on the pipeline row it
reads before changing it (`_LOCK_ROW`), and the lifecycle locks (`_pipeline_locks`).
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple
from typing import Any, Protocol, cast

from streamcalc.catalog.base import (
    Account,
    AuditEntry,
    Deletion,
    PipelineRecord,
    PipelineStatus,
    StatusChange,
    TokenGrant,
    require_text,
)
from streamcalc.clock import Clock

_SELECT_DELETIONS = (  # Deletion's fields, in its order
    "SELECT deletion_id, org_id, pipeline_id, stage, state_name, assets, points, keys, actor, at_ms, "
    "status_changes, release_version, generation, restored_ms, restored_generation FROM deletions "
)
_INSERT_DELETION = (
    "INSERT INTO deletions (deletion_id, org_id, pipeline_id, stage, state_name, assets, points, keys, "
    "actor, at_ms, status_changes, release_version, generation, restored_ms, restored_generation) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DROP_DELETIONS = (  # seq, then Deletion's fields
    "DELETE FROM deletions WHERE at_ms < ? RETURNING seq, deletion_id, org_id, pipeline_id, stage, "
    "state_name, assets, points, keys, actor, at_ms, status_changes, release_version, generation, "
    "restored_ms, restored_generation"
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


class Cursor(Protocol):
    """What both drivers' cursors give back."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """A connection inside one transaction, taking `?` placeholders."""

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Cursor: ...


class PipelineLocks(Protocol):
    def hold(self, org_id: str, pipeline_id: str, timeout_s: float) -> AbstractContextManager[None]: ...


class SqlCatalog(ABC):
    _LOCK_ROW = ""
    """Appended to the read of a pipeline that a write will change (PostgreSQL: FOR UPDATE)."""

    def __init__(self, clock: Clock, pipeline_locks: PipelineLocks) -> None:
        self._clock = clock
        self._pipeline_locks = pipeline_locks

    @abstractmethod
    def _write(self) -> AbstractContextManager[Db]:
        """A transaction whose writes apply one after another's, committed if the block succeeds."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Db]:
        """A transaction in which every statement sees the same data (a count and its page agree)."""

    # orgs and accounts

    def ensure_org(self, org_id: str) -> None:
        require_text(org_id, "org_id")
        with self._write() as db:
            self._ensure_org(db, org_id)

    def orgs(self) -> list[str]:
        with self._read() as db:
            return [org for (org,) in db.execute("SELECT org_id FROM orgs ORDER BY org_id").fetchall()]

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
                "INSERT INTO accounts VALUES (?, ?, ?, ?) ON CONFLICT (app_key) DO NOTHING",
                (key, org_id, secret, now),
            ).rowcount
            if created:
                self._ensure_org(db, org_id)
                return Account(key, org_id, secret, now)
            account = Account(*db.execute(_SELECT_ACCOUNT, (key,)).fetchone())
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
                "INSERT INTO tokens VALUES (?, ?, ?) ON CONFLICT (token_hash) DO UPDATE "
                "SET app_key = excluded.app_key, expires_ms = excluded.expires_ms",
                (token_hash, grant.app_key, grant.expires_ms),
            )

    def token(self, token_hash: str) -> TokenGrant | None:
        with self._read() as db:
            row = db.execute(
                "SELECT app_key, expires_ms FROM tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
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
            record = self._get(db, org_id, pipeline_id, lock=True)
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
            current = self._get(db, org_id, pipeline_id, lock=True)
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
        e = entry
        with self._write() as db:
            db.execute(_INSERT_AUDIT, (e.org_id, e.actor, e.action, e.pipeline_id, _dump(e.detail), e.at_ms))

    def audit_log(self, org_id: str, pipeline_id: str | None = None) -> list[AuditEntry]:
        with self._read() as db:
            rows = db.execute(
                "SELECT org_id, actor, action, pipeline_id, detail, at_ms FROM audit "
                "WHERE org_id = ? AND (CAST(? AS TEXT) IS NULL OR pipeline_id = ?) ORDER BY seq",
                (org_id, pipeline_id, pipeline_id),
            ).fetchall()
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
            rows = db.execute(
                f"{_SELECT_DELETIONS}WHERE org_id = ? AND pipeline_id = ? ORDER BY seq DESC",
                (org_id, pipeline_id),
            ).fetchall()
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
        """One statement finds and deletes them, so a deletion listed meanwhile is either both
        returned and dropped or neither."""
        with self._write() as db:
            rows = db.execute(_DROP_DELETIONS, (before_ms,)).fetchall()
        return [Deletion(*row[1:]) for row in sorted(rows)]

    # lifecycle lock

    @contextmanager
    def pipeline_lock(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        with self._pipeline_locks.hold(org_id, pipeline_id, timeout_s):
            yield

    # internals

    def _ensure_org(self, db: Db, org_id: str) -> None:
        db.execute(
            "INSERT INTO orgs VALUES (?, ?) ON CONFLICT (org_id) DO NOTHING", (org_id, self._clock.wall_ms())
        )

    def _get(self, db: Db, org_id: str, pipeline_id: str, *, lock: bool = False) -> PipelineRecord | None:
        """The pipeline if it is in the org; `lock`: it is about to be changed."""
        row = db.execute(_GET_PIPELINE + (self._LOCK_ROW if lock else ""), (pipeline_id, org_id)).fetchone()
        return None if row is None else _record(row)


def _add_history(db: Db, pipeline_id: str, status: str, at_ms: int, reason: str | None) -> None:
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
