"""The Log contract: durable topics of ordered, offset-addressed messages.

Written so that the embedded log, an in-memory log and Kafka can all keep it; what Kafka
cannot promise is not promised here (docs/exactly-once.md says how the runner copes).

- A message is a value (bytes; for measurement points one JSON record), an optional key
  (the assetId for measurement points) and optional headers. Each topic has a fixed number
  of partitions; in a partition, offsets increase and are never reused, but **may have
  gaps** (Kafka's transaction markers, compaction). A reader never computes an offset: it
  uses the ones a read returns (`ReadResult.offset_of`, `ReadResult.next_offset`).
- **The partitioner belongs to the backend** (`partition_for`). It must be `h(key) mod
  partitions` for a hash `h` of the backend (for Kafka, murmur2 as its Java client's default
  partitioner, so records that other producers keyed by assetId land where ours do). Workers
  rely on that form: worker k of n (n dividing the partition count P) owns the keys with
  `h mod n == k`, and `(h mod P) mod n == h mod n`.
- `append` is durable when it returns, and keeps the order of each entry's messages. It is
  **not** promised atomic: a crash or an error may leave, of each entry, any prefix of its
  messages in its partition (Kafka without transactions does). An append never skips
  anything: deduplication is the writer's job.
- **Producer stamps.** An append may carry a `ProducerStamp(producer_id, seq, meta)`. The
  log marks every message of each entry with (producer_id, seq, its index in the entry, the
  entry's length) and keeps `meta` with the entry (Kafka: record headers, the meta on the
  entry's first message). `last_stamp` answers, per partition, the newest such mark of a
  producer: which seq last reached the partition and how much of that entry landed. That is
  all a writer needs to finish an interrupted append exactly once (`AppendEntry.start`).
- Reads never block writers and return messages in offset order from the first retained
  offset at or after the one asked for. Retention may drop a prefix, so a partition's start
  offset can move up.
- Consumer-group offsets are kept by the log for consumers that keep no state of their own;
  a pipeline keeps its offsets in its state store, with its state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from streamcalc.keys import TopicPartition
from streamcalc.log.errors import InvalidTopic

ResetTarget = Literal["earliest", "latest"]
Headers = tuple[tuple[str, bytes], ...]
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
    """Opaque to the log; a pipeline lists here the input ranges of its uncommitted batches."""


@dataclass(frozen=True)
class StampMark:
    """The newest stamped entry of a producer in one partition, as far as it landed."""

    stamp: ProducerStamp
    written: int
    """Messages of the entry in the partition: a prefix of it, `count` once it landed whole."""
    count: int
    """Messages the entry had."""

    @property
    def complete(self) -> bool:
        return self.written >= self.count


class AppendEntry(NamedTuple):
    topic: str
    partition: int
    messages: Sequence[bytes]
    """The values."""
    keys: Sequence[bytes | None] | None = None
    """One per message (None: no keys)."""
    headers: Sequence[Headers] | None = None
    """One per message (None: no headers)."""
    start: int = 0
    """Write only messages[start:], stamped with their index in the whole entry: a writer
    finishing an entry of which `StampMark.written` messages landed already."""


@dataclass(frozen=True)
class ReadResult:
    offset: int
    """Offset of messages[0] (or of the next message to come when there are none)."""
    messages: list[bytes]
    next_offset: int
    """Where the next read goes on: after the last message, and after any gap behind it."""
    offsets: list[int] | None = None
    """Each message's offset, where they are not `offset`, `offset + 1`, ... (gaps)."""
    keys: list[bytes | None] | None = None
    """Each message's key (None: none of them has one)."""
    headers: list[Headers] | None = None
    """Each message's headers (None: none of them has any)."""

    def offset_of(self, index: int) -> int:
        return self.offset + index if self.offsets is None else self.offsets[index]


def check_topic_name(name: str) -> str:
    if not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopic(f"invalid topic name {name!r}: use 1-249 of letters, digits, '.', '_', '-'")
    return name


def check_entry(entry: AppendEntry, partitions: int) -> None:
    """InvalidTopic unless the entry's topic (of `partitions`) has its partition; ValueError
    unless its keys and headers match its messages and its start is within them."""
    if not 0 <= entry.partition < partitions:
        raise InvalidTopic(
            f"topic {entry.topic} has {partitions} partition(s); no partition {entry.partition}"
        )
    n = len(entry.messages)
    for name, given in (("keys", entry.keys), ("headers", entry.headers)):
        if given is not None and len(given) != n:
            raise ValueError(f"an entry of {n} messages has {len(given)} {name}")
    if not 0 <= entry.start <= n:
        raise ValueError(f"an entry of {n} messages cannot start at {entry.start}")


class Log(Protocol):
    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        """Create the topic if missing; an existing topic keeps its partition count."""
        ...

    def topic(self, name: str) -> TopicConfig | None: ...

    def topics(self) -> list[TopicConfig]: ...

    def partition_for(self, key: str, partitions: int) -> int:
        """The partition of `key` (an assetId) among `partitions`: `h(key) mod partitions`,
        the same in every process and on every run (see the module doc)."""
        ...

    def append(self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None) -> list[int]:
        """Append, durably; per entry the offset its first written message got (the end offset
        when it wrote none). Topics that do not exist are created with one partition. Not
        atomic: after a failure a prefix of each entry may be in the log (module doc)."""
        ...

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        """Up to `max_messages` messages from `offset` (or the first retained one), before `until`."""
        ...

    def start_offset(self, topic: str, partition: int) -> int:
        """The first retained offset."""
        ...

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset after the last message: a read from here waits for new messages."""
        ...

    def last_stamp(self, topic: str, partition: int, producer_id: str) -> StampMark | None:
        """The newest stamped entry of `producer_id` in this partition, None if none reached it."""
        ...

    def commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets of partitions of existing topics (Kafka refuses others)."""
        ...

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Committed offset per partition (partitions never committed are absent)."""
        ...

    def lag(self, group: str, topic: str) -> dict[int, int]:
        """Per partition: messages between the group's committed offset (or the start) and the end."""
        ...

    def reset_offsets(self, group: str, topic: str, to: ResetTarget) -> dict[int, int]: ...

    def enforce_retention(self) -> int:
        """Drop what retention allows in every topic; returns how many units it dropped. Called
        now and then by the supervisor; a no-op where the broker enforces retention itself."""
        ...

    def close(self) -> None: ...
