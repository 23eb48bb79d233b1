"""Undo of Delete Stage State: every delete keeps the values it removes, for a while.

A delete lists a pending deletion in the catalog, then deletes its keys in the state store,
which keeps the values it removes under the deletion's id in the same atomic step
(`StateStore.delete_keys(keep=...)`); then the catalog records how many keys went and the
store generation the delete left. If listing fails nothing is deleted; a delete that fails is
dropped from the list with anything it may have kept, so a listed, completed deletion always
has its values. (One whose outcome stays unknown is pending: listed, never restorable.)

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

import logging
import uuid
from collections.abc import Callable
from typing import Any

from streamcalc.catalog import Catalog, Deletion, PipelineRecord
from streamcalc.clock import Clock
from streamcalc.service import codes
from streamcalc.service.errors import ApiError
from streamcalc.service.stage_state import StateRequest
from streamcalc.state import StateStore, StateUnavailable

log = logging.getLogger(__name__)


class StateUndo:
    def __init__(
        self, catalog: Catalog, stores: Callable[[str], StateStore], clock: Clock, retention_s: int
    ) -> None:
        self._catalog = catalog
        self._stores = stores
        self._clock = clock
        self._retention_ms = retention_s * 1000

    def delete(
        self, pipeline: PipelineRecord, store: StateStore, state_name: str, request: StateRequest, actor: str
    ) -> tuple[int, str | None]:
        """Delete the request's keys, keeping their values; (keys deleted, the deletion's id).
        No key holds state: nothing is deleted or kept, and the id is None."""
        self.drop_expired()
        deletion = Deletion(
            deletion_id=str(uuid.uuid4()),
            org_id=pipeline.org_id,
            pipeline_id=pipeline.pipeline_id,
            stage=request.stage,
            state_name=state_name,
            assets=len(request.asset_ids),
            points=len(request.point_ids),
            keys=0,
            actor=actor,
            at_ms=self._clock.wall_ms(),
            status_changes=self._status_changes(pipeline),
            release_version=pipeline.release_version,
        )
        deletion_id = deletion.deletion_id
        self._catalog.add_deletion(deletion)  # fails: nothing deleted
        try:
            deleted = store.delete_keys(state_name, request.asset_ids, request.point_ids, keep=deletion_id)
        except Exception:
            self._forget(pipeline.org_id, store, deletion_id)
            raise
        if not deleted:
            self._catalog.discard_deletion(pipeline.org_id, deletion_id)
            return 0, None
        self._catalog.complete_deletion(pipeline.org_id, deletion_id, deleted, store.checkpoint().generation)
        return deleted, deletion_id

    def deletions(self, pipeline: PipelineRecord, store: StateStore) -> list[dict[str, Any]]:
        """The pipeline's deletions, newest first, each with whether it can be restored now."""
        self.drop_expired()
        listed = self._catalog.deletions(pipeline.org_id, pipeline.pipeline_id)
        generation, changes = store.checkpoint().generation, self._status_changes(pipeline)
        return [
            _summary(d, refusal(d, listed[:i], pipeline, changes, generation) is None)
            for i, d in enumerate(listed)
        ]

    def restore(self, pipeline: PipelineRecord, store: StateStore, deletion_id: str, actor: str) -> Deletion:
        """Put a deletion's values back; 61199 naming why if it cannot be restored now."""
        self.drop_expired()
        listed = self._catalog.deletions(pipeline.org_id, pipeline.pipeline_id)
        index = next((i for i, d in enumerate(listed) if d.deletion_id == deletion_id), None)
        if index is None:
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
        if not store.restore_kept(deletion_id):
            raise ApiError(
                codes.STAGE_STATE_OTHER,
                f"Deletion {deletion_id} cannot be restored: its values are no longer kept",
            )
        self._catalog.mark_restored(
            pipeline.org_id, deletion_id, self._clock.wall_ms(), store.checkpoint().generation
        )
        return deletion

    def drop_expired(self) -> None:
        """Drop the deletions older than the retention, with the values their stores keep (a
        store that cannot be reached now keeps them until its pipeline's state is cleared)."""
        for old in self._catalog.drop_deletions(self._clock.wall_ms() - self._retention_ms):
            try:
                self._stores(old.pipeline_id).drop_kept(old.deletion_id)
            except StateUnavailable as e:
                log.warning("the values of deletion %s could not be dropped: %s", old.deletion_id, e)

    def _forget(self, org_id: str, store: StateStore, deletion_id: str) -> None:
        """After a failed delete: drop what it may have kept, then its listing (if the store is
        unreachable, the listing stays pending and is dropped with its values by the retention)."""
        try:
            store.drop_kept(deletion_id)
        except StateUnavailable:
            return
        self._catalog.discard_deletion(org_id, deletion_id)

    def _status_changes(self, pipeline: PipelineRecord) -> int:
        return len(self._catalog.status_history(pipeline.org_id, pipeline.pipeline_id))


def held_count(store: StateStore, state_name: str, request: StateRequest) -> int:
    """How many of the request's keys hold state: one read of them all."""
    keys = [(a, p) for a in request.asset_ids for p in request.point_ids]
    return len(keys) - store.get_many(state_name, keys).count(None)


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


__all__ = ["StateUndo", "held_count", "refusal"]
