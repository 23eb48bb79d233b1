"""A stage's keyed state in a worker: a cache over the store, loaded once per batch.

The worker is the only writer of its pipeline's state and commits compare-and-set on the
store's generation, so a value cached across batches is current for as long as commits
succeed. A delete or reset behind the worker's back makes the next commit fail; the worker
then drops this cache with everything else (architecture invariant 4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from streamcalc.keys import StateKey
from streamcalc.state import StateStore

DEFAULT_MAX_CACHED_KEYS = 1_000_000


class StageState:
    def __init__(
        self,
        store: StateStore,
        stage: str,
        state_type: type[msgspec.Struct],
        *,
        max_cached_keys: int = DEFAULT_MAX_CACHED_KEYS,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._owns = owns
        """Whether this worker owns an asset's keys (None: one worker owns them all)."""
        self._stage = stage
        self._decode = msgspec.msgpack.Decoder(state_type).decode
        self._encode = msgspec.msgpack.Encoder().encode
        self._max_cached = max_cached_keys
        self._cache: dict[StateKey, Any] = {}  # None = known to have no state
        self._view = MappingProxyType(self._cache)
        self._dirty: set[StateKey] = set()

    def load(self, keys: Iterable[StateKey]) -> dict[StateKey, Any]:
        cache = self._cache
        return {k: cache[k] for k in self._fetch(keys)}

    def save(self, changes: Mapping[StateKey, Any]) -> None:
        self._cache.update(changes)
        self._dirty.update(changes)

    def edit(self, keys: Iterable[StateKey]) -> Mapping[StateKey, Any]:
        """The cache itself as the working set, read-only, with `keys` loaded and already
        marked dirty; a value is replaced through `save`, which marks its key dirty too."""
        self._dirty.update(self._fetch(keys))
        return self._view

    def _fetch(self, keys: Iterable[StateKey]) -> set[StateKey] | frozenset[StateKey]:
        """`keys` as a set, each of them cached: the missing ones fetched in one multi-get."""
        cache = self._cache
        if not isinstance(keys, set | frozenset):
            keys = set(keys)
        missing = list(keys.difference(cache))  # in C, reusing the set's hashes of the tuples
        if missing:
            decode = self._decode
            for key, raw in zip(missing, self._store.get_many(self._stage, missing), strict=True):
                cache[key] = None if raw is None else decode(raw)
        return keys

    def drain(self) -> dict[StateKey, bytes | None]:
        """The encoded dirty keys for the commit; the cache is trimmed if it grew too large."""
        cache, encode = self._cache, self._encode
        writes = {k: None if (v := cache[k]) is None else encode(v) for k in self._dirty}
        self._dirty.clear()
        if len(cache) > self._max_cached:
            cache.clear()
        return writes

    def scan(self) -> Iterator[tuple[StateKey, Any]]:
        """Every key of this worker with state: the committed values overlaid with the cached ones."""
        cache, decode, owns = self._cache, self._decode, self._owns
        for asset_id, point_id, raw in self._store.scan(self._stage):
            if (asset_id, point_id) not in cache and (owns is None or owns(asset_id)):
                yield (asset_id, point_id), decode(raw)
        for key, value in list(cache.items()):
            if value is not None:
                yield key, value

    def discard(self) -> None:
        """Forget everything cached, e.g. after a failed batch or a stale commit."""
        self._cache.clear()
        self._dirty.clear()
