"""The in-memory Log: the Log contract in one process, for tests and for an API that runs no
pipelines. Nothing survives the process.

It is not the embedded log without a disk: it places keys by murmur2 (Kafka's partitioner,
not the embedded log's CRC-32), and on request leaves gaps between entries (`offset_gap`, as
Kafka's transaction markers do) or fails an append part way (`fail_after`). Tests run on it
show that nothing above the Log assumes one partitioner, dense offsets or atomic appends.

One lock serialises every call; reads copy what they return.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.keys import TopicPartition
from streamcalc.log.base import (
    AppendEntry,
    Headers,
    ProducerStamp,
    ReadResult,
    ResetTarget,
    StampMark,
    TopicConfig,
    check_entry,
    check_topic_name,
)
from streamcalc.log.errors import LogUnavailable
from streamcalc.log.partitioners import murmur2_partition


@dataclass
class _Batch:
    """What one entry wrote in one append, at offsets base, base + 1, ... (gaps lie between batches).

    Each message's stamp mark is (stamp.producer_id, stamp.seq, first_index + its position,
    count); the stamp's meta is kept here, once for the batch."""

    base: int
    values: list[bytes]
    keys: list[bytes | None]
    headers: list[Headers]
    appended_ms: int
    stamp: ProducerStamp | None
    first_index: int
    """Index in its entry of values[0]: `AppendEntry.start` of the write."""
    count: int
    """Messages the whole entry had."""
    size: int = 0
    """Bytes of values, keys and headers: what retention_bytes counts."""

    def __post_init__(self) -> None:
        self.size = sum(map(len, self.values)) + sum(len(k or b"") for k in self.keys)
        self.size += sum(len(name.encode()) + len(v) for h in self.headers for name, v in h)


@dataclass
class _Partition:
    batches: list[_Batch] = field(default_factory=list)
    bases: list[int] = field(default_factory=list)
    """Each batch's base, to find the batch of an offset by bisection."""
    end: int = 0
    size: int = 0

    @property
    def start(self) -> int:
        return self.batches[0].base if self.batches else self.end

    def locate(self, offset: int) -> tuple[int, int]:
        """(batch index, position in it) of the first message at or after `offset`."""
        i = bisect_right(self.bases, offset) - 1
        if i < 0:
            return 0, 0
        pos = offset - self.bases[i]
        return (i, pos) if pos < len(self.batches[i].values) else (i + 1, 0)

    def messages_from(self, offset: int) -> int:
        i, pos = self.locate(offset)
        return sum(len(b.values) for b in self.batches[i:]) - pos

    def add(self, batch: _Batch, gap: int) -> None:
        self.batches.append(batch)
        self.bases.append(batch.base)
        self.end = batch.base + len(batch.values) + gap
        self.size += batch.size

    def trim(self, config: TopicConfig, now_ms: int) -> int:
        """Drop whole batches from the front while over the size or age limit; keeps the newest."""
        if config.retention_bytes is None and config.retention_ms is None:
            return 0
        dropped, size = 0, self.size
        while dropped < len(self.batches) - 1:
            batch = self.batches[dropped]
            too_big = config.retention_bytes is not None and size > config.retention_bytes
            too_old = config.retention_ms is not None and batch.appended_ms < now_ms - config.retention_ms
            if not (too_big or too_old):
                break
            size -= batch.size
            dropped += 1
        del self.batches[:dropped], self.bases[:dropped]
        self.size = size
        return dropped


