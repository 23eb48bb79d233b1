"""The Log contract (log/base.py), end to end on the embedded LMDB log in tmp dirs."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from streamcalc.clock import ManualClock
from streamcalc.log import (
    AppendEntry,
    InvalidTopic,
    LogError,
    ProducerStamp,
    ReadResult,
    TopicConfig,
    check_topic_name,
    embedded,
    partition_for,
)
from streamcalc.log.base import Log
from streamcalc.log.embedded import EmbeddedLog, open_log

LogFactory = Callable[..., EmbeddedLog]
ALL = 1_000_000


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


def msgs(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(n)]


def append_batches(log: EmbeddedLog, topic: str, sizes: list[int], partition: int = 0) -> list[bytes]:
    """Append one batch per size; returns every message in offset order."""
    everything: list[bytes] = []
    for b, size in enumerate(sizes):
        batch = msgs(f"{topic}/{partition}/b{b}", size)
        assert log.append([AppendEntry(topic, partition, batch)]) == [len(everything)]
        everything += batch
    return everything


def wait_for_line(stream: IO[str] | None) -> str:
    assert stream is not None
    line = stream.readline()
    assert line, "helper process closed its stdout before answering"
    return line.strip()


def test_embedded_log_has_every_method_of_the_protocol() -> None:
    methods = [n for n, m in vars(Log).items() if callable(m) and not n.startswith("_")]
    assert "append" in methods
    for name in methods:
        expected = list(inspect.signature(getattr(Log, name)).parameters)
        assert list(inspect.signature(getattr(EmbeddedLog, name)).parameters) == expected, name


# append / read


SIZES = [1, 3, 7, 2, 1, 10, 4, 1, 1, 5] * 5


def test_append_gives_dense_offsets_across_many_batches(log: EmbeddedLog) -> None:
    everything = append_batches(log, "t", SIZES)
    assert log.start_offset("t", 0) == 0
    assert log.end_offset("t", 0) == sum(SIZES) == len(everything)
    assert log.read("t", 0, 0, ALL) == ReadResult(0, everything)


def test_read_from_every_offset_including_mid_batch(log: EmbeddedLog) -> None:
    everything = append_batches(log, "t", SIZES)
    for offset in range(len(everything) + 1):
        result = log.read("t", 0, offset, ALL)
        assert result.offset == offset
        assert result.messages == everything[offset:]
        assert result.next_offset == len(everything)


@pytest.mark.parametrize("offset", [0, 1, 3, 4, 11, 12, 13, 40])
@pytest.mark.parametrize("max_messages", [0, 1, 2, 6, 7, 9, 25, ALL])
def test_read_with_max_messages(log: EmbeddedLog, offset: int, max_messages: int) -> None:
    everything = append_batches(log, "t", SIZES)
    result = log.read("t", 0, offset, max_messages)
    assert result.offset == offset
    assert result.messages == everything[offset : offset + max_messages]


@pytest.mark.parametrize("offset", [0, 2, 4, 11])
@pytest.mark.parametrize("until", [0, 1, 3, 4, 5, 11, 12, 13, 24, 10_000])
@pytest.mark.parametrize("max_messages", [3, ALL])
def test_read_until_stops_before_until(log: EmbeddedLog, offset: int, until: int, max_messages: int) -> None:
    everything = append_batches(log, "t", SIZES)
    result = log.read("t", 0, offset, max_messages, until=until)
    assert result.messages == everything[offset : max(offset, min(until, offset + max_messages))]
    assert result.offset == offset


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


def test_read_past_the_end_and_of_unknown_topics_is_empty(log: EmbeddedLog) -> None:
    append_batches(log, "t", [3, 2])
    assert log.read("t", 0, 5, 10) == ReadResult(5, [])
    assert log.read("t", 0, 99, 10) == ReadResult(99, [])
    assert log.read("nope", 0, 0, 10).messages == []
    assert (log.start_offset("nope", 0), log.end_offset("nope", 0)) == (0, 0)


def test_read_from_a_negative_offset_starts_at_the_first_retained_offset(log: EmbeddedLog) -> None:
    # Contract: read returns messages "from the first retained offset at or after the one asked for".
    everything = append_batches(log, "t", [3, 2])
    assert log.read("t", 0, -1, 10) == ReadResult(0, everything)


def test_empty_append_returns_the_end_offset_and_adds_nothing(log: EmbeddedLog) -> None:
    append_batches(log, "t", [4])
    assert log.append([AppendEntry("t", 0, [])]) == [4]
    assert log.end_offset("t", 0) == 4
    assert log.read("t", 0, 0, ALL).messages == msgs("t/0/b0", 4)


def test_messages_are_opaque_bytes(log: EmbeddedLog) -> None:
    batch = [b"", b"\x00\xff" * 100, "ünï".encode(), b"x" * 100_000]
    log.append([AppendEntry("t", 0, batch)])
    assert log.read("t", 0, 0, ALL).messages == batch


# partitions


def test_multi_partition_topic_keeps_partitions_apart(log: EmbeddedLog) -> None:
    assert log.ensure_topic(TopicConfig("multi", partitions=4)) == TopicConfig("multi", partitions=4)
    per_partition = {p: append_batches(log, "multi", [p + 1, 2 * p + 1], partition=p) for p in range(4)}
    for p, expected in per_partition.items():
        assert log.read("multi", p, 0, ALL) == ReadResult(0, expected)
        assert log.end_offset("multi", p) == len(expected)
    with pytest.raises(InvalidTopic, match="partition"):
        log.append([AppendEntry("multi", 4, [b"x"])])


def test_atomic_multi_entry_append_across_topics_and_partitions(log: EmbeddedLog) -> None:
    log.ensure_topic(TopicConfig("a", partitions=2))
    bases = log.append(
        [AppendEntry("a", 0, [b"a0"]), AppendEntry("a", 1, [b"a1", b"a1'"]), AppendEntry("b", 0, [b"b0"])]
    )
    assert bases == [0, 0, 0]
    assert log.append([AppendEntry("a", 1, [b"x"]), AppendEntry("b", 0, [b"y"])]) == [2, 1]
    assert log.read("a", 1, 0, ALL).messages == [b"a1", b"a1'", b"x"]


@pytest.mark.parametrize(
    "bad_entry",
    [AppendEntry("a", 2, [b"bad"]), AppendEntry("a", -1, [b"bad"]), AppendEntry("bad name", 0, [b"bad"])],
)
def test_a_failing_entry_leaves_the_whole_append_unwritten(log: EmbeddedLog, bad_entry: AppendEntry) -> None:
    log.ensure_topic(TopicConfig("a", partitions=2))
    log.append([AppendEntry("a", 0, [b"before"])])
    with pytest.raises(InvalidTopic):
        log.append(
            [AppendEntry("a", 0, [b"lost?"]), AppendEntry("fresh", 0, [b"lost?"]), bad_entry],
            ProducerStamp("w", 1),
        )
    assert log.read("a", 0, 0, ALL).messages == [b"before"]
    assert log.topic("fresh") is None
    assert log.producer("a", 0, "w") is None
    assert [t.name for t in log.topics()] == ["a"]


def test_partition_for_is_in_range_stable_and_spreads_assets() -> None:
    assets = [f"asset{i}" for i in range(500)]
    for partitions in (1, 2, 3, 8, 16):
        first = [partition_for(a, partitions) for a in assets]
        assert first == [partition_for(a, partitions) for a in assets]
        assert all(0 <= x < partitions for x in first)
        assert set(first) == set(range(partitions))


PARTITION_FOR_SCRIPT = """
    import json, sys
    from streamcalc.log import partition_for
    assets = json.loads(sys.stdin.readline())
    print(json.dumps([[partition_for(a, n) for a in assets] for n in (2, 3, 8, 16)]))
