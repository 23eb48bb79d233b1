"""The embedded Log: every topic of a data dir in one LMDB environment.

An append is one write transaction: the messages (in values of up to MESSAGES_PER_VALUE,
each keyed by its last offset, so a range lookup finds the value holding any offset), the
partition's offsets and size, the producer stamp and any retention trimming commit together
and are fsynced. Other
processes read concurrently through MVCC snapshots, so they only ever see whole appends.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.keycodec import part, split_topic_partition, topic_partition_key
from streamcalc.lmdbenv import DEFAULT_MAP_SIZE_BYTES, open_dbs, open_env, release_env
from streamcalc.log.base import (
    AppendEntry,
    ProducerStamp,
    ReadResult,
    ResetTarget,
    TopicConfig,
    TopicPartition,
    check_topic_name,
)
from streamcalc.log.errors import InvalidTopic

_OFFSET = struct.Struct(">q")
_BATCH = struct.Struct(">qiq")  # base offset, message count, append time (epoch ms)
_PART = struct.Struct(">qqq")  # start offset, end offset, payload bytes
_STAMP = struct.Struct(">q")  # seq, followed by the stamp's meta
_messages = msgspec.msgpack.Decoder(list[bytes])
MESSAGES_PER_VALUE = 4_096
"""An append is stored in values of at most this many messages: a read decodes whole values,
so a small read from a big append decodes little more than it returns."""
_pack = msgspec.msgpack.Encoder()


class _TopicDoc(msgspec.Struct):
    partitions: int
    retention_ms: int | None = None
    retention_bytes: int | None = None


class EmbeddedLog:
    def __init__(
        self, path: Path, *, clock: Clock = SYSTEM_CLOCK, map_size: int = DEFAULT_MAP_SIZE_BYTES
    ) -> None:
        self._clock = clock
        self._closed = False
        self._env = open_env(path, max_dbs=5, map_size=map_size)
        self._topics, self._parts, self._batches, self._producers, self._groups = open_dbs(
            self._env, b"topics", b"partitions", b"batches", b"producers", b"groups"
        )

    # topics

    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        with self._env.begin(write=True) as txn:
            return self._ensure(txn, config)

    def topic(self, name: str) -> TopicConfig | None:
        with self._env.begin(db=self._topics) as txn:
            return self._topic_in(txn, name)

    def topics(self) -> list[TopicConfig]:
        with self._env.begin(db=self._topics) as txn:
            return [self._decode_topic(k.decode(), v) for k, v in txn.cursor()]

    # append / read

    def append(
        self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None
    ) -> list[int | None]:
        now = self._clock.wall_ms()
        with self._env.begin(write=True) as txn:
            configs = {(e.topic, e.partition): self._checked(txn, e.topic, e.partition) for e in entries}
            skip = set() if producer is None else self._stamped_before(txn, configs, producer)
            return [
                None if (e.topic, e.partition) in skip else self._append_one(txn, e, configs, now)
                for e in entries
            ]

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        tpk = topic_partition_key(topic, partition)
        out: list[bytes] = []
        offset = first = max(offset, 0)
        with self._env.begin(db=self._batches) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(tpk + _OFFSET.pack(offset))
            while found and len(out) < max_messages:
                key, value = cursor.item()
                if not key.startswith(tpk):
                    break
                base, count, _ = _BATCH.unpack_from(value)
                if not out:
                    first = max(offset, base)
                if until is not None and base >= until:
                    break
                messages = _messages.decode(memoryview(value)[_BATCH.size :])
                lo = max(first - base, 0)
                hi = count if until is None else min(count, until - base)
                out.extend(messages[lo : lo + min(hi - lo, max_messages - len(out))])
                found = cursor.next()
        return ReadResult(first, out)

    def start_offset(self, topic: str, partition: int) -> int:
        return self._part_meta(topic, partition)[0]

    def end_offset(self, topic: str, partition: int) -> int:
        return self._part_meta(topic, partition)[1]

    def producer(self, topic: str, partition: int, producer_id: str) -> ProducerStamp | None:
        with self._env.begin(db=self._producers) as txn:
            raw = txn.get(topic_partition_key(topic, partition) + part(producer_id))
        if raw is None:
            return None
        return ProducerStamp(producer_id, _STAMP.unpack_from(raw)[0], bytes(raw[_STAMP.size :]))

    # consumer groups

    def commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._env.begin(write=True, db=self._groups) as txn:
            for (topic, partition), offset in offsets.items():
                txn.put(part(group) + topic_partition_key(topic, partition), _OFFSET.pack(offset))

    def committed(self, group: str, topic: str) -> dict[int, int]:
        prefix = part(group) + part(topic)
        out: dict[int, int] = {}
        with self._env.begin(db=self._groups) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    _, partition = split_topic_partition(key[len(part(group)) :])
                    out[partition] = _OFFSET.unpack(value)[0]
        return out

    def lag(self, group: str, topic: str) -> dict[int, int]:
        committed = self.committed(group, topic)
        out: dict[int, int] = {}
        for partition in range(self._partitions(topic)):
            start, end, _ = self._part_meta(topic, partition)
            out[partition] = end - max(committed.get(partition, start), start)
        return out

    def reset_offsets(self, group: str, topic: str, to: ResetTarget) -> dict[int, int]:
        index = 0 if to == "earliest" else 1
        offsets = {p: self._part_meta(topic, p)[index] for p in range(self._partitions(topic))}
        self.commit_offsets(group, {(topic, p): o for p, o in offsets.items()})
        return offsets

    def enforce_retention(self) -> int:
        """Apply age retention to every partition (appends apply it to theirs); returns batches dropped."""
        now = self._clock.wall_ms()
        dropped = 0
        with self._env.begin(write=True) as txn:
            for key, raw in list(txn.cursor(db=self._topics)):
                config = self._decode_topic(key.decode(), raw)
                if config.retention_ms is None:
                    continue
                for partition in range(config.partitions):
                    dropped += self._trim(txn, config, partition, now)
        return dropped

    def close(self) -> None:
        """Release this handle (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            release_env(self._env)

    # internals

    def _stamped_before(
        self, txn: Any, partitions: Iterable[TopicPartition], producer: ProducerStamp
    ) -> set[TopicPartition]:
        """Partitions that hold this stamp already (skipped whole); the others get it now."""
        skip: set[TopicPartition] = set()
        for tp in partitions:
            stamp_key = topic_partition_key(*tp) + part(producer.producer_id)
            prev = txn.get(stamp_key, db=self._producers)
            if prev is not None and _STAMP.unpack_from(prev)[0] >= producer.seq:
                skip.add(tp)
            else:
                txn.put(stamp_key, _STAMP.pack(producer.seq) + producer.meta, db=self._producers)
        return skip

    def _checked(self, txn: Any, topic: str, partition: int) -> TopicConfig:
        """The topic's config (created if missing), provided it has `partition`."""
        config = self._topic_in(txn, topic) or self._ensure(txn, TopicConfig(topic))
        if not 0 <= partition < config.partitions:
            raise InvalidTopic(
                f"topic {topic} has {config.partitions} partition(s); no partition {partition}"
            )
        return config

    def _append_one(
        self, txn: Any, entry: AppendEntry, configs: Mapping[TopicPartition, TopicConfig], now: int
    ) -> int:
        topic, partition, messages = entry
        config = configs[(topic, partition)]
        tpk = topic_partition_key(topic, partition)
        start, end, size = self._part_meta_in(txn, tpk)
        if not messages:
            return end
        for i in range(0, len(messages), MESSAGES_PER_VALUE):
            chunk = list(messages[i : i + MESSAGES_PER_VALUE])
            payload = _pack.encode(chunk)
            base = end + i
            txn.put(
                tpk + _OFFSET.pack(base + len(chunk) - 1),
                _BATCH.pack(base, len(chunk), now) + payload,
                db=self._batches,
            )
            size += len(payload)
        txn.put(tpk, _PART.pack(start, end + len(messages), size), db=self._parts)
        if config.retention_ms is not None or config.retention_bytes is not None:
            self._trim(txn, config, partition, now)
        return end

    def _trim(self, txn: Any, config: TopicConfig, partition: int, now: int) -> int:
        """Drop whole values from the front while over the size or age limit; keeps the newest."""
        tpk = topic_partition_key(config.name, partition)
        start, end, size = self._part_meta_in(txn, tpk)
        cursor = txn.cursor(db=self._batches)
        dropped = 0
        ok = cursor.set_range(tpk)
        while ok and cursor.key().startswith(tpk):
            base, count, appended = _BATCH.unpack_from(cursor.value())
            if base + count >= end:
                break
            too_big = config.retention_bytes is not None and size > config.retention_bytes
            too_old = config.retention_ms is not None and appended < now - config.retention_ms
            if not (too_big or too_old):
                break
            size -= len(cursor.value()) - _BATCH.size
            start = base + count
            dropped += 1
            ok = cursor.delete()
        if dropped:
            txn.put(tpk, _PART.pack(start, end, size), db=self._parts)
        return dropped

    def _ensure(self, txn: Any, config: TopicConfig) -> TopicConfig:
        existing = self._topic_in(txn, config.name)
        if existing is not None:
            return existing
        doc = _TopicDoc(config.partitions, config.retention_ms, config.retention_bytes)
        txn.put(config.name.encode(), msgspec.json.encode(doc), db=self._topics)
        return config

    def _topic_in(self, txn: Any, name: str) -> TopicConfig | None:
        raw = txn.get(check_topic_name(name).encode(), db=self._topics)
        return None if raw is None else self._decode_topic(name, raw)

    @staticmethod
    def _decode_topic(name: str, raw: bytes) -> TopicConfig:
        doc = msgspec.json.decode(raw, type=_TopicDoc)
        return TopicConfig(name, doc.partitions, doc.retention_ms, doc.retention_bytes)

    def _partitions(self, topic: str) -> int:
        config = self.topic(topic)
        return 0 if config is None else config.partitions

    def _part_meta(self, topic: str, partition: int) -> tuple[int, int, int]:
        with self._env.begin(db=self._parts) as txn:
            return self._part_meta_in(txn, topic_partition_key(topic, partition))

    def _part_meta_in(self, txn: Any, tpk: bytes) -> tuple[int, int, int]:
        raw = txn.get(tpk, db=self._parts)
        if raw is None:
            return (0, 0, 0)
        start, end, size = _PART.unpack(raw)
        return start, end, size


def open_log(data_dir: Path, *, clock: Clock = SYSTEM_CLOCK) -> EmbeddedLog:
    """The embedded log of a data dir (created on first use)."""
    return EmbeddedLog(data_dir / "log", clock=clock)
