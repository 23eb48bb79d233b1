"""The Log contract (log/base.py), run against every log backend.

Each test runs once per backend in LOG_BACKENDS, opened from its bare URL through the
composition root on a manual clock; `memory-gapped` is the memory log leaving offsets unused
after every entry, as Kafka's transaction markers do, so every test here also shows that it
takes offsets only from the log. What only one backend can show (durability, other processes,
gaps and failures on demand) is in that backend's own test module; retention, which only some
logs enforce themselves, is in test_log_retention.py.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from log_support import ALL, SIZES, append_batches, located, msgs, read_all

from streamcalc.log import (
    AppendEntry,
    Headers,
    InvalidTopic,
    Log,
    ProducerStamp,
    StampMark,
    TopicConfig,
    check_topic_name,
)

LOG_BACKENDS = ["memory", "memory-gapped", "embedded", "kafka"]
pytestmark = pytest.mark.parametrize("log", LOG_BACKENDS, indirect=True)


def test_has_every_method_of_the_protocol(log: Log) -> None:
    methods = [n for n, m in vars(Log).items() if callable(m) and not n.startswith("_")]
    assert "last_stamp" in methods
    for name in methods:
        expected = list(inspect.signature(getattr(Log, name)).parameters)
        assert list(inspect.signature(getattr(type(log), name)).parameters) == expected, name


# topics


def test_append_auto_creates_a_one_partition_topic(log: Log) -> None:
    assert log.topic("MEASURE_POINT_ORIGIN_o15") is None
    assert log.append([AppendEntry("MEASURE_POINT_ORIGIN_o15", 0, [b"m"])]) == [0]
    assert log.topic("MEASURE_POINT_ORIGIN_o15") == TopicConfig("MEASURE_POINT_ORIGIN_o15", partitions=1)
    with pytest.raises(InvalidTopic):
        log.append([AppendEntry("MEASURE_POINT_ORIGIN_o15", 1, [b"m"])])


def test_ensure_topic_keeps_an_existing_topic(log: Log) -> None:
    created = TopicConfig("t", partitions=3, retention_ms=60_000)
    assert log.ensure_topic(created) == created
    assert log.ensure_topic(TopicConfig("t", partitions=8)) == created
    assert log.topic("t") == created
    log.append([AppendEntry("auto", 0, [b"x"])])
    assert log.ensure_topic(TopicConfig("auto", partitions=4)).partitions == 1
    assert sorted(log.topics(), key=lambda t: t.name) == [TopicConfig("auto"), created]


@pytest.mark.parametrize(
    "name", ["MEASURE_POINT_CAL_o15", "MEASURE_POINT_INTERNAL_o1-2", "a.b-c_D9", "x" * 249, "_"]
)
def test_valid_topic_names(log: Log, name: str) -> None:
    assert check_topic_name(name) == name
    log.append([AppendEntry(name, 0, [b"x"])])
    assert log.topic(name) == TopicConfig(name)


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a:b", "ü", "x" * 250, "t\n", "../etc"])
def test_invalid_topic_names_raise_invalid_topic(log: Log, name: str) -> None:
    for attempt in (lambda: log.append([AppendEntry(name, 0, [b"x"])]), lambda: log.topic(name)):
        with pytest.raises(InvalidTopic, match="invalid topic name"):
            attempt()
    assert log.topics() == []


@pytest.mark.parametrize("partition", [2, -1])
def test_a_partition_the_topic_does_not_have_raises_invalid_topic(log: Log, partition: int) -> None:
    log.ensure_topic(TopicConfig("a", partitions=2))
    with pytest.raises(InvalidTopic, match="partition"):
        log.append([AppendEntry("a", partition, [b"bad"])])
    assert log.end_offset("a", 0) == log.end_offset("a", 1) == 0


# the partitioner


ASSETS = [f"asset{i}" for i in range(500)] + ["ü/:", "a", ""]


def test_partition_for_is_in_range_and_spreads_assets(log: Log) -> None:
    for partitions in (1, 2, 3, 8, 16):
        placed = [log.partition_for(a, partitions) for a in ASSETS]
        assert placed == [log.partition_for(a, partitions) for a in ASSETS]
        assert set(placed) == set(range(partitions))


@pytest.mark.parametrize(("partitions", "workers"), [(16, 2), (16, 4), (16, 8), (12, 3), (12, 6), (6, 6)])
def test_partition_for_is_h_mod_n_so_workers_own_whole_assets(
    log: Log, partitions: int, workers: int
) -> None:
    # worker k of n owns the partitions p with p mod n == k: it sees every record of its assets
    for asset in ASSETS:
        assert log.partition_for(asset, partitions) % workers == log.partition_for(asset, workers)


PARTITION_FOR_SCRIPT = """
    import json, sys
    from pathlib import Path
    from streamcalc.backends import Backends
    log = Backends.resolve(Path(sys.argv[1]), log=sys.argv[2]).log
    assets = json.loads(sys.stdin.readline())
    print(json.dumps([[log.partition_for(a, n) for a in assets] for n in (2, 3, 8, 16)]))
    log.close()
