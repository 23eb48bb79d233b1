"""The embedded log beyond the Log contract (test_log_contract.py runs that on it too): how it
stores appends, atomic appends, durability, handles, and readers and writers in other processes."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import lmdb
import pytest
from log_support import ALL, SIZES, append_batches, msgs

from streamcalc.clock import ManualClock
from streamcalc.keycodec import part, topic_partition_key
from streamcalc.log import (
    AppendEntry,
    InvalidTopic,
    LogError,
    LogUnavailable,
    ProducerStamp,
    ReadResult,
    StampMark,
    TopicConfig,
    embedded,
)
from streamcalc.log.embedded import EmbeddedLog, open_log

LogFactory = Callable[..., EmbeddedLog]


@pytest.fixture
def log_factory(tmp_path: Path) -> Iterator[LogFactory]:
    """Open an embedded log (default: tmp_path/"data"); every log opened is closed at teardown."""
    opened: list[EmbeddedLog] = []

    def make(data_dir: Path | None = None, *, clock: ManualClock | None = None) -> EmbeddedLog:
        data_dir = data_dir or tmp_path / "data"
        log = open_log(data_dir) if clock is None else open_log(data_dir, clock=clock)
        opened.append(log)
        return log

    yield make
    for log in reversed(opened):
        log.close()  # close() is idempotent: a test may have closed it already


@pytest.fixture
def log(log_factory: LogFactory) -> EmbeddedLog:
    return log_factory()


def wait_for_line(stream: IO[str] | None) -> str:
    assert stream is not None
    line = stream.readline()
    assert line, "helper process closed its stdout before answering"
    return line.strip()


# append / read


def test_append_gives_dense_offsets_across_many_batches(log: EmbeddedLog) -> None:
    everything = append_batches(log, "t", SIZES)
    assert log.start_offset("t", 0) == 0
    assert log.end_offset("t", 0) == sum(SIZES) == len(everything)
    assert log.read("t", 0, 0, ALL) == ReadResult(0, everything, len(everything))


def test_a_big_append_is_stored_in_values_and_reads_across_them(
    log: EmbeddedLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "MESSAGES_PER_VALUE", 5)
    everything = append_batches(log, "t", [23, 5, 1, 11])
    assert log.end_offset("t", 0) == 40
    for offset in range(41):
        for max_messages in (1, 4, 5, 6, 17, ALL):
            result = log.read("t", 0, offset, max_messages, until=37)
            assert result.messages == everything[offset : max(offset, min(37, offset + max_messages))]
    with log._env.begin(db=log._batches) as txn:  # 5 + 1 + 1 + 3 values
        assert txn.stat(log._batches)["entries"] == 10


# partitions


@pytest.mark.parametrize(
    "bad_entry",
    [AppendEntry("a", 2, [b"bad"]), AppendEntry("a", -1, [b"bad"]), AppendEntry("bad name", 0, [b"bad"])],
)
def test_a_failing_entry_leaves_the_whole_append_unwritten(log: EmbeddedLog, bad_entry: AppendEntry) -> None:
    """More than the contract asks (a prefix may stay): appends here are one transaction."""
    log.ensure_topic(TopicConfig("a", partitions=2))
    log.append([AppendEntry("a", 0, [b"before"])])
    with pytest.raises(InvalidTopic):
        log.append(
            [AppendEntry("a", 0, [b"lost?"]), AppendEntry("fresh", 0, [b"lost?"]), bad_entry],
            ProducerStamp("w", 1),
        )
    assert log.read("a", 0, 0, ALL).messages == [b"before"]
    assert log.topic("fresh") is None
    assert log.last_stamp("a", 0, "w") is None
    assert [t.name for t in log.topics()] == ["a"]


# topics


@pytest.mark.parametrize(
    "kwargs", [{"partitions": 0}, {"partitions": -1}, {"retention_ms": 0}, {"retention_bytes": -5}]
)
def test_invalid_topic_configs_raise_invalid_topic(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidTopic):
        TopicConfig("t", **kwargs)
    assert issubclass(InvalidTopic, LogError)


# retention


def test_retention_by_bytes_keeps_whole_batches(log: EmbeddedLog) -> None:
    log.ensure_topic(TopicConfig("t", retention_bytes=50))
    for b in range(6):
        log.append([AppendEntry("t", 0, msgs(f"b{b}", 5))])
        start = log.start_offset("t", 0)
        assert start % 5 == 0
        result = log.read("t", 0, 0, ALL)
        assert result.offset == start
        assert len(result.messages) % 5 == 0
        assert result.messages[-5:] == msgs(f"b{b}", 5)


# durability and process-local sharing


def test_everything_survives_close_and_reopen(log_factory: LogFactory, tmp_path: Path) -> None:
    log = log_factory()
    log.ensure_topic(TopicConfig("t", partitions=2, retention_bytes=10_000))
    everything = append_batches(log, "t", SIZES, partition=1)
    log.append([AppendEntry("t", 0, [b"stamped"])], ProducerStamp("w", 4, b"meta"))
    log.commit_offsets("g", {("t", 1): 17})
    log.close()

    reopened = log_factory()
    assert reopened.topic("t") == TopicConfig("t", partitions=2, retention_bytes=10_000)
    assert reopened.read("t", 1, 0, ALL) == ReadResult(0, everything, len(everything))
    assert reopened.read("t", 0, 0, ALL) == ReadResult(0, [b"stamped"], 1)
    assert reopened.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 4, b"meta"), 1, 1)
    assert reopened.committed("g", "t") == {1: 17}
    assert reopened.append([AppendEntry("t", 1, [b"more"])]) == [len(everything)]


def test_two_handles_on_one_dir_share_data_and_close_independently(log_factory: LogFactory) -> None:
    first, second = log_factory(), log_factory()
    first.append([AppendEntry("t", 0, [b"a"])])
    assert second.read("t", 0, 0, ALL).messages == [b"a"]
    first.close()
    second.append([AppendEntry("t", 0, [b"b"])])
    assert second.read("t", 0, 0, ALL).messages == [b"a", b"b"]


def test_closing_a_handle_twice_does_not_close_another_handle(log_factory: LogFactory) -> None:
    first, second = log_factory(), log_factory()
    first.close()
    first.close()  # a no-op, not an error
    second.append([AppendEntry("t", 0, [b"still open"])])
    assert second.read("t", 0, 0, ALL).messages == [b"still open"]


# concurrency across processes


CONTINUOUS_WRITER = """
    import pathlib, sys
    from streamcalc.log import AppendEntry
    from streamcalc.log.embedded import open_log
    data, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    log = open_log(data)
    batch = 0
    while not stop.exists() and batch < 200_000:
        n = batch % 7 + 1
        log.append([AppendEntry("t", 0, [b"%d/%d/%d" % (batch, i, n) for i in range(n)])])
        batch += 1
    log.close()
    print(batch, flush=True)
