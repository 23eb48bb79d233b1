"""The memory log beyond the contract (test_log_contract.py runs that on it, with and without
gaps): its partitioner, the gaps it leaves on request, and appends it fails part way."""

from __future__ import annotations

import pytest
from log_support import ALL, located, msgs, read_all

from streamcalc.clock import ManualClock
from streamcalc.log import AppendEntry, LogUnavailable, ProducerStamp, StampMark, TopicConfig
from streamcalc.log.memory import MemoryLog
from streamcalc.log.partitioners import crc32_partition, murmur2_partition


@pytest.fixture
def log(manual_clock: ManualClock) -> MemoryLog:
    return MemoryLog(manual_clock)


def test_keys_are_placed_by_murmur2_not_by_the_embedded_logs_crc32(log: MemoryLog) -> None:
    assets = [f"asset{i}" for i in range(100)]
    placed = [log.partition_for(a, 16) for a in assets]
    assert placed == [murmur2_partition(a, 16) for a in assets]
    assert placed != [crc32_partition(a, 16) for a in assets]


# offset gaps


def test_each_entry_is_followed_by_a_gap_that_reads_step_over() -> None:
    log = MemoryLog(offset_gap=2)
    log.ensure_topic(TopicConfig("t", partitions=2))
    firsts = log.append(
        [AppendEntry("t", 0, [b"a", b"b"]), AppendEntry("t", 0, [b"c"]), AppendEntry("t", 1, [])]
    )
    assert firsts == [0, 4, 0]  # a, b at 0, 1; a gap at 2, 3; c at 4; the empty entry leaves no gap
    assert log.end_offset("t", 0) == 7 and log.end_offset("t", 1) == 0
    assert read_all(log, "t") == [(0, b"a"), (1, b"b"), (4, b"c")]
    first_two = log.read("t", 0, 0, 2)
    assert (first_two.offsets, first_two.next_offset) == (None, 4)
    from_the_gap = log.read("t", 0, 2, ALL)
    assert (from_the_gap.offset, from_the_gap.messages, from_the_gap.next_offset) == (4, [b"c"], 7)
    assert log.read("t", 0, 5, ALL).next_offset == 7
    assert log.append([AppendEntry("t", 0, [b"d"])]) == [7]


def test_a_negative_gap_is_refused() -> None:
    with pytest.raises(ValueError, match="offset_gap"):
        MemoryLog(offset_gap=-1)


# appends that fail part way


def test_a_failed_append_leaves_a_prefix_and_last_stamp_says_how_much() -> None:
    log = MemoryLog()
    stamp = ProducerStamp("w", 3, b"meta")
    entry = AppendEntry("t", 0, msgs("m", 5), keys=[b"k%d" % i for i in range(5)])
    log.fail_after(2)
    with pytest.raises(LogUnavailable):
        log.append([entry], stamp)
    assert log.read("t", 0, 0, ALL).messages == msgs("m", 2)
    mark = log.last_stamp("t", 0, "w")
    assert mark is not None
    assert mark == StampMark(stamp, written=2, count=5) and not mark.complete

    # the writer finishes the entry: every message lands once, in order, and the mark is complete
    log.append([entry._replace(start=mark.written)], stamp)
    result = log.read("t", 0, 0, ALL)
    assert (result.messages, result.keys) == (msgs("m", 5), [b"k%d" % i for i in range(5)])
    assert log.last_stamp("t", 0, "w") == StampMark(stamp, written=5, count=5)


def test_fail_after_is_one_shot_and_counts_across_the_entries_of_one_append() -> None:
    log = MemoryLog()
    log.ensure_topic(TopicConfig("t", partitions=3))
    entries = [AppendEntry("t", p, msgs(f"p{p}", 3)) for p in range(3)]
    log.fail_after(4)
    with pytest.raises(LogUnavailable):
        log.append(entries, ProducerStamp("w", 1))
    assert [len(log.read("t", p, 0, ALL).messages) for p in range(3)] == [3, 1, 0]
    assert [log.last_stamp("t", p, "w") for p in range(3)] == [
        StampMark(ProducerStamp("w", 1), 3, 3),
        StampMark(ProducerStamp("w", 1), 1, 3),
        None,
    ]
    assert log.append([AppendEntry("t", 2, [b"fine"])]) == [0]


@pytest.mark.parametrize(("fail_after", "landed"), [(0, 0), (3, 3), (10, 3)])
def test_an_append_may_fail_having_written_nothing_or_everything(fail_after: int, landed: int) -> None:
    log = MemoryLog()
    log.fail_after(fail_after)
    with pytest.raises(LogUnavailable):
        log.append([AppendEntry("t", 0, msgs("m", 3))], ProducerStamp("w", 1))
    assert log.read("t", 0, 0, ALL).messages == msgs("m", landed)
    mark = log.last_stamp("t", 0, "w")
    assert (None if mark is None else mark.written) == (landed or None)


def test_an_invalid_append_writes_nothing_of_any_entry() -> None:
    log = MemoryLog()
    with pytest.raises(ValueError, match="keys"):
        log.append([AppendEntry("t", 0, [b"fine"]), AppendEntry("t", 0, [b"a", b"b"], keys=[b"k"])])
    with pytest.raises(ValueError, match="start"):
        log.append([AppendEntry("t", 0, [b"a"], start=2)])
    assert (log.topic("t"), log.end_offset("t", 0)) == (None, 0)


# what a mark is made of


def test_an_empty_stamped_entry_leaves_no_mark(log: MemoryLog) -> None:
    log.append([AppendEntry("t", 0, [])], ProducerStamp("w", 1))
    assert log.last_stamp("t", 0, "w") is None


def test_two_entries_of_one_append_for_one_partition_mark_their_own_messages(log: MemoryLog) -> None:
    stamp = ProducerStamp("w", 1, b"m")
    log.append([AppendEntry("t", 0, [b"a", b"b"]), AppendEntry("t", 0, [b"c"])], stamp)
    assert log.last_stamp("t", 0, "w") == StampMark(stamp, written=1, count=1)
    assert located(log.read("t", 0, 0, ALL)) == [(0, b"a"), (1, b"b"), (2, b"c")]


def test_retention_drops_whole_entries_and_counts_them(log: MemoryLog, manual_clock: ManualClock) -> None:
    log.ensure_topic(TopicConfig("t", retention_ms=1_000))
    for n in (3, 2, 1):
        log.append([AppendEntry("t", 0, msgs(f"e{n}", n))])
    manual_clock.advance(2)
    assert log.enforce_retention() == 2
    assert read_all(log, "t") == [(5, b"e1-0")]