"""


def test_partition_for_is_the_same_in_another_process(
    log: Log, request: pytest.FixtureRequest, tmp_path: Path, python_process_factory
) -> None:
    scheme = request.node.callspec.params["log"].removesuffix("-gapped")
    url = request.getfixturevalue("kafka_url") if scheme == "kafka" else scheme
    proc = python_process_factory(PARTITION_FOR_SCRIPT, tmp_path, url)
    proc.stdin.write(json.dumps(ASSETS) + "\n")
    out = python_process_factory.finish(proc)
    assert json.loads(out) == [[log.partition_for(a, n) for a in ASSETS] for n in (2, 3, 8, 16)]


# append and read


def test_append_returns_each_entrys_first_offset_and_read_keeps_the_order(log: Log) -> None:
    everything = append_batches(log, "t", SIZES)
    result = log.read("t", 0, 0, ALL)
    assert result.messages == everything
    offsets = [o for o, _ in located(result)]
    assert offsets == sorted(set(offsets))
    assert result.offset == offsets[0] == log.start_offset("t", 0)
    assert result.next_offset == log.end_offset("t", 0) > offsets[-1]


def read_all_after(log: Log, sizes: list[int]) -> list[tuple[int, bytes]]:
    """Append one entry per size to t[0]; then (offset, message) of all of it."""
    append_batches(log, "t", sizes)
    return read_all(log, "t")


def test_read_from_every_offset_returns_the_messages_at_or_after_it(log: Log) -> None:
    everything = read_all_after(log, [1, 3, 7, 2, 1, 4])
    end = log.end_offset("t", 0)
    for offset in range(-1, end + 1):
        result = log.read("t", 0, offset, ALL)
        assert located(result) == [(o, m) for o, m in everything if o >= offset], offset
        assert result.next_offset == end


@pytest.mark.parametrize("max_messages", [1, 2, 6, 7, 9, 25])
def test_reads_of_max_messages_chained_by_next_offset_read_everything_once(
    log: Log, max_messages: int
) -> None:
    everything = read_all_after(log, SIZES)
    got: list[tuple[int, bytes]] = []
    offset = 0
    while True:
        result = log.read("t", 0, offset, max_messages)
        assert len(result.messages) <= max_messages
        if not result.messages:
            break
        got += located(result)
        offset = result.next_offset
    assert got == everything
    assert offset == log.end_offset("t", 0)


def test_read_stops_before_until_and_at_max_messages_and_skips_nothing(log: Log) -> None:
    everything = read_all_after(log, [1, 3, 2, 4])
    end = log.end_offset("t", 0)
    for offset in range(end + 1):
        for until in range(end + 2):
            for max_messages in (0, 1, 3, ALL):
                result = log.read("t", 0, offset, max_messages, until=until)
                wanted = [(o, m) for o, m in everything if offset <= o < until][:max_messages]
                assert located(result) == wanted, (offset, until, max_messages)
                # nothing between the asked offset and next_offset was left out
                skipped = [o for o, _ in everything if offset <= o < result.next_offset]
                assert skipped == [o for o, _ in wanted], (offset, until, max_messages)


def test_read_past_the_end_and_of_unknown_topics_is_empty(log: Log) -> None:
    append_batches(log, "t", [3, 2])
    end = log.end_offset("t", 0)
    at_end = log.read("t", 0, end, 10)
    assert (at_end.messages, at_end.next_offset) == ([], end)
    assert log.read("t", 0, end + 99, 10).messages == []
    assert log.read("nope", 0, 0, 10).messages == []
    assert (log.start_offset("nope", 0), log.end_offset("nope", 0)) == (0, 0)
    assert log.last_stamp("nope", 0, "w") is None


def test_a_read_from_the_end_sees_exactly_what_is_appended_next(log: Log) -> None:
    append_batches(log, "t", [3, 2])
    end = log.end_offset("t", 0)
    (first,) = log.append([AppendEntry("t", 0, [b"new1", b"new2"])])
    assert first >= end
    result = log.read("t", 0, end, ALL)
    assert (result.messages, result.offset) == ([b"new1", b"new2"], first)


def test_empty_append_returns_the_end_offset_and_adds_nothing(log: Log) -> None:
    append_batches(log, "t", [4])
    end = log.end_offset("t", 0)
    assert log.append([AppendEntry("t", 0, [])]) == [end]
    assert log.end_offset("t", 0) == end
    assert log.read("t", 0, 0, ALL).messages == msgs("t/0/b0", 4)


def test_messages_are_opaque_bytes(log: Log) -> None:
    batch = [b"", b"\x00\xff" * 100, "ünï".encode(), b"x" * 100_000]
    log.append([AppendEntry("t", 0, batch)])
    assert log.read("t", 0, 0, ALL).messages == batch


KEYS: list[bytes | None] = [b"asset-1", None, "ü".encode(), b""]
HEADERS: list[Headers] = [(("h", b"1"),), (), (("x", b""), ("y", b"\x00\xff")), (("h", b"a"), ("h", b"b"))]


def test_keys_and_headers_come_back_with_their_messages(log: Log) -> None:
    log.append([AppendEntry("t", 0, [b"bare"])])
    log.append([AppendEntry("t", 0, msgs("kh", 4), keys=KEYS, headers=HEADERS)])
    log.append([AppendEntry("t", 0, msgs("k", 2), keys=[b"k0", b"k1"])])
    result = log.read("t", 0, 0, ALL)
    assert result.messages == [b"bare", *msgs("kh", 4), *msgs("k", 2)]
    assert result.keys == [None, *KEYS, b"k0", b"k1"]
    assert result.headers == [(), *HEADERS, (), ()]
    bare = log.read("t", 0, 0, 1)
    assert (bare.messages, bare.keys, bare.headers) == ([b"bare"], None, None)
    keyed_only = log.read("t", 0, log.read("t", 0, 0, 5).next_offset, ALL)
    assert (keyed_only.keys, keyed_only.headers) == ([b"k0", b"k1"], None)


# partitions and entries


def test_multi_partition_topic_keeps_partitions_apart(log: Log) -> None:
    assert log.ensure_topic(TopicConfig("multi", partitions=4)) == TopicConfig("multi", partitions=4)
    per_partition = {p: append_batches(log, "multi", [p + 1, 2 * p + 1], partition=p) for p in range(4)}
    for p, expected in per_partition.items():
        result = log.read("multi", p, 0, ALL)
        assert result.messages == expected
        assert log.end_offset("multi", p) == result.next_offset


def test_an_append_of_several_entries_returns_each_ones_first_offset(log: Log) -> None:
    log.ensure_topic(TopicConfig("a", partitions=2))
    firsts = log.append(
        [AppendEntry("a", 0, [b"a0"]), AppendEntry("a", 1, [b"a1", b"a1'"]), AppendEntry("b", 0, [b"b0"])]
    )
    assert firsts == [0, 0, 0]
    firsts = log.append(
        [AppendEntry("a", 1, [b"x"]), AppendEntry("b", 0, [b"y"]), AppendEntry("b", 0, [b"z"])]
    )
    assert log.read("a", 1, 0, ALL).messages == [b"a1", b"a1'", b"x"]
    assert located(log.read("b", 0, firsts[1], ALL)) == [(firsts[1], b"y"), (firsts[2], b"z")]
    assert firsts[2] > firsts[1] > 0


# producer stamps


def test_last_stamp_is_none_until_a_stamped_entry_reaches_the_partition(log: Log) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2))
    assert log.last_stamp("t", 0, "w") is None
    log.append([AppendEntry("t", 0, [b"unstamped"])])
    log.append([AppendEntry("t", 1, [b"stamped"])], ProducerStamp("w", 1))
    assert log.last_stamp("t", 0, "w") is None
    assert log.last_stamp("t", 1, "v") is None
    assert log.last_stamp("t", 1, "w") == StampMark(ProducerStamp("w", 1), written=1, count=1)


def test_last_stamp_gives_seq_meta_and_how_much_landed(log: Log) -> None:
    log.append([AppendEntry("t", 0, [b"1a", b"1b", b"1c"])], ProducerStamp("w", 1, b"meta1"))
    mark = log.last_stamp("t", 0, "w")
    assert mark == StampMark(ProducerStamp("w", 1, b"meta1"), written=3, count=3)
    assert mark is not None and mark.complete


def test_the_newest_stamp_of_a_producer_wins_past_other_writers(log: Log) -> None:
    log.append([AppendEntry("t", 0, [b"1"])], ProducerStamp("w", 1, b"m1"))
    log.append([AppendEntry("t", 0, [b"2a", b"2b"])], ProducerStamp("w", 2, b"m2"))
    log.append([AppendEntry("t", 0, [b"v"])], ProducerStamp("v", 9, b"v9"))
    log.append([AppendEntry("t", 0, [b"plain"])])
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 2, b"m2"), written=2, count=2)
    assert log.last_stamp("t", 0, "v") == StampMark(ProducerStamp("v", 9, b"v9"), written=1, count=1)


def test_stamps_are_kept_per_partition(log: Log) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2))
    log.append(
        [AppendEntry("t", 0, [b"p0"]), AppendEntry("t", 1, [b"p1", b"p1'"])], ProducerStamp("w", 7, b"m7")
    )
    log.append([AppendEntry("t", 1, [b"later"])], ProducerStamp("w", 8, b"m8"))
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 7, b"m7"), written=1, count=1)
    assert log.last_stamp("t", 1, "w") == StampMark(ProducerStamp("w", 8, b"m8"), written=1, count=1)
    assert log.last_stamp("other", 0, "w") is None


def test_an_entry_with_start_writes_its_suffix_and_completes_the_mark(log: Log) -> None:
    whole = msgs("e", 5)
    keys = [f"k{i}".encode() for i in range(5)]
    stamp = ProducerStamp("w", 4, b"meta")
    first = log.append(
        [AppendEntry("t", 0, whole, keys=keys, headers=[(("i", b"%d" % i),) for i in range(5)], start=3)],
        stamp,
    )
    assert log.last_stamp("t", 0, "w") == StampMark(stamp, written=5, count=5)
    result = log.read("t", 0, 0, ALL)
    assert (result.messages, result.keys, result.offset) == (whole[3:], keys[3:], first[0])
    assert result.headers == [(("i", b"3"),), (("i", b"4"),)]
    end = log.end_offset("t", 0)
    assert log.append([AppendEntry("t", 0, whole, start=5)], stamp) == [end]
    assert log.read("t", 0, 0, ALL).messages == whole[3:]


def test_appends_never_deduplicate(log: Log) -> None:
    entry = AppendEntry("t", 0, [b"a", b"b"])
    first = log.append([entry], ProducerStamp("w", 1, b"m"))
    second = log.append([entry], ProducerStamp("w", 1, b"m"))
    older = log.append([AppendEntry("t", 0, [b"old"])], ProducerStamp("w", 0, b"m0"))
    assert second[0] > first[0] and older[0] > second[0]
    assert log.read("t", 0, 0, ALL).messages == [b"a", b"b", b"a", b"b", b"old"]
    # the newest mark is the one that reached the partition last, whatever its seq
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 0, b"m0"), written=1, count=1)


# consumer groups


def test_commit_and_committed_are_per_group_and_per_topic(log: Log) -> None:
    for name, partitions in (("t", 2), ("tt", 1), ("t.x", 1)):
        log.ensure_topic(TopicConfig(name, partitions=partitions))
    assert log.committed("g", "t") == {}
    log.commit_offsets("g", {("t", 0): 3, ("t", 1): 5, ("tt", 0): 9, ("t.x", 0): 8})
    log.commit_offsets("h", {("t", 0): 1})
    assert log.committed("g", "t") == {0: 3, 1: 5}
    assert log.committed("g", "tt") == {0: 9}
    assert log.committed("h", "t") == {0: 1}
    assert log.committed("gg", "t") == {}
    log.commit_offsets("g", {("t", 1): 6})
    assert log.committed("g", "t") == {0: 3, 1: 6}


def test_lag_counts_the_messages_after_the_committed_offset_or_the_start(log: Log) -> None:
    log.ensure_topic(TopicConfig("t", partitions=3))
    append_batches(log, "t", [4, 6], partition=0)
    append_batches(log, "t", [4], partition=1)
    assert log.lag("g", "t") == {0: 10, 1: 4, 2: 0}
    seventh = read_all(log, "t")[7][0]
    log.commit_offsets("g", {("t", 0): seventh})
    assert log.lag("g", "t") == {0: 3, 1: 4, 2: 0}
    assert log.lag("g", "unknown") == {}


def test_reset_offsets_to_earliest_and_latest(log: Log) -> None:
    log.ensure_topic(TopicConfig("t", partitions=2))
    append_batches(log, "t", [4, 6], partition=0)
    append_batches(log, "t", [2], partition=1)
    ends = {p: log.end_offset("t", p) for p in (0, 1)}
    assert log.reset_offsets("g", "t", "latest") == ends
    assert log.committed("g", "t") == ends
    assert log.lag("g", "t") == {0: 0, 1: 0}
    assert log.reset_offsets("g", "t", "earliest") == {0: 0, 1: 0}
    assert log.committed("g", "t") == {0: 0, 1: 0}
    assert log.lag("g", "t") == {0: 10, 1: 2}
    assert log.committed("other", "t") == {}
