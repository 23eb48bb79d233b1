"""The Log contract: durable topics of ordered, offset-addressed messages.

A message is bytes (for measurement points: one JSON record). Each topic has a fixed number
of partitions; each partition is a sequence of messages with dense offsets from 0 that are
never rewritten. Retention may drop a prefix, so a partition's start offset can move up.

Semantics every backend keeps:
- `append` is atomic across all its entries, and durable when it returns.
- Idempotent producers: an append may carry a `ProducerStamp(producer_id, seq, meta)`. Per
  partition the log remembers the highest seq (and its meta) of each producer and skips an
  entry whose seq is not above it. A writer that crashed after appending can therefore
  repeat the same append with the same seq without duplicating anything, and can learn on
  recovery, from `producer()`, which seq last reached each partition.
- Reads never block writers and see only whole appends; `read` returns contiguous messages
  from the first retained offset at or after the one asked for.
- Consumer-group offsets are kept by the log for consumers that keep no state of their own;
  a pipeline keeps its offsets in its state store, with its state.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from streamcalc.log.errors import InvalidTopic

TopicPartition = tuple[str, int]
ResetTarget = Literal["earliest", "latest"]
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class TopicConfig:
    name: str
    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    """Per partition, like Kafka's retention.bytes."""

    def __post_init__(self) -> None:
        check_topic_name(self.name)
        if self.partitions < 1:
            raise InvalidTopic(f"topic {self.name}: partitions must be >= 1, got {self.partitions}")
        for name in ("retention_ms", "retention_bytes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidTopic(f"topic {self.name}: {name} must be positive, got {value}")


@dataclass(frozen=True)
class ProducerStamp:
    producer_id: str
    seq: int
    meta: bytes = b""
    """Opaque to the log; a pipeline stores the input end offsets of the batch here."""


class AppendEntry(NamedTuple):
    topic: str
    partition: int
    messages: Sequence[bytes]


@dataclass(frozen=True)
class ReadResult:
    offset: int
    """Offset of messages[0] (or of the next message to come when there are none)."""
    messages: list[bytes]

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.messages)


def check_topic_name(name: str) -> str:
    if not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopic(f"invalid topic name {name!r}: use 1-249 of letters, digits, '.', '_', '-'")
    return name


def partition_for(asset_id: str, partitions: int) -> int:
    """Stable partition of an asset, the same in every process and on every run. By asset, not
    (asset, point): stages that join an asset's points (LatestRecordMerger, RecordRestorer)
    then find them in one partition, so in one worker of a parallel pipeline."""
    if partitions == 1:
        return 0
    return zlib.crc32(asset_id.encode()) % partitions


class Log(Protocol):
    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        """Create the topic if missing; an existing topic keeps its partition count."""
        ...

    def topic(self, name: str) -> TopicConfig | None: ...

    def topics(self) -> list[TopicConfig]: ...

    def append(
        self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None
    ) -> list[int | None]:
        """Append atomically; per entry the base offset, or None if the producer stamp skipped it.

        Topics that do not exist are created with one partition.
        """
        ...

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        """Up to `max_messages` messages from `offset` (or the first retained one), before `until`."""
        ...

    def start_offset(self, topic: str, partition: int) -> int: ...

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next appended message will get."""
        ...

    def producer(self, topic: str, partition: int, producer_id: str) -> ProducerStamp | None:
        """The last stamp of `producer_id` that reached this partition."""
        ...

    def commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None: ...

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Committed offset per partition (partitions never committed are absent)."""
        ...

    def lag(self, group: str, topic: str) -> dict[int, int]:
        """Per partition: messages between the group's committed offset (or the start) and the end."""
        ...

    def reset_offsets(self, group: str, topic: str, to: ResetTarget) -> dict[int, int]: ...

    def close(self) -> None: ...
