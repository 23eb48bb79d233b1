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


class FailingDelete(MemoryStateStore):
    """A store whose delete fails, before deleting or (a lost answer) after."""

    def __init__(self, *, after: bool) -> None:
        super().__init__()
        self._after = after

    def delete_keys(self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str]) -> int:
        if self._after:
            super().delete_keys(stage, asset_ids, point_ids)
        raise StateUnavailable("the disk went away")


def _paused(catalog: MemoryCatalog) -> PipelineRecord:
    created = catalog.create_pipeline("o1", "p", {"stages": []}, {})
    catalog.set_status("o1", created.pipeline_id, "PAUSED")
    record = catalog.pipeline("o1", created.pipeline_id)
    assert record is not None
    return record


@pytest.mark.parametrize(
    ("after", "kept"), [(False, 0), (True, 1)], ids=["nothing deleted", "outcome unknown"]
)
def test_a_failed_delete_keeps_a_deletion_only_if_the_values_may_be_gone(after: bool, kept: int) -> None:
    catalog = MemoryCatalog(ManualClock(1000))
    pipeline = _paused(catalog)
    store = FailingDelete(after=after)
    store.commit(
        {"Stage_01": {("a1", "p"): b"1", ("a2", "p"): b"2"}},
        store.checkpoint(),
        store.checkpoint().advance({}),
    )
    undo = StateUndo(catalog, ManualClock(1000), retention_s=60)

    with pytest.raises(StateUnavailable):
        undo.delete(pipeline, store, "Stage_01", REQUEST, "k1")

    listed = undo.deletions(pipeline, store)
    assert len(listed) == kept
    if kept:  # kept pending: its values are there, but it never claims to be restorable
        assert listed[0]["restorable"] is False
        deletion_id = listed[0]["deletionId"]
        assert catalog.deleted_values("o1", deletion_id) == [("a1", "p", b"1"), ("a2", "p", b"2")]
