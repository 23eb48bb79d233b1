"""The runner in-process: results, error lane, state across batches, fencing, rate limit."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from runtime_support import (
    BASE_MS,
    FEW_COMMITS,
    IN,
    OUT,
    STAGE,
    RunResult,
    fill,
    generate_messages,
    read_all,
    record,
    run_in_process,
    snapshot,
    sum_pipeline,
)

from streamcalc.clock import ManualClock
from streamcalc.library.windows.simplified import SumState
from streamcalc.log import AppendEntry, ProducerStamp, ReadResult, StampMark, TopicConfig
from streamcalc.log.embedded import EmbeddedLog, open_log
from streamcalc.log.partitioners import crc32_partition
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.records import Record, decode_record, encode_record
from streamcalc.runtime.errorlane import decode_error, error_topic
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.recovery import RecoveryError, StateVersionError
from streamcalc.runtime.runner import Runner
from streamcalc.state import StaleCheckpoint
from streamcalc.state.lmdb import open_pipeline_state


def expected_sums(messages: list[bytes]) -> tuple[list[tuple[str, str, int, Any]], int]:
    """A plain model of the pipeline: running sums per (asset, rule window); count of rejections."""
    windows: dict[tuple[str, str], tuple[int, Any]] = {}
    out: list[tuple[str, str, int, Any]] = []
    rejected = 0
    sizes = {"p": ("p_sum", 60_000), "q": ("q_sum", 3_600_000)}
    for raw in messages:
        try:
            r = decode_record(raw)
        except msgspec.DecodeError:
            rejected += 1
            continue
        if r.pointId not in sizes:
            continue
        if not isinstance(r.value, int | float):
            rejected += 1
            continue
        name, size = sizes[r.pointId]
        start = r.time - r.time % size
        current = windows.get((r.assetId, name))
        if current is not None and start < current[0]:
            rejected += 1
            continue
        total = r.value if current is None or start > current[0] else current[1] + r.value
        windows[(r.assetId, name)] = (start, total)
        out.append((r.assetId, name, start, total))
    return out, rejected


def outputs_of(data_dir: Path) -> list[Record]:
    log_ = open_log(data_dir)
    try:
        return [decode_record(m) for m in read_all(log_, OUT)]
    finally:
        log_.close()


@pytest.mark.parametrize("batch", [1, 97, 10_000])
def test_results_match_a_plain_model_for_any_batch_size(tmp_path: Path, batch: int) -> None:
    messages = generate_messages(3_000, keys=40)
    log_ = open_log(tmp_path)
    fill(log_, IN, messages)
    log_.close()

    runner = run_in_process(tmp_path, "p1", sum_pipeline(), max_batch_records=batch)

    expected, rejected = expected_sums(messages)
    got = [(r.assetId, r.pointId, r.time, r.value) for r in outputs_of(tmp_path)]
    assert got == expected
    assert runner.stats.records_in == len(messages)
    assert runner.stats.rejected == rejected > 0
    assert runner.checkpoint.offsets == {(IN, 0): len(messages)}


def test_bad_records_go_to_the_error_lane_with_reason_and_origin(tmp_path: Path) -> None:
    good = encode_record(record("a1", "p", BASE_MS, 2))
    messages = [
        good,
        b"{not json",
        b'{"orgId": "o1"}',
        encode_record(record("a1", "p", BASE_MS + 1, "x")),
        good,
    ]
    log_ = open_log(tmp_path)
    fill(log_, IN, messages)
    log_.close()

    run_in_process(tmp_path, "p1", sum_pipeline())

    log_ = open_log(tmp_path)
    errors = [decode_error(m) for m in read_all(log_, error_topic("p1"))]
    log_.close()
    assert [(e.stage, e.offset) for e in errors[:2]] == [
        ("EDHKafkaConsumer_01", 1),
        ("EDHKafkaConsumer_01", 2),
    ]
    assert "malformed" in errors[0].reason and errors[0].raw == b"{not json"
    assert "missing required field" in errors[1].reason
    assert errors[2].stage == STAGE and "'x'" in errors[2].reason and errors[2].record is not None
    assert [r.value for r in outputs_of(tmp_path)] == [2, 4]


def test_state_carries_across_batches_and_restarts(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + i, 1)) for i in range(10)])
    run_in_process(tmp_path, "p1", sum_pipeline(), max_batch_records=3)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + 100, 5))])
    log_.close()

    run_in_process(tmp_path, "p1", sum_pipeline())  # a new runner: state comes from the store

    assert [r.value for r in outputs_of(tmp_path)] == [*range(1, 11), 15]


def test_pause_delete_resume_restarts_deleted_keys_only(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    first = [encode_record(record(a, "p", BASE_MS + i, 1)) for i in range(5) for a in ("a1", "a2", "a3")]
    fill(log_, IN, first)
    run_in_process(tmp_path, "p1", sum_pipeline())
    store = open_pipeline_state(tmp_path, "p1")
    assert store.delete_keys(STAGE, ["a1", "a3", "ghost"], ["p", "q"]) == 2
    store.close()
    fill(log_, IN, [encode_record(record(a, "p", BASE_MS + 10, 1)) for a in ("a1", "a2", "a3")])
    log_.close()

    run_in_process(tmp_path, "p1", sum_pipeline())

    last = {r.assetId: r.value for r in outputs_of(tmp_path)[-3:]}
    assert last == {"a1": 1, "a2": 6, "a3": 1}


def test_a_runner_whose_cache_predates_a_delete_cannot_commit(tmp_path: Path) -> None:
    """Invariant 4: a worker that cached state before a delete must not write it back."""
    log_ = open_log(tmp_path)
    store = open_pipeline_state(tmp_path, "p1")
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS, 1))])
    runner = Runner(
        "p1",
        build_graph(sum_pipeline()),
        log_,
        store,
        options=RunnerOptions(max_wait_s=0, commit_when_drained=False),
    )
    runner.recover()
    runner.run_once()
    runner.flush()
    store.delete_keys(STAGE, ["a1"], ["p"])
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + 1, 1))])

    runner.run_once()
    with pytest.raises(StaleCheckpoint):
        runner.flush()
    assert list(store.scan(STAGE)) == []
    for step in (runner.run_once, runner.flush):  # nothing cached can be trusted until recover()
        with pytest.raises(RecoveryError, match="recover"):
            step()

    runner.recover()  # what a restarted worker does: redo the batch on the committed state
    ((_, _, raw),) = store.scan(STAGE)
    assert msgspec.msgpack.decode(raw, type=SumState).windows[0].sum == 1
    store.close()
    log_.close()


def test_stop_clears_state_and_offsets_so_input_is_read_again(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + i, 1)) for i in range(3)])
    log_.close()
    run_in_process(tmp_path, "p1", sum_pipeline())
    store = open_pipeline_state(tmp_path, "p1")
    store.clear()
    assert store.checkpoint().offsets == {} and list(store.scan(STAGE)) == []
    store.close()

    run_in_process(tmp_path, "p1", sum_pipeline())

    assert [r.value for r in outputs_of(tmp_path)] == [1, 2, 3, 1, 2, 3]


def test_latest_offset_reset_skips_existing_input(tmp_path: Path) -> None:
    definition = sum_pipeline()
    definition["stages"][0]["config"]["kafkaConfig"] = {"auto.offset.reset": "latest"}
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS, 100))])
    store = open_pipeline_state(tmp_path, "p1")
    runner = Runner("p1", build_graph(definition), log_, store, options=RunnerOptions(max_wait_s=0))
    runner.recover()
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + 1, 1))])
    while runner.run_once():
        pass
    runner.flush()
    store.close()
    log_.close()
    assert [r.value for r in outputs_of(tmp_path)] == [1]


def test_partitioned_input_and_output_keep_per_key_order(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    log_.ensure_topic(TopicConfig(IN, partitions=3))
    log_.ensure_topic(TopicConfig(OUT, partitions=4))
    for p in range(3):
        log_.append(
            [AppendEntry(IN, p, [encode_record(record(f"a{p}", "p", BASE_MS + i, 1)) for i in range(50)])]
        )
    log_.close()

    run_in_process(tmp_path, "p1", sum_pipeline(), max_batch_records=16)

    log_ = open_log(tmp_path)
    per_key: dict[str, list[Any]] = {}
    for p in range(4):
        for m in read_all(log_, OUT, p):
            r = decode_record(m)
            per_key.setdefault(r.assetId, []).append(r.value)
    log_.close()
    assert per_key == {f"a{p}": list(range(1, 51)) for p in range(3)}


def test_fan_out_to_two_destinations(tmp_path: Path) -> None:
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}, "outputLanes": ["in"]},
            {
                "instanceName": "PointSelector_01",
                "config": {"points": ["m1::p"]},
                "inputLanes": ["in"],
                "outputLanes": ["sel"],
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}, "inputLanes": ["sel"]},
            {"instanceName": "EDHKafkaProducer_02", "config": {"topic": "COPY"}, "inputLanes": ["sel", "in"]},
        ]
    }
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record("a1", pt, BASE_MS, 1)) for pt in ("p", "x")])
    log_.close()

    run_in_process(tmp_path, "p1", definition)

    log_ = open_log(tmp_path)
    assert [decode_record(m).pointId for m in read_all(log_, OUT)] == ["p"]
    assert [decode_record(m).pointId for m in read_all(log_, "COPY")] == ["p", "p", "x"]
    log_.close()


def test_a_runner_runs_no_batch_before_recover(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    store = open_pipeline_state(tmp_path, "p1")
    runner = Runner("p1", build_graph(sum_pipeline()), log_, store)
    with pytest.raises(RecoveryError):
        runner.run_once()
    store.close()
    log_.close()


def test_two_sources_may_not_read_one_topic(tmp_path: Path) -> None:
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}, "outputLanes": ["a"]},
            {"instanceName": "EDHKafkaConsumer_02", "config": {"topic": IN}, "outputLanes": ["b"]},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}, "inputLanes": ["a", "b"]},
        ]
    }
    log_ = open_log(tmp_path)
    store = open_pipeline_state(tmp_path, "p1")
    with pytest.raises(PipelineError, match="read by EDHKafkaConsumer_01 already") as info:
        Runner("p1", build_graph(definition), log_, store)
    assert info.value.stage == "EDHKafkaConsumer_02"
    store.close()
    log_.close()


def test_rate_limit_caps_records_per_second(tmp_path: Path) -> None:
    clock = ManualClock()
    log_ = open_log(tmp_path, clock=clock)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + i, 1)) for i in range(1_000)])
    store = open_pipeline_state(tmp_path, "p1")
    runner = Runner(
        "p1",
        build_graph(sum_pipeline()),
        log_,
        store,
        options=RunnerOptions(rate_limit=200, max_wait_s=0),
        clock=clock,
    )
    runner.recover()
    sizes = []
    while n := runner.run_once():
        sizes.append(n)
    store.close()
    log_.close()
    assert sum(sizes) == 1_000 and max(sizes) <= 200
    assert 4.0 <= clock.monotonic() <= 5.5  # 1,000 records at 200/s after a first full second's burst


def test_the_rate_limit_is_the_pipelines_each_worker_reading_its_share(tmp_path: Path) -> None:
    clock = ManualClock()
    log_ = open_log(tmp_path, clock=clock)
    log_.ensure_topic(TopicConfig(IN, 2))
    assets = [next(a for a in (f"a{i}" for i in range(100)) if crc32_partition(a, 2) == p) for p in (0, 1)]
    log_.append(
        [AppendEntry(IN, p, [encode_record(record(assets[p], "p", BASE_MS, 1))] * 1_000) for p in (0, 1)]
    )
    store = open_pipeline_state(tmp_path, "p1")
    options = RunnerOptions(rate_limit=200, max_wait_s=0, workers=2)
    workers = [
        Runner("p1", build_graph(sum_pipeline()), log_, store, options=options, clock=clock, worker=k)
        for k in (0, 1)
    ]
    for runner in workers:
        runner.recover()
    assert [max(runner.run_once() for _ in range(3)) for runner in workers] == [100, 100]
    for runner in workers:
        runner.flush()
    store.close()
    log_.close()


def window_pipeline() -> dict[str, Any]:
    rule = {"inputPoint": "m1::p", "windowSize": 1, "windowUnit": "minute", "aggregator": "sum"}
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {
                "instanceName": "FixedTimeWindowAggregator_01",
                "config": {"rules": [{**rule, "outputPoint": "m1::s"}]},
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }


def test_state_in_an_encoding_the_operator_no_longer_reads_is_refused_with_the_way_out(
    tmp_path: Path,
) -> None:
    stage = "FixedTimeWindowAggregator_01"
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS, 1))])
    store = open_pipeline_state(tmp_path, "p1")
    runner = Runner("p1", build_graph(window_pipeline()), log_, store, options=RunnerOptions(max_wait_s=0))
    runner.recover()
    assert store.state_versions() == {stage: 2}
    runner.run_once()
    runner.flush()
    store.record_state_versions({stage: 1})  # as if an older release had written it

    with pytest.raises(StateVersionError, match=f"state of {stage} is in encoding version 1, but Fixed"):
        runner.recover()
    store.delete_keys(stage, ["a1"], ["p"])
    runner.recover()  # no state left to misread: the current version is recorded
    assert store.state_versions() == {stage: 2}
    store.close()
    log_.close()


def uninterrupted(data_dir: Path, messages: list[bytes]) -> RunResult:
    """What a run of the sum pipeline over `messages` leaves, nothing going wrong."""
    log_ = open_log(data_dir)
    fill(log_, IN, messages)
    log_.close()
    run_in_process(data_dir, "p1", sum_pipeline(), max_batch_records=300)
    return snapshot(data_dir, "p1")


class FailingDiskLog(EmbeddedLog):
    """The embedded log on a disk that fails the nth append or read (the system edge: an I/O error)."""

    def __init__(self, path: Path, *, append_fails_at: int = 0, read_fails_at: int = 0) -> None:
        super().__init__(path)
        self.calls = {"append": 0, "read": 0}
        self._fails_at = {"append": append_fails_at, "read": read_fails_at}

    def _count(self, call: str) -> None:
        self.calls[call] += 1
        if self.calls[call] == self._fails_at[call]:
            raise OSError(errno.EIO, f"{call} error")

    def append(self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None) -> list[int]:
        self._count("append")
        return super().append(entries, producer)

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        self._count("read")
        return super().read(topic, partition, offset, max_messages, until)


@pytest.mark.parametrize(("call", "fails_at"), [("append", 1), ("append", 4), ("append", 7), ("read", 4)])
def test_a_failed_append_or_read_fails_the_runner_and_recovery_keeps_outputs_exactly_once(
    tmp_path: Path, call: str, fails_at: int
) -> None:
    """Appends run on a thread beside the next batch: a failed one, or a failed read while one
    is in flight, must fail the runner (never be lost) until `recover()`, which must neither
    lose nor repeat outputs nor state."""
    messages = generate_messages(3_000, keys=40)
    expected = uninterrupted(tmp_path / "reference", messages)
    data = tmp_path / "failing"
    log_ = open_log(data)
    fill(log_, IN, messages)
    log_.close()
    failing = FailingDiskLog(data / "log", **{f"{call}_fails_at": fails_at})
    store = open_pipeline_state(data, "p1")
    runner = Runner("p1", build_graph(sum_pipeline()), failing, store, options=FEW_COMMITS)
    runner.recover()
    with pytest.raises(OSError, match=f"{call} error"):
        while runner.run_once():
            pass
        runner.flush()
    with pytest.raises(RecoveryError, match="recover"):
        runner.run_once()
    runner.recover()
    while runner.run_once():
        pass
    runner.flush()
    store.close()
    failing.close()

    assert failing.calls[call] > fails_at
    assert snapshot(data, "p1") == expected


class SlowDiskLog(EmbeddedLog):
    """The embedded log on a disk slow to write the first append of batch `slow_seq`, which
    stays in flight a while; it notes any read of the log made meanwhile."""

    def __init__(self, path: Path, slow_seq: int) -> None:
        super().__init__(path)
        self._slow_seq: int | None = slow_seq
        self.started = threading.Event()
        self._in_flight = False
        self.read_while_in_flight = False

    def append(self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None) -> list[int]:
        if producer is None or producer.seq != self._slow_seq:
            return super().append(entries, producer)
        self._slow_seq, self._in_flight = None, True
        self.started.set()
        try:
            # A delay, not a gate: a recovery that waits for this append, as it must, does
            # nothing else that could open a gate.
            time.sleep(0.3)
            return super().append(entries, producer)
        finally:
            self._in_flight = False

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        self.read_while_in_flight |= self._in_flight
        return super().read(topic, partition, offset, max_messages, until)

    def last_stamp(self, topic: str, partition: int, producer_id: str) -> StampMark | None:
        self.read_while_in_flight |= self._in_flight
        return super().last_stamp(topic, partition, producer_id)


def test_recovery_waits_for_the_append_in_flight(tmp_path: Path) -> None:
    """A restart while a batch's append is still being written must see that append land
    before it decides what to redo: otherwise the redone batch, reading more input than the
    first try did, would be skipped under the same stamp and its extra outputs lost."""
    messages = generate_messages(3_000, keys=40)
    expected = uninterrupted(tmp_path / "reference", messages)

    data = tmp_path / "slow"
    producer = open_log(data)
    fill(producer, IN, messages[:450])
    slow = SlowDiskLog(data / "log", slow_seq=2)
    store = open_pipeline_state(data, "p1")
    runner = Runner("p1", build_graph(sum_pipeline()), slow, store, options=FEW_COMMITS)
    runner.recover()
    assert runner.run_once() == 300
    assert runner.run_once() == 150
    assert slow.started.wait(30)  # batch 2's append is on its way
    fill(producer, IN, messages[450:])
    runner.recover()  # what a worker does after a failure
    assert not slow.read_while_in_flight
    while runner.run_once():
        pass
    runner.flush()
    store.close()
    slow.close()
    producer.close()

    assert snapshot(data, "p1") == expected


def test_a_runner_that_has_caught_up_has_committed_what_it_appended(tmp_path: Path) -> None:
    """Fresh state: the batch that drains the input commits, however far the next timed or
    counted commit is, so Get Stage State shows every record whose outputs are in the log."""
    log_ = open_log(tmp_path)
    store = open_pipeline_state(tmp_path, "p1")
    messages = [encode_record(record(f"a{i % 7}", "p", BASE_MS + i, 1)) for i in range(1_000)]
    fill(log_, IN, messages)
    options = RunnerOptions(
        max_wait_s=0, max_batch_records=300, commit_interval_s=600, commit_max_batches=1_000
    )
    runner = Runner("p1", build_graph(sum_pipeline()), log_, store, options=options)
    runner.recover()
    for _ in range(3):  # full batches: nothing drained yet, nothing committed
        assert runner.run_once() == 300
    assert store.checkpoint().seq == 0
    assert runner.run_once() == 100  # the last 100: the input is drained
    assert store.checkpoint().offsets[(IN, 0)] == 1_000
    assert read_all(log_, OUT)  # its outputs are in the log, and so is its state:
    assert {a for a, _, _ in store.scan(STAGE)} == {f"a{i}" for i in range(7)}
    more = [encode_record(record("a1", "p", BASE_MS + 2_000, 1))]
    fill(log_, IN, more)  # a trickle: each batch drains the input, each commits
    assert runner.run_once() == 1 and store.checkpoint().offsets[(IN, 0)] == 1_001
    store.close()
    log_.close()


def test_commit_when_drained_can_be_turned_off(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    store = open_pipeline_state(tmp_path, "p1")
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS, 1))])
    options = RunnerOptions(max_wait_s=0, commit_interval_s=600, commit_when_drained=False)
    runner = Runner("p1", build_graph(sum_pipeline()), log_, store, options=options)
    runner.recover()
    assert runner.run_once() == 1 and store.checkpoint().seq == 0
    runner.flush()
    assert store.checkpoint().seq == 1
    store.close()
    log_.close()
