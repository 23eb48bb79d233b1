"""Undo of Delete Stage State: every delete keeps the values it removes, for a while.

A delete reads the values of its keys, keeps them in the catalog as a pending deletion, then
deletes, then records the store generation it left. If keeping them fails nothing is deleted;
if the delete fails while the values are still in the store, the deletion is dropped (one whose
outcome is unknown stays pending: listed, never restorable).

A deletion is restorable while the pipeline is as that delete left it: still PAUSED, with no
status change and no release since (the status history length and release version are kept),
and its state store at the generation that delete left, or that the restore of the next
deletion left. So the deletions of one pause are undone newest first, each restore making the
one before it restorable. Their keys never overlap: a later delete only finds keys that held
state after the earlier one.

The caller holds the service's lifecycle lock, so no start, stop or other delete or restore
comes between a check and the change it allows.
"""

from __future__ import annotations

import uuid
from typing import Any

from streamcalc.catalog import Catalog, DeletedItem, Deletion, PipelineRecord
from streamcalc.clock import Clock
from streamcalc.service import codes
from streamcalc.service.errors import ApiError
from streamcalc.service.stage_state import StateRequest
from streamcalc.state import StateStore, StateUnavailable


class StateUndo:
    def __init__(self, catalog: Catalog, clock: Clock, retention_s: int) -> None:
        self._catalog = catalog
        self._clock = clock
        self._retention_ms = retention_s * 1000

    def delete(
        self, pipeline: PipelineRecord, store: StateStore, state_name: str, request: StateRequest, actor: str
    ) -> tuple[int, str | None]:
        """Delete the request's keys, keeping their values; (keys deleted, the deletion's id).
        No key holds state: nothing is deleted or kept, and the id is None."""
        self._drop_expired()
        kept = held_values(store, state_name, request)
        if not kept:
            return 0, None
        deletion = Deletion(
            deletion_id=str(uuid.uuid4()),
            org_id=pipeline.org_id,
            pipeline_id=pipeline.pipeline_id,
            stage=request.stage,
            state_name=state_name,
            assets=len(request.asset_ids),
            points=len(request.point_ids),
            keys=len(kept),
            actor=actor,
            at_ms=self._clock.wall_ms(),
            status_changes=self._status_changes(pipeline),
            release_version=pipeline.release_version,
        )
        self._catalog.add_deletion(deletion, kept)  # fails: nothing deleted
        try:
            deleted = store.delete_keys(state_name, request.asset_ids, request.point_ids)
        except Exception:
            if _still_held(store, state_name, kept):
                self._catalog.discard_deletion(pipeline.org_id, deletion.deletion_id)
            raise
        self._catalog.complete_deletion(pipeline.org_id, deletion.deletion_id, store.checkpoint().generation)
        return deleted, deletion.deletion_id

    def deletions(self, pipeline: PipelineRecord, store: StateStore) -> list[dict[str, Any]]:
        """The pipeline's deletions, newest first, each with whether it can be restored now."""
        self._drop_expired()
        listed = self._catalog.deletions(pipeline.org_id, pipeline.pipeline_id)
        generation, changes = store.checkpoint().generation, self._status_changes(pipeline)
        return [
            _summary(d, refusal(d, listed[:i], pipeline, changes, generation) is None)
            for i, d in enumerate(listed)
        ]

    def restore(self, pipeline: PipelineRecord, store: StateStore, deletion_id: str, actor: str) -> Deletion:
        """Put a deletion's values back; 61199 naming why if it cannot be restored now."""
        self._drop_expired()
        listed = self._catalog.deletions(pipeline.org_id, pipeline.pipeline_id)
        index = next((i for i, d in enumerate(listed) if d.deletion_id == deletion_id), None)
        values = None if index is None else self._catalog.deleted_values(pipeline.org_id, deletion_id)
        if index is None or values is None:
            raise ApiError(
                codes.STAGE_STATE_OTHER,
                f"No deletion {deletion_id} of pipeline {pipeline.pipeline_id} "
                f"(deletions are kept {self._retention_ms // 1000} s)",
            )
        deletion = listed[index]
        why = refusal(
            deletion, listed[:index], pipeline, self._status_changes(pipeline), store.checkpoint().generation
        )
        if why is not None:
            raise ApiError(codes.STAGE_STATE_OTHER, f"Deletion {deletion_id} cannot be restored: {why}")
        store.put_keys(deletion.state_name, values)
        self._catalog.mark_restored(
            pipeline.org_id, deletion_id, self._clock.wall_ms(), store.checkpoint().generation
        )
        return deletion

    def _status_changes(self, pipeline: PipelineRecord) -> int:
        return len(self._catalog.status_history(pipeline.org_id, pipeline.pipeline_id))

    def _drop_expired(self) -> None:
        self._catalog.drop_deletions(self._clock.wall_ms() - self._retention_ms)


def held_values(store: StateStore, state_name: str, request: StateRequest) -> list[DeletedItem]:
    """(assetId, pointId, value) of the request's keys that hold state: one read of them all."""
    keys = [(a, p) for a in request.asset_ids for p in request.point_ids]
    values = store.get_many(state_name, keys)
    return [(a, p, v) for (a, p), v in zip(keys, values, strict=True) if v is not None]


def refusal(
    deletion: Deletion, newer: list[Deletion], pipeline: PipelineRecord, status_changes: int, generation: int
) -> str | None:
    """Why `deletion` cannot be restored now, or None if it can (see the module doc); `newer`
    are the pipeline's later deletions, newest first."""
    if deletion.restored_ms is not None:
        return "it was restored already"
    if deletion.generation is None:
        return "its delete did not complete"
    if pipeline.status != "PAUSED":
        return f"the pipeline is {pipeline.status}; a deletion is restorable only while PAUSED since it"
    if (status_changes, pipeline.release_version) != (deletion.status_changes, deletion.release_version):
        return "the pipeline was started, stopped or released since"
    pending = [d.deletion_id for d in newer if d.restored_ms is None]
    if pending:
        return f"restore the later deletion {pending[0]} first (newest first)"
    left_by = newer[-1].restored_generation if newer else deletion.generation
    if generation != left_by:
        return "the state changed since (e.g. an offset reset)"
    return None


def _still_held(store: StateStore, state_name: str, kept: list[DeletedItem]) -> bool:
    """Whether every kept value is still in the store (a failed delete deleted nothing)."""
    try:
        values = store.get_many(state_name, [(a, p) for a, p, _ in kept])
    except StateUnavailable:
        return False
    return values == [v for _, _, v in kept]


def _summary(deletion: Deletion, restorable: bool) -> dict[str, Any]:
    return {
        "deletionId": deletion.deletion_id,
        "stageInstanceName": deletion.stage,
        "keys": deletion.keys,
        "assets": deletion.assets,
        "points": deletion.points,
        "by": deletion.actor,
        "time": deletion.at_ms,
        "restorable": restorable,
        **({"restoredAt": deletion.restored_ms} if deletion.restored_ms is not None else {}),
    }


__all__ = ["StateUndo", "held_values", "refusal"]