class MemoryLog:
    def __init__(self, clock: Clock = SYSTEM_CLOCK, *, offset_gap: int = 0) -> None:
        """`offset_gap`: offsets left unused after each entry an append writes (0: dense offsets)."""
        if offset_gap < 0:
            raise ValueError(f"offset_gap must be >= 0, got {offset_gap}")
        self._clock = clock
        self._gap = offset_gap
        self._lock = threading.Lock()
        self._topics: dict[str, TopicConfig] = {}
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._groups: dict[str, dict[TopicPartition, int]] = {}
        self._fail_after: int | None = None

    def fail_after(self, messages: int) -> None:
        """Make the next append raise LogUnavailable once it has written `messages` of its
        messages (all of them, if it has no more): what a crash or a lost connection leaves."""
        if messages < 0:
            raise ValueError(f"fail_after takes a count of messages >= 0, got {messages}")
        with self._lock:
            self._fail_after = messages

    # topics

    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        with self._lock:
            return self._topics.setdefault(config.name, config)

    def topic(self, name: str) -> TopicConfig | None:
        with self._lock:
            return self._topics.get(check_topic_name(name))

    def topics(self) -> list[TopicConfig]:
        with self._lock:
            return [self._topics[name] for name in sorted(self._topics)]

    def partition_for(self, key: str, partitions: int) -> int:
        return murmur2_partition(key, partitions)

    # append / read

    def append(self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None) -> list[int]:
        now = self._clock.wall_ms()
        with self._lock:
            configs = [self._checked(entry) for entry in entries]
            for config in configs:
                self._topics.setdefault(config.name, config)
            budget, self._fail_after = self._fail_after, None
            firsts = []
            for entry in entries:
                part = self._partitions.setdefault((entry.topic, entry.partition), _Partition())
                firsts.append(part.end)
                wanted = len(entry.messages) - entry.start
                written = wanted if budget is None else min(wanted, budget)
                if written:
                    part.add(self._batch(entry, written, part.end, producer, now), self._gap)
                    part.trim(self._topics[entry.topic], now)
                if budget is not None:
                    budget -= written
                    if written < wanted:
                        raise LogUnavailable(
                            f"append failed part way, in entry {len(firsts) - 1} (fail_after)"
                        )
            if budget is not None:
                raise LogUnavailable("append failed after writing all of it (fail_after)")
            return firsts

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        with self._lock:
            part = self._partitions.get((topic, partition)) or _Partition()
            return _read(part, offset, max_messages, until)

    def start_offset(self, topic: str, partition: int) -> int:
        with self._lock:
            part = self._partitions.get((topic, partition))
            return 0 if part is None else part.start

    def end_offset(self, topic: str, partition: int) -> int:
        with self._lock:
            part = self._partitions.get((topic, partition))
            return 0 if part is None else part.end

    def last_stamp(self, topic: str, partition: int, producer_id: str) -> StampMark | None:
        with self._lock:
            part = self._partitions.get((topic, partition)) or _Partition()
            for batch in reversed(part.batches):
                if batch.stamp is not None and batch.stamp.producer_id == producer_id:
                    return StampMark(batch.stamp, batch.first_index + len(batch.values), batch.count)
        return None

    # consumer groups

    def commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self._groups.setdefault(group, {}).update(offsets)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with self._lock:
            return {p: o for (t, p), o in self._groups.get(group, {}).items() if t == topic}

    def lag(self, group: str, topic: str) -> dict[int, int]:
        """Messages, not offsets: the gaps between them are not counted."""
        with self._lock:
            committed = self._groups.get(group, {})
            return {
                p: part.messages_from(max(committed.get((topic, p), part.start), part.start))
                for p, part in self._each_partition(topic)
            }

    def reset_offsets(self, group: str, topic: str, to: ResetTarget) -> dict[int, int]:
        with self._lock:
            offsets = {
                p: part.start if to == "earliest" else part.end for p, part in self._each_partition(topic)
            }
            self._groups.setdefault(group, {}).update({(topic, p): o for p, o in offsets.items()})
        return offsets

    def enforce_retention(self) -> int:
        """Apply size and age retention to every partition; returns the batches dropped."""
        now = self._clock.wall_ms()
        with self._lock:
            return sum(
                part.trim(config, now)
                for config in self._topics.values()
                for _, part in self._each_partition(config.name)
            )

    def close(self) -> None:
        """Nothing to release."""

    # internals

    def _checked(self, entry: AppendEntry) -> TopicConfig:
        """The entry's topic config (a new one-partition topic if missing), once the entry is valid."""
        config = self._topics.get(entry.topic) or TopicConfig(entry.topic)
        check_entry(entry, config.partitions)
        return config

    def _batch(
        self, entry: AppendEntry, written: int, base: int, producer: ProducerStamp | None, now: int
    ) -> _Batch:
        lo, hi = entry.start, entry.start + written
        return _Batch(
            base=base,
            values=[bytes(v) for v in entry.messages[lo:hi]],
            keys=[None] * written if entry.keys is None else list(entry.keys[lo:hi]),
            headers=[()] * written if entry.headers is None else [tuple(h) for h in entry.headers[lo:hi]],
            appended_ms=now,
            stamp=producer,
            first_index=lo,
            count=len(entry.messages),
        )

    def _each_partition(self, topic: str) -> list[tuple[int, _Partition]]:
        config = self._topics.get(topic)
        if config is None:
            return []
        return [(p, self._partitions.get((topic, p)) or _Partition()) for p in range(config.partitions)]


def _read(part: _Partition, offset: int, max_messages: int, until: int | None) -> ReadResult:
    values: list[bytes] = []
    keys: list[bytes | None] = []
    headers: list[Headers] = []
    offsets: list[int] = []
    i, pos = part.locate(offset)
    while i < len(part.batches) and len(values) < max_messages:
        batch = part.batches[i]
        first = batch.base + pos
        take = min(len(batch.values) - pos, max_messages - len(values))
        if until is not None:
            take = min(take, until - first)
        if take <= 0:
            break
        values += batch.values[pos : pos + take]
        keys += batch.keys[pos : pos + take]
        headers += batch.headers[pos : pos + take]
        offsets += range(first, first + take)
        pos += take
        if pos == len(batch.values):
            i, pos = i + 1, 0
    following = part.batches[i].base + pos if i < len(part.batches) else max(offset, part.end)
    if not values:
        return ReadResult(following, [], following)
    return ReadResult(
        offset=offsets[0],
        messages=values,
        next_offset=following if i < len(part.batches) else part.end,
        offsets=None if offsets[-1] - offsets[0] == len(offsets) - 1 else offsets,
        keys=None if all(k is None for k in keys) else keys,
        headers=None if not any(headers) else headers,
    )


def open_url(place: str, clock: Clock) -> MemoryLog:
    """The log of a `memory` URL (which has no place)."""
    return MemoryLog(clock)


__all__ = ["MemoryLog", "open_url"]
