"""The embedded StateStore: one LMDB environment per pipeline under the data dir.

LMDB gives what the contract needs directly: one write transaction per commit (atomic and
durable, fsynced), MVCC readers in any number of processes that never see a half-applied
commit, and a single writer at a time across processes.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.clock import Clock
from streamcalc.ids import check_pipeline_id
from streamcalc.keycodec import split_topic_partition, topic_partition_key
from streamcalc.keys import StateKey, TopicPartition
from streamcalc.lmdbenv import DEFAULT_MAP_SIZE_BYTES, open_dbs, open_env, release_env, translate_lmdb_errors
from streamcalc.state.base import Checkpoint, StateWrites, check_commit
from streamcalc.state.errors import StateUnavailable
from streamcalc.state.keys import asset_prefix, cross_keys, key_encoder, split_key, stage_prefix

_I64 = struct.Struct(">q")
_SEQ = b"seq"
_GEN = b"generation"
_OFFSET = b"offset:"
_VERSION = b"version:"


class _Kept(msgspec.Struct, array_like=True):
    """What `delete_keys(keep=...)` keeps, as one value of the `kept` database under the
    deletion's id: the request and each key's value in `cross_keys` order (None: it held
    none). Not compressed: zlib would cost a 100,000-key delete 30% more time to save space
    that the deleted state gave back."""

    stage: str
    assets: list[str]
    points: list[str]
    values: list[bytes | None]


_encode_kept = msgspec.msgpack.Encoder().encode
_decode_kept = msgspec.msgpack.Decoder(_Kept).decode


@translate_lmdb_errors(StateUnavailable)
class LmdbStateStore:
    def __init__(self, path: Path, *, map_size: int = DEFAULT_MAP_SIZE_BYTES) -> None:
        self._closed = False
        self._env = open_env(path, max_dbs=3, map_size=map_size)
        self._state, self._meta, self._kept = open_dbs(self._env, b"state", b"meta", b"kept")

    def get_many(self, stage: str, keys: Iterable[StateKey]) -> list[bytes | None]:
        with self._env.begin(db=self._state, buffers=False) as txn:
            get, key = txn.get, key_encoder(stage)
            return [get(key(a, p)) for a, p in keys]

    def scan(self, stage: str, asset_id: str | None = None) -> Iterator[tuple[str, str, bytes]]:
        prefix = stage_prefix(stage) if asset_id is None else asset_prefix(stage, asset_id)
        with self._env.begin(db=self._state) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not key.startswith(prefix):
                    return
                _, a, p = split_key(key)
                yield a, p, value

    def delete_keys(
        self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str], keep: str | None = None
    ) -> int:
        assets, points = list(asset_ids), list(point_ids)
        keys = cross_keys(stage, assets, points)
        with self._env.begin(write=True, db=self._state) as txn:
            values = list(map(txn.pop, keys))
            deleted = len(values) - values.count(None)
            if not deleted:
                return 0
            if keep is not None:
                txn.put(keep.encode(), _encode_kept(_Kept(stage, assets, points, values)), db=self._kept)
            self._bump_generation(txn)
        return deleted

    def restore_kept(self, keep: str) -> int:
        with self._env.begin(write=True) as txn:
            blob = txn.pop(keep.encode(), db=self._kept)
            if blob is None:
                return 0
            kept = _decode_kept(blob)
            keys = cross_keys(kept.stage, kept.assets, kept.points)
            items = [(k, v) for k, v in zip(keys, kept.values, strict=True) if v is not None]
            txn.cursor(db=self._state).putmulti(items)
            self._bump_generation(txn)
        return len(items)

    def drop_kept(self, keep: str) -> None:
        with self._env.begin(write=True, db=self._kept) as txn:
            txn.delete(keep.encode())

    def checkpoint(self, worker: int = 0) -> Checkpoint:
        with self._env.begin(db=self._meta) as txn:
            return self._read_checkpoint(txn, worker)

    def commit(self, writes: StateWrites, expected: Checkpoint, new: Checkpoint, worker: int = 0) -> None:
        with self._env.begin(write=True) as txn:
            stored = self._read_checkpoint(txn, worker)
            check_commit(stored, expected, new)
            for stage, changes in writes.items():
                self._write_stage(txn, stage, changes)
            txn.put(_seq_key(worker), _I64.pack(new.seq), db=self._meta)
            self._put_offsets(txn, new.offsets)

    def reset_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._env.begin(write=True) as txn:
            self._put_offsets(txn, offsets)
            self._bump_generation(txn)

    def clear(self) -> None:
        with self._env.begin(write=True) as txn:
            txn.drop(self._state, delete=False)
            txn.drop(self._kept, delete=False)
            cursor = txn.cursor(db=self._meta)
            for prefix in (_OFFSET, _VERSION):
                if cursor.set_range(prefix):
                    while cursor.key().startswith(prefix) and cursor.delete():
                        pass
            self._bump_generation(txn)

    def state_versions(self) -> dict[str, int]:
        with self._env.begin(db=self._meta) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(_VERSION):
                return {}
            return {
                key[len(_VERSION) :].decode(): _I64.unpack(value)[0]
                for key, value in cursor
                if key.startswith(_VERSION)
            }

    def record_state_versions(self, versions: Mapping[str, int]) -> None:
        with self._env.begin(write=True, db=self._meta) as txn:
            for stage, version in versions.items():
                txn.put(_VERSION + stage.encode(), _I64.pack(version))

    def stages(self) -> list[str]:
        found: list[str] = []
        with self._env.begin(db=self._state) as txn:
            cursor = txn.cursor()
            ok = cursor.first()
            while ok:
                stage, _, _ = split_key(cursor.key())
                found.append(stage)
                ok = cursor.set_range(stage_prefix(stage) + b"\xff\xff")
        return found

    def close(self) -> None:
        """Release this handle (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            release_env(self._env)

    def _write_stage(self, txn: Any, stage: str, changes: Mapping[StateKey, bytes | None]) -> None:
        puts = []
        key = key_encoder(stage)
        for (a, p), value in changes.items():
            if value is None:
                txn.delete(key(a, p), db=self._state)
            else:
                puts.append((key(a, p), value))
        if puts:
            txn.cursor(db=self._state).putmulti(puts)

    def _read_checkpoint(self, txn: Any, worker: int) -> Checkpoint:
        seq = txn.get(_seq_key(worker), db=self._meta)
        gen = txn.get(_GEN, db=self._meta)
        offsets: dict[TopicPartition, int] = {}
        cursor = txn.cursor(db=self._meta)
        if cursor.set_range(_OFFSET):
            for key, value in cursor:
                if not key.startswith(_OFFSET):
                    break
                offsets[split_topic_partition(key[len(_OFFSET) :])] = _I64.unpack(value)[0]
        return Checkpoint(
            seq=_I64.unpack(seq)[0] if seq else 0,
            generation=_I64.unpack(gen)[0] if gen else 0,
            offsets=offsets,
        )

    def _put_offsets(self, txn: Any, offsets: Mapping[TopicPartition, int]) -> None:
        for (topic, partition), offset in offsets.items():
            txn.put(_OFFSET + topic_partition_key(topic, partition), _I64.pack(offset), db=self._meta)

    def _bump_generation(self, txn: Any) -> None:
        gen = txn.get(_GEN, db=self._meta)
        txn.put(_GEN, _I64.pack((_I64.unpack(gen)[0] if gen else 0) + 1), db=self._meta)


def _seq_key(worker: int) -> bytes:
    return _SEQ if worker == 0 else b"%s:%d" % (_SEQ, worker)


class LmdbStateBackend:
    """The stores of every pipeline, one LMDB environment each under `root`, each opened once
    per process and shared by its callers (the API answers from them without reopening)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)  # a root that cannot be made fails at start
        self._root = root
        self._lock = threading.Lock()
        self._stores: dict[str, LmdbStateStore] = {}

    def store(self, pipeline_id: str) -> LmdbStateStore:
        with self._lock:
            if pipeline_id not in self._stores:
                self._stores[pipeline_id] = LmdbStateStore(self._root / check_pipeline_id(pipeline_id))
            return self._stores[pipeline_id]

    def volatility(self) -> str | None:
        """None: every commit is one fsynced LMDB transaction."""
        return None

    def close(self) -> None:
        """Close every store handed out (a later `store` opens them again)."""
        with self._lock:
            stores, self._stores = self._stores, {}
        for store in stores.values():
            store.close()


def open_pipeline_state(data_dir: Path, pipeline_id: str) -> LmdbStateStore:
    """The store of one pipeline under a data dir (created on first use), a handle of its own."""
    return LmdbStateStore(data_dir / "state" / check_pipeline_id(pipeline_id))


def open_url(place: str, clock: Clock) -> LmdbStateBackend:
    """The stores under directory `place` (the composition root's entry point)."""
    return LmdbStateBackend(Path(place))


__all__ = ["LmdbStateBackend", "LmdbStateStore", "open_pipeline_state", "open_url"]
