"""The in-memory catalog: the SQLite catalog's behaviour in one process, for tests and for a
throwaway API. Nothing survives the process.

Designs, meta and audit details are kept as the JSON text SQLite would store, so what goes in
comes out exactly as it does from SQLite (a fresh copy; tuples as lists; a value that is no
JSON refused). One lock makes every call one step, as a SQLite transaction is.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

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
from streamcalc.catalog.locks import ThreadLocks
from streamcalc.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True)
class _Pipeline:
    pipeline_id: str
    org_id: str
    name: str
    status: PipelineStatus
    design: str
    released: str | None
    meta: str
    release_version: int
    updated_ms: int

    def record(self) -> PipelineRecord:
        return PipelineRecord(
            pipeline_id=self.pipeline_id,
            org_id=self.org_id,
            name=self.name,
            status=self.status,
            design=json.loads(self.design),
            released=None if self.released is None else json.loads(self.released),
            meta=json.loads(self.meta),
            release_version=self.release_version,
            updated_ms=self.updated_ms,
        )


class MemoryCatalog:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pipeline_locks = ThreadLocks()
        self._orgs: dict[str, int] = {}
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, TokenGrant] = {}
        self._pipelines: dict[str, _Pipeline] = {}
        """In creation order: dicts keep it, and pages and listings are oldest first."""
        self._history: dict[str, list[StatusChange]] = {}
        self._audit: list[tuple[AuditEntry, str]] = []
        self._deletions: dict[str, Deletion] = {}
        """In the order made; values as immutable tuples, so what is handed out is a copy."""

    # orgs and accounts

    def ensure_org(self, org_id: str) -> None:
        require_text(org_id, "org_id")
        with self._lock:
            self._ensure_org(org_id)

    def orgs(self) -> list[str]:
        with self._lock:
            return sorted(self._orgs)

    def create_account(
        self, org_id: str, app_key: str | None = None, app_secret: str | None = None
    ) -> Account:
        require_text(org_id, "org_id")
        key = app_key if app_key is not None else str(uuid.uuid4())
        require_text(key, "app_key")
        with self._lock:
            existing = self._accounts.get(key)
            if existing is not None:
                if existing.org_id != org_id or app_secret not in (None, existing.app_secret):
                    raise ValueError(f"appKey {key!r} already exists with another org or secret")
                return existing
            secret = app_secret if app_secret is not None else str(uuid.uuid4())
            require_text(secret, "app_secret")
            self._ensure_org(org_id)
            account = self._accounts[key] = Account(key, org_id, secret, self._clock.wall_ms())
            return account

    def account(self, app_key: str) -> Account | None:
        with self._lock:
            return self._accounts.get(app_key)

    # access tokens

    def save_token(self, token_hash: str, grant: TokenGrant) -> None:
        with self._lock:
            self._tokens[token_hash] = grant

    def token(self, token_hash: str) -> TokenGrant | None:
        with self._lock:
            return self._tokens.get(token_hash)

    def delete_expired_tokens(self, now_ms: int) -> int:
        with self._lock:
            expired = [h for h, grant in self._tokens.items() if grant.expires_ms <= now_ms]
            for token_hash in expired:
                del self._tokens[token_hash]
        return len(expired)

    # pipelines

    def create_pipeline(
        self, org_id: str, name: str, design: dict[str, Any], meta: dict[str, Any]
    ) -> PipelineRecord:
        require_text(org_id, "org_id")
        pipeline_id = str(uuid.uuid4())
        now = self._clock.wall_ms()
        row = _Pipeline(pipeline_id, org_id, name, "DRAFT", _dump(design), None, _dump(meta), 0, now)
        with self._lock:
            self._ensure_org(org_id)
            self._pipelines[pipeline_id] = row
            self._history[pipeline_id] = [StatusChange(pipeline_id, "DRAFT", now)]
        return row.record()

    def save_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        *,
        name: str | None,
        design: dict[str, Any] | None,
        meta: dict[str, Any],
    ) -> PipelineRecord | None:
        with self._lock:
            row = self._get(org_id, pipeline_id)
            if row is None:
                return None
            row = self._pipelines[pipeline_id] = replace(
                row,
                name=row.name if name is None else name,
                design=row.design if design is None else _dump(design),
                meta=_dump({**json.loads(row.meta), **meta}),
                updated_ms=self._clock.wall_ms(),
            )
        return row.record()

    def release_pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        now = self._clock.wall_ms()
        with self._lock:
            row = self._get(org_id, pipeline_id)
            if row is None:
                return None
            status: PipelineStatus = "PAUSED" if row.status == "PAUSED" else "PUBLISHED"
            if status != row.status:
                self._history[pipeline_id].append(StatusChange(pipeline_id, status, now))
            row = self._pipelines[pipeline_id] = replace(
                row,
                released=row.design,
                release_version=row.release_version + 1,
                status=status,
                updated_ms=now,
            )
        return row.record()

    def pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        with self._lock:
            row = self._get(org_id, pipeline_id)
        return None if row is None else row.record()

    def pipelines(
        self, org_id: str, *, released: bool, offset: int, limit: int
    ) -> tuple[int, list[PipelineRecord]]:
        with self._lock:
            rows = [
                r
                for r in self._pipelines.values()
                if r.org_id == org_id and (r.status != "DRAFT") == released
            ]
        start = max(offset, 0)
        return len(rows), [r.record() for r in rows[start : start + max(limit, 0)]]

    def running_pipelines(self) -> list[PipelineRecord]:
        with self._lock:
            rows = [r for r in self._pipelines.values() if r.status == "RUNNING"]
        return [r.record() for r in rows]

    def set_status(
        self, org_id: str, pipeline_id: str, status: PipelineStatus, reason: str | None = None
    ) -> None:
        now = self._clock.wall_ms()
        with self._lock:
            row = self._get(org_id, pipeline_id)
            if row is not None:
                self._pipelines[pipeline_id] = replace(row, status=status, updated_ms=now)
                self._history[pipeline_id].append(StatusChange(pipeline_id, status, now, reason))

    def status_history(self, org_id: str, pipeline_id: str) -> list[StatusChange]:
        with self._lock:
            return [] if self._get(org_id, pipeline_id) is None else list(self._history[pipeline_id])

    # audit

    def audit(self, entry: AuditEntry) -> None:
        detail = _dump(entry.detail)
        with self._lock:
            self._audit.append((entry, detail))

    def audit_log(self, org_id: str, pipeline_id: str | None = None) -> list[AuditEntry]:
        with self._lock:
            chosen = [
                (e, detail)
                for e, detail in self._audit
                if e.org_id == org_id and pipeline_id in (None, e.pipeline_id)
            ]
        return [replace(e, detail=json.loads(detail)) for e, detail in chosen]

    # deletions

    def add_deletion(self, deletion: Deletion) -> None:
        with self._lock:
            if deletion.deletion_id in self._deletions:
                raise ValueError(f"deletion {deletion.deletion_id} already exists")
            self._deletions[deletion.deletion_id] = deletion

    def complete_deletion(self, org_id: str, deletion_id: str, keys: int, generation: int) -> None:
        with self._lock:
            self._update(org_id, deletion_id, lambda d: replace(d, keys=keys, generation=generation))

    def discard_deletion(self, org_id: str, deletion_id: str) -> None:
        with self._lock:
            if self._deletion(org_id, deletion_id) is not None:
                del self._deletions[deletion_id]

    def deletions(self, org_id: str, pipeline_id: str) -> list[Deletion]:
        with self._lock:
            chosen = [
                d for d in self._deletions.values() if (d.org_id, d.pipeline_id) == (org_id, pipeline_id)
            ]
        return chosen[::-1]

    def mark_restored(self, org_id: str, deletion_id: str, at_ms: int, generation: int) -> bool:
        with self._lock:
            deletion = self._deletion(org_id, deletion_id)
            if deletion is None or deletion.restored_ms is not None:
                return False
            self._update(
                org_id, deletion_id, lambda d: replace(d, restored_ms=at_ms, restored_generation=generation)
            )
            return True

    def drop_deletions(self, before_ms: int) -> list[Deletion]:
        with self._lock:
            old = [d for d in self._deletions.values() if d.at_ms < before_ms]
            for deletion in old:
                del self._deletions[deletion.deletion_id]
        return old

    # lifecycle lock

    @contextmanager
    def pipeline_lock(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        with self._pipeline_locks.hold(org_id, pipeline_id, timeout_s):
            yield

    def close(self) -> None:
        """Nothing to release."""

    # internals

    def _ensure_org(self, org_id: str) -> None:
        self._orgs.setdefault(org_id, self._clock.wall_ms())

    def _deletion(self, org_id: str, deletion_id: str) -> Deletion | None:
        found = self._deletions.get(deletion_id)
        return found if found is not None and found.org_id == org_id else None

    def _update(self, org_id: str, deletion_id: str, change: Callable[[Deletion], Deletion]) -> None:
        deletion = self._deletion(org_id, deletion_id)
        if deletion is not None:
            self._deletions[deletion_id] = change(deletion)

    def _get(self, org_id: str, pipeline_id: str) -> _Pipeline | None:
        row = self._pipelines.get(pipeline_id)
        return row if row is not None and row.org_id == org_id else None


def open_url(place: str, clock: Clock) -> MemoryCatalog:
    """The catalog of a `memory` URL (which has no place)."""
    return MemoryCatalog(clock)


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


__all__ = ["MemoryCatalog", "open_url"]
