"""The catalog contract: orgs, service accounts, tokens, pipelines, status history, audit,
and the deletions of stage state kept for undo.

One implementation per database (SQLite now; PostgreSQL later) behind this Protocol. Every
pipeline read takes the caller's orgId and answers None for a pipeline of another org, so
org isolation (architecture invariant 5) is enforced at the lowest layer, not per route.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from streamcalc.errors import StreamcalcError


class CatalogUnavailable(StreamcalcError):
    """The catalog's database failed (a disk, a lock held too long); the cause is chained."""


class PipelineBusy(StreamcalcError):
    """Another caller held the pipeline's lifecycle lock (`Catalog.pipeline_lock`) for longer than
    the caller would wait."""


PipelineStatus = Literal["DRAFT", "PUBLISHED", "RUNNING", "PAUSED", "STOPPED", "RUN_ERROR"]
"""DRAFT = saved, never released (EnOS lists these with ifReleased=false)."""


@dataclass(frozen=True)
class Account:
    app_key: str
    org_id: str
    app_secret: str
    """Kept retrievable: request signatures are sha256(... + appSecret), so the server needs it."""
    created_ms: int


@dataclass(frozen=True)
class TokenGrant:
    app_key: str
    expires_ms: int


@dataclass(frozen=True)
class PipelineRecord:
    pipeline_id: str
    org_id: str
    name: str
    status: PipelineStatus
    design: dict[str, Any]
    """The saved (design) pipelineJson."""
    released: dict[str, Any] | None
    """The pipelineJson of the last release; what start runs."""
    meta: dict[str, Any] = field(default_factory=dict)
    """EnOS fields kept as given: version, templateType, templateName, messageChannel, desc, ..."""
    release_version: int = 0
    updated_ms: int = 0


@dataclass(frozen=True)
class StatusChange:
    pipeline_id: str
    status: PipelineStatus
    at_ms: int
    reason: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    org_id: str
    actor: str
    """The appKey that made the call."""
    action: str
    pipeline_id: str | None
    detail: dict[str, Any]
    at_ms: int


@dataclass(frozen=True)
class Deletion:
    """One Delete Stage State, listed so it can be undone. Its values are kept by the state
    store, under `deletion_id` (`StateStore.delete_keys(keep=...)`), beside the state they
    came from: one atomic step deletes and keeps them."""

    deletion_id: str
    org_id: str
    pipeline_id: str
    stage: str
    """The stageInstanceName asked."""
    state_name: str
    """Where that stage's state lives in the store (a shared state's own name)."""
    assets: int
    points: int
    keys: int
    """Keys that held state, so were deleted (and are kept); 0 until the delete happened."""
    actor: str
    at_ms: int
    status_changes: int
    """The pipeline's status history length and release version when deleting: a restore
    needs both unchanged (paused since, not released again)."""
    release_version: int
    generation: int | None = None
    """The state store's generation right after the delete; None until the delete happened."""
    restored_ms: int | None = None
    restored_generation: int | None = None
    """The store's generation right after the restore."""


def require_text(value: str, name: str) -> None:
    """ValueError unless `value` is a string with more than whitespace: the rule every catalog
    applies to org ids, appKeys and appSecrets."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")


class Catalog(Protocol):
    # orgs and accounts
    def ensure_org(self, org_id: str) -> None: ...

    def orgs(self) -> list[str]:
        """Every org id, sorted (an operator's view across orgs: /metrics)."""
        ...

    def create_account(
        self, org_id: str, app_key: str | None = None, app_secret: str | None = None
    ) -> Account:
        """A new service account of `org_id` (created if missing); keys are generated when not given.
        An existing app_key with a different org or secret raises ValueError."""
        ...

    def account(self, app_key: str) -> Account | None: ...

    # access tokens (stored as sha256 hex of the token, never the token itself)
    def save_token(self, token_hash: str, grant: TokenGrant) -> None: ...

    def token(self, token_hash: str) -> TokenGrant | None: ...

    def delete_expired_tokens(self, now_ms: int) -> int: ...

    # pipelines (every read and write is scoped to org_id)
    def create_pipeline(
        self, org_id: str, name: str, design: dict[str, Any], meta: dict[str, Any]
    ) -> PipelineRecord: ...

    def save_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        *,
        name: str | None,
        design: dict[str, Any] | None,
        meta: dict[str, Any],
    ) -> PipelineRecord | None:
        """Update the design version (only the fields given; meta is merged). None if not in org."""
        ...

    def release_pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        """Copy design to released, bump release_version, status PUBLISHED (a PAUSED pipeline
        stays PAUSED: it keeps its position and state, and resumes with the new release).
        None if not in org."""
        ...

    def pipeline(self, org_id: str, pipeline_id: str) -> PipelineRecord | None: ...

    def pipelines(
        self, org_id: str, *, released: bool, offset: int, limit: int
    ) -> tuple[int, list[PipelineRecord]]:
        """(total count, one page) of released (status != DRAFT) or draft pipelines, oldest first."""
        ...

    def running_pipelines(self) -> list[PipelineRecord]:
        """Pipelines of every org whose status is RUNNING (to resume after a service restart)."""
        ...

    def set_status(
        self, org_id: str, pipeline_id: str, status: PipelineStatus, reason: str | None = None
    ) -> None: ...

    def status_history(self, org_id: str, pipeline_id: str) -> list[StatusChange]: ...

    # audit
    def audit(self, entry: AuditEntry) -> None: ...

    def audit_log(self, org_id: str, pipeline_id: str | None = None) -> list[AuditEntry]: ...

    # deletions of stage state, kept for undo (every call but the sweep is scoped to org_id)
    def add_deletion(self, deletion: Deletion) -> None:
        """List a deletion about to happen (its `generation` None)."""
        ...

    def complete_deletion(self, org_id: str, deletion_id: str, keys: int, generation: int) -> None:
        """The delete happened: record how many keys it deleted and the store generation it left."""
        ...

    def discard_deletion(self, org_id: str, deletion_id: str) -> None:
        """Forget a deletion whose delete failed or found nothing."""
        ...

    def deletions(self, org_id: str, pipeline_id: str) -> list[Deletion]:
        """The pipeline's deletions, newest first."""
        ...

    def mark_restored(self, org_id: str, deletion_id: str, at_ms: int, generation: int) -> bool:
        """Record that the deletion was restored; False (and nothing changed) if it already was,
        or is not in the org."""
        ...

    def drop_deletions(self, before_ms: int) -> list[Deletion]:
        """Drop every org's deletions made before `before_ms` (retention); returns them, so their
        kept values can be dropped from the state stores too."""
        ...

    # lifecycle lock
    @contextmanager
    def pipeline_lock(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        """Held by one caller at a time among every thread and process on this catalog, so the
        lifecycle operations on one pipeline (start, pause, stop, delete, reset) run one after
        another; `PipelineBusy` after waiting `timeout_s`. Released when the block ends or the
        holder's process dies. Not reentrant: a holder asking again waits for itself."""
        ...

    def close(self) -> None: ...
