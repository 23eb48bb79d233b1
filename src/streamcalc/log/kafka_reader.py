"""Reading one Kafka partition by offset, with a consumer kept assigned between reads.

A runner reads each of its partitions where its last read ended, so the consumer stays
assigned there and librdkafka's prefetch serves the next read; any other offset is a seek.
Where a read has reached the end it knows only from a fetch: `enable.partition.eof` reports
the high watermark a fetch returned (right on every broker, unlike ListOffsets on some).
An end seen before the read began may be stale, so a read that meets it seeks once more:
a fresh fetch says whether something was appended since.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from streamcalc.log.errors import LogUnavailable

_DRAIN = 1000
"""Messages taken from librdkafka's queue per call."""
_GONE = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC)


class PartitionReader:
    def __init__(self, settings: dict[str, str], topic: str, partition: int, timeout_s: float) -> None:
        """`timeout_s`: how long a read waits for any answer from the brokers before it fails
        with LogUnavailable."""
        self.topic, self.partition = topic, partition
        self._timeout_s = timeout_s
        self.lock = threading.Lock()
        self._consumer = Consumer(reader_settings(settings))
        self._pending: deque[Message] = deque()
        self._next: int | None = None
        """The offset the queue continues at (None: not assigned)."""
        self._eof: int | None = None
        """The high watermark of the last fetch, while nothing came after it."""

    def read(self, offset: int, max_messages: int, until: int | None) -> tuple[list[Message], int]:
        """Messages from `offset` (assumed inside the partition's retained range), and the
        offset after them and after any gap behind them. Call with `lock` held."""
        fresh = offset != self._next
        if fresh:
            self._seek(offset)
        taken: list[Message] = []
        while len(taken) < max_messages:
            if not self._pending and not self._fill():
                if fresh:
                    break
                # the end was seen before this read began: ask the broker again
                self._seek(offset_of(taken[-1]) + 1 if taken else offset)
                fresh = True
                continue
            head = self._pending[0]
            if until is not None and offset_of(head) >= until:
                break
            taken.append(self._pending.popleft())
        if self._pending:
            following = offset_of(self._pending[0])
        elif self._eof is not None:
            following = self._eof
        else:
            following = offset_of(taken[-1]) + 1 if taken else offset
        self._next = following
        return taken, following

    def continues(self, offset: int) -> bool:
        """Whether a read from `offset` goes on where the last one ended (no seek)."""
        return offset == self._next

    def scan_back(self, start: int, end: int, found: Callable[[Message], bool]) -> None:
        """Call `found` on the messages of [start, end), newest first, in growing windows read
        from the end, until it returns True. Call with `lock` held."""
        hi, window = end, 64
        while hi > start:
            lo = max(start, hi - window)
            batch: list[Message] = []
            position = lo
            while position < hi:
                got, position = self.read(position, hi - position, hi)
                if not got:
                    break
                batch += got
            for message in reversed(batch):
                if found(message):
                    return
            hi, window = lo, window * 4

    def close(self) -> None:
        self._consumer.close()

    def _seek(self, offset: int) -> None:
        self._consumer.assign([TopicPartition(self.topic, self.partition, offset)])
        self._pending.clear()
        self._next, self._eof = offset, None

    def _fill(self) -> bool:
        """Queue more messages; False at the end of the partition (as the last fetch said)."""
        if self._eof is not None:
            return False
        deadline = time.monotonic() + self._timeout_s
        while True:
            events = self._consumer.consume(_DRAIN, timeout=0)
            if not events:
                remaining = deadline - time.monotonic()
                event = self._consumer.poll(max(remaining, 0)) if remaining > 0 else None
                if event is None:
                    raise LogUnavailable(
                        f"no answer from the Kafka brokers within {self._timeout_s:g} s reading "
                        f"{self.topic}[{self.partition}]"
                    )
                events = [event]
            for event in events:
                error = event.error()
                if error is None:
                    self._pending.append(event)
                    self._eof = None
                elif error.code() == KafkaError._PARTITION_EOF:
                    self._eof = offset_of(event)
                elif error.fatal() or error.code() in _GONE:
                    raise LogUnavailable(f"reading {self.topic}[{self.partition}] from Kafka: {error}")
                # anything else (a broker down, a connection lost) librdkafka retries; the deadline
                # bounds the wait
            if self._pending:
                return True
            if self._eof is not None:
                return False


def offset_of(message: Message) -> int:
    """A consumed message's offset (confluent-kafka types it optional: produced ones may lack it)."""
    return message.offset() or 0


def reader_settings(settings: dict[str, str]) -> dict[str, str | bool | int]:
    """A consumer that only reads by offset: it joins no group and commits nothing."""
    return {
        "group.id": "streamcalc-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 10,
        "queued.max.messages.kbytes": 16384,
        **settings,
    }
