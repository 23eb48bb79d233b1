"""What a batch reads from its source partitions: each partition's offset range and messages,
kept with the offsets the log gave them (the Log contract allows gaps, so a message's offset
is never computed from the first one's unless the log returned them dense)."""

from __future__ import annotations

from streamcalc.keys import TopicPartition
from streamcalc.log import ReadResult


class PartitionRead:
    """What a batch read from one source partition: the range [start, end) and its messages."""

    __slots__ = ("base", "end", "messages", "offsets", "start")

    def __init__(self, start: int) -> None:
        self.start = self.end = self.base = start
        self.messages: list[bytes] = []
        self.offsets: list[int] | None = None
        """Each message's offset, once they are not base, base + 1, ... (a gap, or retention)."""

    def add(self, got: ReadResult) -> None:
        if not self.messages:
            self.base = got.offset
        if self.offsets is None and (got.offsets is not None or got.offset != self.base + len(self.messages)):
            self.offsets = [self.base + i for i in range(len(self.messages))]
        if self.offsets is not None:
            self.offsets.extend(got.offset_of(i) for i in range(len(got.messages)))
        self.messages.extend(got.messages)
        self.end = max(self.end, got.next_offset)

    def offset_of(self, index: int) -> int:
        return self.base + index if self.offsets is None else self.offsets[index]


Reads = dict[TopicPartition, PartitionRead]
"""source partition -> what one batch read from it."""