"""


def test_partition_for_is_the_same_in_another_process(python_process_factory) -> None:
    assets = [f"asset{i}" for i in range(200)] + ["ü/:", "a"]
    proc = python_process_factory(PARTITION_FOR_SCRIPT)
    proc.stdin.write(json.dumps(assets) + "\n")
    out = python_process_factory.finish(proc)
    assert json.loads(out) == [[partition_for(a, n) for a in assets] for n in (2, 3, 8, 16)]


# topics


def test_append_auto_creates_a_one_partition_topic(log: EmbeddedLog) -> None:
    assert log.topic("MEASURE_POINT_ORIGIN_o15") is None
    assert log.append([AppendEntry("MEASURE_POINT_ORIGIN_o15", 0, [b"m"])]) == [0]
    assert log.topic("MEASURE_POINT_ORIGIN_o15") == TopicConfig("MEASURE_POINT_ORIGIN_o15", partitions=1)
    with pytest.raises(InvalidTopic):
        log.append([AppendEntry("MEASURE_POINT_ORIGIN_o15", 1, [b"m"])])


def test_ensure_topic_keeps_an_existing_topic(log: EmbeddedLog) -> None:
    created = TopicConfig("t", partitions=3, retention_ms=60_000)
    assert log.ensure_topic(created) == created
    assert log.ensure_topic(TopicConfig("t", partitions=8)) == created
    assert log.topic("t") == created
    log.append([AppendEntry("auto", 0, [b"x"])])
    assert log.ensure_topic(TopicConfig("auto", partitions=4)).partitions == 1
    assert sorted(log.topics(), key=lambda t: t.name) == [TopicConfig("auto"), created]


VALID_NAMES = ["MEASURE_POINT_CAL_o15", "MEASURE_POINT_INTERNAL_o1-2", "a.b-c_D9", "x" * 249, "_"]
INVALID_NAMES = ["", "a b", "a/b", "a:b", "ü", "x" * 250, "t\n", "../etc"]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_topic_names(log: EmbeddedLog, name: str) -> None:
    assert check_topic_name(name) == name
    log.append([AppendEntry(name, 0, [b"x"])])
    assert log.topic(name) == TopicConfig(name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_topic_names_raise_invalid_topic(log: EmbeddedLog, name: str) -> None:
    for attempt in (
        lambda: check_topic_name(name),
        lambda: TopicConfig(name),
        lambda: log.append([AppendEntry(name, 0, [b"x"])]),
        lambda: log.topic(name),
    ):
        with pytest.raises(InvalidTopic, match="invalid topic name"):
            attempt()
    assert log.topics() == []


@pytest.mark.parametrize(
    "kwargs", [{"partitions": 0}, {"partitions": -1}, {"retention_ms": 0}, {"retention_bytes": -5}]
)
def test_invalid_topic_configs_raise_invalid_topic(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidTopic):
        TopicConfig("t", **kwargs)
    assert issubclass(InvalidTopic, LogError)


# idempotent producers


def test_producer_stamps_skip_repeated_and_lower_seqs(log: EmbeddedLog) -> None:
    assert log.producer("t", 0, "w") is None
    assert log.append([AppendEntry("t", 0, [b"1a", b"1b"])], ProducerStamp("w", 1, b"meta1")) == [0]
    assert log.append([AppendEntry("t", 0, [b"1a", b"1b"])], ProducerStamp("w", 1, b"meta1")) == [None]
    assert log.append([AppendEntry("t", 0, [b"old"])], ProducerStamp("w", 0, b"meta0")) == [None]
    assert log.append([AppendEntry("t", 0, [b"dup"])], ProducerStamp("w", 1, b"other")) == [None]
    assert log.producer("t", 0, "w") == ProducerStamp("w", 1, b"meta1")
    assert log.append([AppendEntry("t", 0, [b"5"])], ProducerStamp("w", 5, b"meta5")) == [2]
    assert log.append([AppendEntry("t", 0, [b"3"])], ProducerStamp("w", 3, b"meta3")) == [None]
    assert log.read("t", 0, 0, ALL).messages == [b"1a", b"1b", b"5"]
    assert log.producer("t", 0, "w") == ProducerStamp("w", 5, b"meta5")
    assert log.end_offset("t", 0) == 3


def test_producer_stamps_are_kept_per_partition_and_per_producer(log: EmbeddedLog) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2))
    assert log.append([AppendEntry("t", 0, [b"p0"])], ProducerStamp("w", 7, b"m7")) == [0]
    # a retry of seq 7 that also covers partition 1: only the new partition takes it
    assert log.append(
        [AppendEntry("t", 0, [b"p0"]), AppendEntry("t", 1, [b"p1"])], ProducerStamp("w", 7, b"m7")
    ) == [None, 0]
    assert log.append([AppendEntry("t", 0, [b"v"])], ProducerStamp("v", 1)) == [1]
    assert log.producer("t", 0, "w") == ProducerStamp("w", 7, b"m7")
    assert log.producer("t", 1, "w") == ProducerStamp("w", 7, b"m7")
    assert log.producer("t", 0, "v") == ProducerStamp("v", 1, b"")
    assert log.producer("t", 1, "v") is None
    assert log.producer("other", 0, "w") is None
    assert log.read("t", 0, 0, ALL).messages == [b"p0", b"v"]
    assert log.read("t", 1, 0, ALL).messages == [b"p1"]


def test_stamped_append_with_two_entries_for_one_partition_keeps_both(log: EmbeddedLog) -> None:
    # One append is one batch of the producer: every entry of it is new, even two for one partition.
    bases = log.append(
        [AppendEntry("t", 0, [b"first"]), AppendEntry("t", 0, [b"second"])], ProducerStamp("w", 1)
    )
    assert log.read("t", 0, 0, ALL).messages == [b"first", b"second"]
    assert bases == [0, 1]
    # and the retry of that same append still adds nothing
    assert log.append(
        [AppendEntry("t", 0, [b"first"]), AppendEntry("t", 0, [b"second"])], ProducerStamp("w", 1)
    ) == [None, None]
    assert log.end_offset("t", 0) == 2


def test_producer_stamp_of_an_empty_entry_is_remembered(log: EmbeddedLog) -> None:
    assert log.append([AppendEntry("t", 0, [])], ProducerStamp("w", 3, b"m")) == [0]
    assert log.producer("t", 0, "w") == ProducerStamp("w", 3, b"m")
    assert log.append([AppendEntry("t", 0, [b"x"])], ProducerStamp("w", 3)) == [None]


# consumer groups


def test_commit_and_committed_are_per_group_and_per_topic(log: EmbeddedLog) -> None:
    assert log.committed("g", "t") == {}
    log.commit_offsets("g", {("t", 0): 3, ("t", 1): 5, ("tt", 0): 9, ("t.x", 0): 8})
    log.commit_offsets("h", {("t", 0): 1})
    assert log.committed("g", "t") == {0: 3, 1: 5}
    assert log.committed("g", "tt") == {0: 9}
    assert log.committed("h", "t") == {0: 1}
    assert log.committed("gg", "t") == {}
    log.commit_offsets("g", {("t", 1): 6})
    assert log.committed("g", "t") == {0: 3, 1: 6}


def test_lag_counts_from_the_committed_offset_or_the_start(log: EmbeddedLog) -> None:
    log.ensure_topic(TopicConfig("t", partitions=3))
    append_batches(log, "t", [4, 6], partition=0)
    append_batches(log, "t", [4], partition=1)
    assert log.lag("g", "t") == {0: 10, 1: 4, 2: 0}
    log.commit_offsets("g", {("t", 0): 7})
    assert log.lag("g", "t") == {0: 3, 1: 4, 2: 0}
    assert log.lag("g", "unknown") == {}


def test_reset_offsets_to_earliest_and_latest(log: EmbeddedLog) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2))
    append_batches(log, "t", [4, 6], partition=0)
    append_batches(log, "t", [2], partition=1)
    assert log.reset_offsets("g", "t", "latest") == {0: 10, 1: 2}
    assert log.committed("g", "t") == {0: 10, 1: 2}
    assert log.lag("g", "t") == {0: 0, 1: 0}
    assert log.reset_offsets("g", "t", "earliest") == {0: 0, 1: 0}
    assert log.committed("g", "t") == {0: 0, 1: 0}
    assert log.lag("g", "t") == {0: 10, 1: 2}
    assert log.committed("other", "t") == {}


# retention


def test_retention_by_bytes_drops_old_batches_and_keeps_the_newest(log: EmbeddedLog) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2, retention_bytes=100))
    big = b"x" * 30  # one such message per batch: a little over 30 payload bytes, so 3 batches fit
    for i in range(20):
        assert log.append([AppendEntry("t", 0, [big + b"%02d" % i])]) == [i]
        start, end = log.start_offset("t", 0), log.end_offset("t", 0)
        assert end == i + 1
        assert 1 <= end - start <= 3
    start = log.start_offset("t", 0)
    assert start > 0
    old = log.read("t", 0, 0, ALL)
    assert old.offset == start
    assert old.messages == [big + b"%02d" % i for i in range(start, 20)]
    assert log.read("t", 0, start - 1, ALL) == old

    huge = b"y" * 500  # bigger than the limit on its own: it is still kept
    assert log.append([AppendEntry("t", 0, [huge])]) == [20]
    assert (log.start_offset("t", 0), log.end_offset("t", 0)) == (20, 21)
    assert log.read("t", 0, 0, ALL) == ReadResult(20, [huge])
    assert log.start_offset("t", 1) == 0  # retention is per partition


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


def test_retention_by_age_with_a_manual_clock(log_factory: LogFactory) -> None:
    clock = ManualClock(wall_ms=1_000_000)
    log = log_factory(clock=clock)
    log.ensure_topic(TopicConfig("t", partitions=2, retention_ms=1_000))
    log.ensure_topic(TopicConfig("forever", partitions=1))
    log.append([AppendEntry("t", 0, [b"t0-a", b"t0-b"]), AppendEntry("t", 1, [b"p1-old"])])
    log.append([AppendEntry("forever", 0, [b"keep"])])
    clock.advance(0.5)
    log.append([AppendEntry("t", 0, [b"t500"]), AppendEntry("t", 1, [b"p1-new"])])
    clock.advance(0.6)  # the first batch is now 1,100 ms old, the second 600 ms
    assert log.start_offset("t", 0) == 0  # nothing trims until something runs
    log.append([AppendEntry("t", 0, [b"t1100"])])
    assert log.start_offset("t", 0) == 2
    assert log.read("t", 0, 0, ALL) == ReadResult(2, [b"t500", b"t1100"])
    assert log.start_offset("t", 1) == 0  # only the partition appended to was trimmed

    assert log.enforce_retention() == 1  # partition 1's first batch
    assert log.read("t", 1, 0, ALL) == ReadResult(1, [b"p1-new"])
    assert log.enforce_retention() == 0

    clock.advance(60)
    assert log.enforce_retention() == 1  # partition 0 keeps its newest batch, partition 1 has only one
    assert log.read("t", 0, 0, ALL) == ReadResult(3, [b"t1100"])
    assert log.read("t", 1, 0, ALL) == ReadResult(1, [b"p1-new"])
    assert log.read("forever", 0, 0, ALL) == ReadResult(0, [b"keep"])
    assert log.end_offset("t", 0) == 4
    assert log.append([AppendEntry("t", 0, [b"next"])]) == [4]


def test_lag_and_reset_follow_the_retained_start(log_factory: LogFactory) -> None:
    clock = ManualClock(wall_ms=10_000)
    log = log_factory(clock=clock)
    log.ensure_topic(TopicConfig("t", retention_ms=100))
    log.append([AppendEntry("t", 0, msgs("old", 5))])
    log.commit_offsets("g", {("t", 0): 2})
    clock.advance(1)
    log.append([AppendEntry("t", 0, msgs("new", 3))])
    assert log.start_offset("t", 0) == 5
    assert log.lag("g", "t") == {0: 3}
    assert log.lag("never-committed", "t") == {0: 3}
    assert log.reset_offsets("g", "t", "earliest") == {0: 5}


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
    assert reopened.read("t", 1, 0, ALL) == ReadResult(0, everything)
    assert reopened.read("t", 0, 0, ALL) == ReadResult(0, [b"stamped"])
    assert reopened.producer("t", 0, "w") == ProducerStamp("w", 4, b"meta")
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
    from streamcalc.log import AppendEntry, open_log
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
    from streamcalc.log import AppendEntry, open_log
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