"""


class BatchChecker:
    """Checks that messages `batch/index/size` continue contiguously and reads end on a batch boundary."""

    def __init__(self) -> None:
        self.batch, self.index, self.size = 0, 0, None
        self.offset = 0
        self.boundaries = {0}

    def feed(self, result: ReadResult) -> None:
        assert result.offset == self.offset, "a read skipped or repeated offsets"
        for raw in result.messages:
            batch, index, size = map(int, raw.split(b"/"))
            assert (batch, index) == (self.batch, self.index), f"offset {self.offset}: got {raw!r}"
            assert size == batch % 7 + 1
            self.offset += 1
            if index + 1 == size:
                self.batch, self.index = batch + 1, 0
                self.boundaries.add(self.offset)
            else:
                self.index = index + 1
        assert self.index == 0, f"a read ended inside batch {self.batch}: half an append was visible"


def test_concurrent_reader_sees_only_whole_appends(
    log_factory: LogFactory, tmp_path: Path, python_process_factory
) -> None:
    data, stop = tmp_path / "data", tmp_path / "stop"
    reader = log_factory(data)
    writer = python_process_factory(CONTINUOUS_WRITER, data, stop)
    checker = BatchChecker()
    ends_seen: set[int] = set()
    nonempty_reads = 0
    deadline = time.monotonic() + 30
    while nonempty_reads < 40:
        assert time.monotonic() < deadline, "the writer made no progress"
        assert writer.poll() is None, writer.communicate()[1]
        ends_seen.add(reader.end_offset("t", 0))
        result = reader.read("t", 0, checker.offset, ALL)
        checker.feed(result)
        nonempty_reads += bool(result.messages)
    stop.touch()
    batches = int(python_process_factory.finish(writer))
    checker.feed(reader.read("t", 0, checker.offset, ALL))
    assert checker.batch == batches
    assert reader.end_offset("t", 0) == checker.offset == sum(b % 7 + 1 for b in range(batches))
    assert ends_seen <= checker.boundaries, "end_offset was seen inside an append"


COUNTED_WRITER = """
    import pathlib, sys
    from streamcalc.log import AppendEntry
    from streamcalc.log.embedded import open_log
    data, name, batches = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    log = open_log(data)
    print("ready", flush=True)
    sys.stdin.readline()
    bases = []
    for b in range(batches):
        size = b % 5 + 1
        batch = [f"{name}/{b}/{i}/{size}".encode() for i in range(size)]
        bases.append(log.append([AppendEntry("t", 0, batch)])[0])
    log.close()
    print(" ".join(map(str, bases)), flush=True)
