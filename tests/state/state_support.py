"""Helpers of the state tests: commit a batch on top of a store's checkpoint, fill, snapshot."""

from __future__ import annotations

from collections.abc import Mapping

from streamcalc.keys import TopicPartition
from streamcalc.state import Checkpoint, StateStore, StateWrites

Snapshot = tuple[Checkpoint, dict[str, list[tuple[str, str, bytes]]]]


def commit(
    store: StateStore, writes: StateWrites, offsets: Mapping[TopicPartition, int] | None = None
) -> Checkpoint:
    """Commit one batch on top of the store's current checkpoint; returns the new checkpoint."""
    expected = store.checkpoint()
    new = expected.advance(offsets or {})
    store.commit(writes, expected, new)
    return new


def fill(store: StateStore, stage: str, assets: list[str], points: list[str]) -> None:
    """One commit of `asset|point` values for every asset x point."""
    commit(store, {stage: {(a, p): f"{a}|{p}".encode() for a in assets for p in points}})


def snapshot(store: StateStore) -> Snapshot:
    return store.checkpoint(), {stage: list(store.scan(stage)) for stage in store.stages()}
