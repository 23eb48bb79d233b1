"""State store errors."""

from streamcalc.errors import StreamcalcError


class StateError(StreamcalcError):
    """A state store failure."""


class StaleCheckpoint(StateError):
    """The store moved on since this writer read its checkpoint.

    Another writer committed, or state was deleted or reset behind the writer's back. The
    writer must drop every cached value and restart from `StateStore.checkpoint()`.
    """

    def __init__(self, expected: tuple[int, int], found: tuple[int, int]) -> None:
        super().__init__(f"checkpoint moved: expected (seq, generation) {expected}, found {found}")
        self.expected = expected
        self.found = found


class OffsetRegression(StateError):
    """A commit would move a source offset backwards; offsets move back only by reset."""

    def __init__(self, topic: str, partition: int, committed: int, proposed: int) -> None:
        super().__init__(f"offset of {topic}[{partition}] would go back from {committed} to {proposed}")
        self.topic = topic
        self.partition = partition
        self.committed = committed
        self.proposed = proposed


class StateUnavailable(StateError):
    """The store's storage or server failed or cannot be reached; nothing of the operation
    was applied unless the contract says otherwise. Retry later; the cause is chained."""
