"""The in-memory StateStore: the whole contract in one process, for tests and for an API that
runs no pipelines. Nothing survives the process, so it is never `shared` (backends/urls.py).

One lock serialises every call; a call copies what it returns, so a reader never sees half a
commit and a scan is one snapshot however slowly it is consumed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping

from streamcalc.clock import Clock
from streamcalc.ids import check_pipeline_id
from streamcalc.keys import StateKey, TopicPartition
from streamcalc.state.base import Checkpoint, StateWrites, check_commit

_Stage = dict[str, dict[str, bytes]]
"""assetId -> pointId -> value; an asset without points is removed, so is a stage without assets."""


class MemoryStateStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, _Stage] = {}
        self._seqs: dict[int, int] = {}
        self._generation = 0
        self._offsets: dict[TopicPartition, int] = {}
        self._versions: dict[str, int] = {}
        self._kept: dict[str, tuple[str, dict[StateKey, bytes | None]]] = {}
        """deletion id -> (stage, the values its delete removed)."""

    def get_many(self, stage: str, keys: Iterable[StateKey]) -> list[bytes | None]:
        with self._lock:
            assets = self._stages.get(stage, {})
            return [assets.get(a, {}).get(p) for a, p in keys]

    def scan(self, stage: str, asset_id: str | None = None) -> Iterator[tuple[str, str, bytes]]:
        with self._lock:
            assets = self._stages.get(stage, {})
            chosen = sorted(assets) if asset_id is None else [asset_id] if asset_id in assets else []
            rows = [(a, p, assets[a][p]) for a in chosen for p in sorted(assets[a])]
        return iter(rows)

    def delete_keys(
        self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str], keep: str | None = None
    ) -> int:
        points = set(point_ids)
        with self._lock:
            assets = self._stages.get(stage, {})
            deleted: dict[StateKey, bytes | None] = {}
            for a in set(asset_ids) & assets.keys():
                values = assets[a]
                for p in points & values.keys():
                    deleted[a, p] = values.pop(p)
                if not values:
                    del assets[a]
            if not assets:
                self._stages.pop(stage, None)
            if deleted:
                if keep is not None:
                    self._kept[keep] = (stage, deleted)
                self._generation += 1
        return len(deleted)

    def restore_kept(self, keep: str) -> int:
        with self._lock:
            kept = self._kept.pop(keep, None)
            if kept is None:
                return 0
            stage, values = kept
            self._write_stage(stage, values)
            self._generation += 1
        return len(values)

    def drop_kept(self, keep: str) -> None:
        with self._lock:
            self._kept.pop(keep, None)

    def checkpoint(self, worker: int = 0) -> Checkpoint:
        with self._lock:
            return self._checkpoint(worker)

    def commit(self, writes: StateWrites, expected: Checkpoint, new: Checkpoint, worker: int = 0) -> None:
        with self._lock:
            stored = self._checkpoint(worker)
            check_commit(stored, expected, new)
            # everything is checked: from here on nothing can fail half way
            for stage, changes in writes.items():
                self._write_stage(stage, changes)
            self._seqs[worker] = new.seq
            self._offsets.update(new.offsets)

    def reset_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self._offsets.update(offsets)
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._stages.clear()
            self._offsets.clear()
            self._versions.clear()
            self._kept.clear()
            self._generation += 1

    def stages(self) -> list[str]:
        with self._lock:
            return sorted(self._stages)

    def state_versions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._versions)

    def record_state_versions(self, versions: Mapping[str, int]) -> None:
        with self._lock:
            self._versions.update(versions)

    def close(self) -> None:
        """Nothing to release: the data belongs to the backend, which hands this store out again."""

    def _checkpoint(self, worker: int) -> Checkpoint:
        return Checkpoint(self._seqs.get(worker, 0), self._generation, dict(self._offsets))

    def _write_stage(self, stage: str, changes: Mapping[StateKey, bytes | None]) -> None:
        assets = self._stages.setdefault(stage, {})
        for (a, p), value in changes.items():
            if value is not None:
                assets.setdefault(a, {})[p] = bytes(value)
            elif a in assets:
                assets[a].pop(p, None)
                if not assets[a]:
                    del assets[a]
        if not assets:
            del self._stages[stage]


class MemoryStateBackend:
    """The stores of every pipeline of this process, one per pipeline id, kept until the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[str, MemoryStateStore] = {}

    def store(self, pipeline_id: str) -> MemoryStateStore:
        check_pipeline_id(pipeline_id)
        with self._lock:
            store = self._stores.get(pipeline_id)
            if store is None:
                store = self._stores[pipeline_id] = MemoryStateStore()
            return store

    def volatility(self) -> str | None:
        return "memory state ends with its process"

    def close(self) -> None:
        """The stores stay readable: a memory backend has nothing to release."""


def open_url(place: str, clock: Clock) -> MemoryStateBackend:
    """The backend of a `memory` URL (which has no place)."""
    return MemoryStateBackend()


__all__ = ["MemoryStateBackend", "MemoryStateStore", "open_url"]
