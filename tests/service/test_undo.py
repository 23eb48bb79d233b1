"""StateUndo when the state store fails during a delete: what a failure at that edge leaves
kept (the HTTP tests in test_api_state_undo.py cover everything else)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from streamcalc.catalog import PipelineRecord
from streamcalc.catalog.memory import MemoryCatalog
from streamcalc.clock import ManualClock
from streamcalc.service.stage_state import StateRequest
from streamcalc.service.undo import StateUndo
from streamcalc.state import StateUnavailable
from streamcalc.state.memory import MemoryStateStore

REQUEST = StateRequest("p1", "Stage_01", ["a1", "a2"], ["p"])


class FailingStore(MemoryStateStore):
    """A store whose delete fails before deleting, or after (a lost answer); and whose
    `drop_kept` fails too while `unreachable`."""

    def __init__(self, *, after: bool, unreachable: bool = False) -> None:
        super().__init__()
        self.after, self.unreachable = after, unreachable

    def delete_keys(
        self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str], keep: str | None = None
    ) -> int:
        if self.after:
            super().delete_keys(stage, asset_ids, point_ids, keep)
        raise StateUnavailable("the disk went away")

    def drop_kept(self, keep: str) -> None:
        if self.unreachable:
            raise StateUnavailable("still away")
        super().drop_kept(keep)


def _paused(catalog: MemoryCatalog) -> PipelineRecord:
    created = catalog.create_pipeline("o1", "p", {"stages": []}, {})
    catalog.set_status("o1", created.pipeline_id, "PAUSED")
    record = catalog.pipeline("o1", created.pipeline_id)
    assert record is not None
    return record


def _with_state(store: MemoryStateStore) -> MemoryStateStore:
    store.commit(
        {"Stage_01": {("a1", "p"): b"1", ("a2", "p"): b"2"}},
        store.checkpoint(),
        store.checkpoint().advance({}),
    )
    return store


@pytest.mark.parametrize("after", [False, True], ids=["nothing deleted", "deleted, answer lost"])
def test_a_failed_delete_lists_and_keeps_nothing(after: bool) -> None:
    catalog, clock = MemoryCatalog(ManualClock(1000)), ManualClock(1000)
    pipeline = _paused(catalog)
    store = _with_state(FailingStore(after=after))
    undo = StateUndo(catalog, lambda _: store, clock, retention_s=60)

    with pytest.raises(StateUnavailable):
        undo.delete(pipeline, store, "Stage_01", REQUEST, "k1")

    assert undo.deletions(pipeline, store) == []
    assert store.get_many("Stage_01", [("a1", "p"), ("a2", "p")]) == ([None, None] if after else [b"1", b"2"])


def test_a_failed_delete_on_an_unreachable_store_stays_pending_until_the_retention_drops_it() -> None:
    catalog, clock = MemoryCatalog(ManualClock(1000)), ManualClock(1000)
    pipeline = _paused(catalog)
    store = _with_state(FailingStore(after=True, unreachable=True))
    undo = StateUndo(catalog, lambda _: store, clock, retention_s=60)

    with pytest.raises(StateUnavailable):
        undo.delete(pipeline, store, "Stage_01", REQUEST, "k1")

    (pending,) = undo.deletions(pipeline, store)
    assert pending["restorable"] is False  # its outcome is unknown: never restorable
    deletion = catalog.deletions("o1", pipeline.pipeline_id)[0]
    assert deletion.generation is None

    store.unreachable = False
    clock.advance(61)
    undo.drop_expired()

    assert undo.deletions(pipeline, store) == []
    assert store.restore_kept(deletion.deletion_id) == 0  # its values went with it
