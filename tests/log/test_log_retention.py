"""The Log contract's retention, on the logs that enforce it themselves: a topic's
retention_bytes and retention_ms drop its oldest messages, at appends and at
enforce_retention, and lag and reset follow the retained start.

Kafka is not among them: its brokers enforce retention on their own clock and schedule
(log.retention.check.interval.ms), not on the tests' manual clock. What the Kafka log owes
instead (the settings reach the broker; enforce_retention drops nothing) is tested in
test_kafka_log.py.
"""

from __future__ import annotations

import pytest
from log_support import ALL, located, msgs, read_all

from streamcalc.clock import ManualClock
from streamcalc.log import AppendEntry, Log, TopicConfig

SELF_RETAINING = ["memory", "memory-gapped", "embedded"]
pytestmark = pytest.mark.parametrize("log", SELF_RETAINING, indirect=True)


def test_retention_by_bytes_drops_the_oldest_messages_and_keeps_the_newest(log: Log) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2, retention_bytes=100))
    big = b"x" * 30  # one such message per entry: about 3 fit
    sent = [big + b"%02d" % i for i in range(20)]
    for i, message in enumerate(sent):
        log.append([AppendEntry("t", 0, [message])])
        kept = log.read("t", 0, 0, ALL)
        assert kept.messages == sent[i + 1 - len(kept.messages) : i + 1]
        assert 1 <= len(kept.messages) <= 3
        assert kept.offset == log.start_offset("t", 0)
    start = log.start_offset("t", 0)
    assert start > 0
    assert log.read("t", 0, start - 1, ALL).messages == log.read("t", 0, 0, ALL).messages

    huge = b"y" * 500  # bigger than the limit on its own: it is still kept
    (first,) = log.append([AppendEntry("t", 0, [huge])])
    assert located(log.read("t", 0, 0, ALL)) == [(first, huge)]
    assert log.start_offset("t", 0) == first
    assert log.start_offset("t", 1) == 0  # retention is per partition


def test_retention_by_age_on_append_and_by_enforce_retention(log: Log, manual_clock: ManualClock) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2, retention_ms=1_000))
    log.ensure_topic(TopicConfig("forever", partitions=1))
    log.append([AppendEntry("t", 0, [b"t0-a", b"t0-b"]), AppendEntry("t", 1, [b"p1-old"])])
    log.append([AppendEntry("forever", 0, [b"keep"])])
    manual_clock.advance(0.5)
    log.append([AppendEntry("t", 0, [b"t500"]), AppendEntry("t", 1, [b"p1-new"])])
    manual_clock.advance(0.6)  # the first entries are now 1,100 ms old, the second 600 ms
    assert log.start_offset("t", 0) == 0  # nothing trims until something runs
    log.append([AppendEntry("t", 0, [b"t1100"])])
    assert log.read("t", 0, 0, ALL).messages == [b"t500", b"t1100"]
    assert log.start_offset("t", 1) == 0  # only the partition appended to was trimmed

    assert log.enforce_retention() > 0  # partition 1's first entry
    assert log.read("t", 1, 0, ALL).messages == [b"p1-new"]
    assert log.enforce_retention() == 0
    assert log.read("forever", 0, 0, ALL).messages == [b"keep"]


def test_lag_and_reset_follow_the_retained_start(log: Log, manual_clock: ManualClock) -> None:
    log.ensure_topic(TopicConfig("t", retention_ms=100))
    log.append([AppendEntry("t", 0, msgs("old", 5))])
    log.commit_offsets("g", {("t", 0): read_all(log, "t")[2][0]})
    manual_clock.advance(1)
    log.append([AppendEntry("t", 0, msgs("new", 3))])
    start = log.start_offset("t", 0)
    assert read_all(log, "t")[0] == (start, b"new-0")
    assert log.lag("g", "t") == {0: 3}
    assert log.lag("never-committed", "t") == {0: 3}
    assert log.reset_offsets("g", "t", "earliest") == {0: start}
