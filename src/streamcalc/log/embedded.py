"""The embedded Log: every topic of a data dir in one LMDB environment.

An append is one write transaction: the messages (in values of up to MESSAGES_PER_VALUE,
each keyed by its last offset, so a range lookup finds the value holding any offset), their
keys and headers (beside, only where a value has any), the partition's offsets and size, the
producer's stamp mark and any retention trimming commit together and are fsynced. Other
processes read concurrently through MVCC snapshots, so they only ever see whole appends.

It keeps more than the Log contract asks: appends are atomic (a mark is always complete),
offsets are dense, and the newest mark of a producer is one lookup, not a scan.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.keycodec import part, split_topic_partition, topic_partition_key
from streamcalc.keys import TopicPartition
from streamcalc.lmdbenv import DEFAULT_MAP_SIZE_BYTES, open_dbs, open_env, release_env, translate_lmdb_errors
from streamcalc.log.base import (
    AppendEntry,
    Headers,
    ProducerStamp,
    ReadResult,
    ResetTarget,
    StampMark,
    TopicConfig,
    check_topic_name,
)
from streamcalc.log.errors import InvalidTopic, LogUnavailable
from streamcalc.log.partitioners import crc32_partition

_OFFSET = struct.Struct(">q")
_BATCH = struct.Struct(">qiq")  # base offset, message count, append time (epoch ms)
_PART = struct.Struct(">qqq")  # start offset, end offset, payload bytes
_MARK = struct.Struct(">qqq")  # seq, messages written, messages in the entry; then the meta
_OLD_STAMP = struct.Struct(">q")  # seq, then the meta: marks of appends before marks had counts
_messages = msgspec.msgpack.Decoder(list[bytes])
_Extras = tuple[list[bytes | None] | None, list[list[tuple[str, bytes]]] | None]
_extras = msgspec.msgpack.Decoder(_Extras)
MESSAGES_PER_VALUE = 4_096
"""An append is stored in values of at most this many messages: a read decodes whole values,
so a small read from a big append decodes little more than it returns."""
_pack = msgspec.msgpack.Encoder()


class _TopicDoc(msgspec.Struct):
    partitions: int
    retention_ms: int | None = None
    retention_bytes: int | None = None


@translate_lmdb_errors(LogUnavailable)
class EmbeddedLog:
    def __init__(
        self, path: Path, *, clock: Clock = SYSTEM_CLOCK, map_size: int = DEFAULT_MAP_SIZE_BYTES
    ) -> None:
        self._clock = clock
        self._closed = False
        self._env = open_env(path, max_dbs=7, map_size=map_size)
        dbs = open_dbs(
            self._env, b"topics", b"partitions", b"batches", b"extras", b"marks", b"producers", b"groups"
        )
        (
            self._topics,
            self._parts,
            self._batches,
            self._extras,
            self._marks,
            self._old_stamps,
            self._groups,
        ) = dbs

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

    def partition_for(self, key: str, partitions: int) -> int:
        return crc32_partition(key, partitions)

    # append / read

    def append(self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None) -> list[int]:
        now = self._clock.wall_ms()
        with self._env.begin(write=True) as txn:
            configs = {(e.topic, e.partition): self._checked(txn, e.topic, e.partition) for e in entries}
            bases = [self._append_one(txn, e, configs, now) for e in entries]
            if producer is not None:
                for e in entries:
                    self._mark(txn, e, producer)
            return bases

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        tpk = topic_partition_key(topic, partition)
        out: list[bytes] = []
        keys: list[bytes | None] | None = None
        headers: list[Headers] | None = None
        offset = first = max(offset, 0)
        with self._env.begin(db=self._batches) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(tpk + _OFFSET.pack(offset))
            visited = False
            while found and len(out) < max_messages:
                key, value = cursor.item()
                if not key.startswith(tpk):
                    break
                base, count, _ = _BATCH.unpack_from(value)
                if not visited:  # the value holding `offset`, or the first retained after it
                    first, visited = max(offset, base), True
                if until is not None and base >= until:
                    break
                messages = _messages.decode(memoryview(value)[_BATCH.size :])
                lo = max(first - base, 0)
                hi = count if until is None else min(count, until - base)
                taken = slice(lo, lo + min(hi - lo, max_messages - len(out)))
                extras = txn.get(key, db=self._extras)
                if extras is not None or keys is not None or headers is not None:
                    keys, headers = _add_extras(extras, len(out), len(messages), taken, keys, headers)
                out.extend(messages[taken])
                found = cursor.next()
        if keys is not None and not any(k is not None for k in keys):
            keys = None
        if headers is not None and not any(headers):
            headers = None
        return ReadResult(first, out, first + len(out), keys=keys, headers=headers)

    def start_offset(self, topic: str, partition: int) -> int:
        return self._part_meta(topic, partition)[0]

    def end_offset(self, topic: str, partition: int) -> int:
        return self._part_meta(topic, partition)[1]

    def last_stamp(self, topic: str, partition: int, producer_id: str) -> StampMark | None:
        key = topic_partition_key(topic, partition) + part(producer_id)
        with self._env.begin() as txn:
            raw = txn.get(key, db=self._marks)
            if raw is not None:
                seq, written, count = _MARK.unpack_from(raw)
                return StampMark(ProducerStamp(producer_id, seq, bytes(raw[_MARK.size :])), written, count)
            old = txn.get(key, db=self._old_stamps)
        if old is None:
            return None
        # Appends were atomic then as now, so the entry is whole; its length was not recorded.
        return StampMark(
            ProducerStamp(producer_id, _OLD_STAMP.unpack_from(old)[0], bytes(old[_OLD_STAMP.size :])), 0, 0
        )

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

    def _mark(self, txn: Any, entry: AppendEntry, producer: ProducerStamp) -> None:
        """The entry landed whole (appends are atomic here), so its mark says so."""
        count = len(entry.messages)
        txn.put(
            topic_partition_key(entry.topic, entry.partition) + part(producer.producer_id),
            _MARK.pack(producer.seq, count, count) + producer.meta,
            db=self._marks,
        )

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
        topic, partition = entry.topic, entry.partition
        messages = entry.messages[entry.start :]
        config = configs[(topic, partition)]
        tpk = topic_partition_key(topic, partition)
        start, end, size = self._part_meta_in(txn, tpk)
        if not messages:
            return end
        for i in range(0, len(messages), MESSAGES_PER_VALUE):
            chunk = list(messages[i : i + MESSAGES_PER_VALUE])
            payload = _pack.encode(chunk)
            base = end + i
            key = tpk + _OFFSET.pack(base + len(chunk) - 1)
            txn.put(key, _BATCH.pack(base, len(chunk), now) + payload, db=self._batches)
            extras = _encode_extras(entry, entry.start + i, len(chunk))
            if extras is not None:
                txn.put(key, extras, db=self._extras)
                size += len(extras)
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
            extras = txn.pop(cursor.key(), db=self._extras)
            size -= len(cursor.value()) - _BATCH.size + (len(extras) if extras is not None else 0)
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


def _encode_extras(entry: AppendEntry, first: int, count: int) -> bytes | None:
    """Keys and headers of messages[first:first+count], or None when they have none."""
    keys = None if entry.keys is None else list(entry.keys[first : first + count])
    headers = None if entry.headers is None else [list(h) for h in entry.headers[first : first + count]]
    if (keys is None or not any(k is not None for k in keys)) and (headers is None or not any(headers)):
        return None
    return _pack.encode((keys, headers))


def _add_extras(
    raw: bytes | None,
    have: int,
    count: int,
    taken: slice,
    keys: list[bytes | None] | None,
    headers: list[Headers] | None,
) -> tuple[list[bytes | None] | None, list[Headers] | None]:
    """`keys` and `headers` of a read so far (`have` messages) extended by those of the taken
    part of one stored value of `count` messages (`raw`: its extras, None for none)."""
    value_keys, value_headers = _extras.decode(raw) if raw is not None else (None, None)
    keys = keys if keys is not None else [None] * have
    headers = headers if headers is not None else [()] * have
    keys.extend((value_keys or [None] * count)[taken])
    headers.extend(tuple((name, value) for name, value in h) for h in (value_headers or [[]] * count)[taken])
    return keys, headers


def open_log(data_dir: Path, *, clock: Clock = SYSTEM_CLOCK) -> EmbeddedLog:
    """The embedded log of a data dir (created on first use)."""
    return EmbeddedLog(data_dir / "log", clock=clock)


def open_url(place: str, clock: Clock) -> EmbeddedLog:
    """The embedded log in directory `place` (the composition root's entry point)."""
    return EmbeddedLog(Path(place), clock=clock)