"""


def test_two_processes_appending_concurrently_lose_and_duplicate_nothing(
    log_factory: LogFactory, tmp_path: Path, python_process_factory
) -> None:
    data, batches = tmp_path / "data", 600
    log = log_factory(data)
    writers = {name: python_process_factory(COUNTED_WRITER, data, name, batches) for name in ("w1", "w2")}
    for proc in writers.values():
        assert wait_for_line(proc.stdout) == "ready"
    for proc in writers.values():
        proc.stdin.write("go\n")
        proc.stdin.flush()
    bases = {name: list(map(int, python_process_factory.finish(p).split())) for name, p in writers.items()}

    per_batch = sum(b % 5 + 1 for b in range(batches))
    everything = log.read("t", 0, 0, ALL)
    assert everything.offset == 0
    assert len(everything.messages) == log.end_offset("t", 0) == 2 * per_batch
    assert len(set(everything.messages)) == 2 * per_batch
    for name, starts in bases.items():
        assert len(starts) == batches
        for b, base in enumerate(starts):
            size = b % 5 + 1
            expected = [f"{name}/{b}/{i}/{size}".encode() for i in range(size)]
            assert everything.messages[base : base + size] == expected
        own = [m for m in everything.messages if m.startswith(name.encode() + b"/")]
        assert own == [
            f"{name}/{b}/{i}/{b % 5 + 1}".encode() for b in range(batches) for i in range(b % 5 + 1)
        ]


def test_stamps_written_before_marks_had_counts_read_as_whole_entries(log: EmbeddedLog) -> None:
    """A data dir of the release before this one holds `producers` values (seq, meta): its
    appends were atomic too, so such a stamp's entry is whole, and recovery skips it."""
    with log._env.begin(write=True) as txn:
        key = topic_partition_key("t", 0) + part("w")
        txn.put(key, struct.pack(">q", 9) + b"meta", db=log._old_stamps)
    mark = log.last_stamp("t", 0, "w")
    assert mark == StampMark(ProducerStamp("w", 9, b"meta"), 0, 0) and mark.complete
    log.append([AppendEntry("t", 0, [b"x", b"y"])], ProducerStamp("w", 10))
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 10), 2, 2)


def test_lmdb_errors_reach_callers_as_log_unavailable(tmp_path: Path) -> None:
    small = EmbeddedLog(tmp_path / "small", map_size=256 << 10)
    try:
        with pytest.raises(LogUnavailable, match="LMDB") as caught:
            small.append([AppendEntry("t", 0, [b"x" * (1 << 20)])])
        assert isinstance(caught.value.__cause__, lmdb.Error)
    finally:
        small.close()
