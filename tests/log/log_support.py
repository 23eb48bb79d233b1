"""Helpers of the log tests. Offsets always come from the log (`offset_of`, `next_offset`,
what append returns), never from counting: a log may leave gaps."""

from __future__ import annotations

from streamcalc.log import AppendEntry, Log, ReadResult

ALL = 1_000_000
SIZES = [1, 3, 7, 2, 1, 10, 4, 1, 1, 5] * 5


def msgs(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(n)]


def located(result: ReadResult) -> list[tuple[int, bytes]]:
    """(offset, message) of every message of a read."""
    return [(result.offset_of(i), m) for i, m in enumerate(result.messages)]


def append_batches(log: Log, topic: str, sizes: list[int], partition: int = 0) -> list[bytes]:
    """Append one entry per size, each at or after the end before it; returns every message in order."""
    everything: list[bytes] = []
    for b, size in enumerate(sizes):
        batch = msgs(f"{topic}/{partition}/b{b}", size)
        end = log.end_offset(topic, partition)
        (first,) = log.append([AppendEntry(topic, partition, batch)])
        assert first >= end
        assert log.read(topic, partition, first, 1).messages == batch[:1]
        everything += batch
    return everything


def read_all(log: Log, topic: str, partition: int = 0) -> list[tuple[int, bytes]]:
    """(offset, message) of everything retained in a partition."""
    return located(log.read(topic, partition, 0, ALL))
