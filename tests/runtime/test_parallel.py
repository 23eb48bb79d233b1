"""A pipeline of several workers, each a runner over its share of the source partitions,
against the same pipeline run by one worker: the same outputs per key, the same state."""

from __future__ import annotations

import copy
from pathlib import Path

import msgspec
import pytest
from runtime_support import (
    IN,
    OUT,
    STAGE,
    fill_by_asset,
    generate_messages,
    per_key,
    read_all,
    record,
    run_in_process,
    sum_pipeline,
)

from streamcalc.library.windows.simplified import SumState
from streamcalc.log import AppendEntry, TopicConfig
from streamcalc.log.embedded import open_log
from streamcalc.log.partitioners import crc32_partition
from streamcalc.pipeline import PipelineError, build_graph
from streamcalc.records import decode_record, encode_record
from streamcalc.runtime.errorlane import decode_error, error_topic
from streamcalc.runtime.keyed_state import StageState
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.recovery import RecoveryError
from streamcalc.runtime.runner import Runner
from streamcalc.state import Checkpoint, StaleCheckpoint
from streamcalc.state.lmdb import open_pipeline_state


def valid(messages: list[bytes]) -> list[bytes]:
    out = []
    for m in messages:
        try:
            decode_record(m)
        except msgspec.DecodeError:
            continue
        out.append(m)
    return out


def run_workers(data: Path, workers: int, rounds_per_commit: int = 3, *, crash: bool = False) -> list[Runner]:
    """The workers of one pipeline taking turns batch by batch, as processes would interleave;
    with `crash`, they stop before they commit anything."""
    log_ = open_log(data)
    store = open_pipeline_state(data, "p1")
    options = RunnerOptions(
        max_wait_s=0,
        max_batch_records=400,
        workers=workers,
        commit_max_batches=10**6 if crash else rounds_per_commit,
        commit_interval_s=600,
        commit_when_drained=False,
    )
    runners = [
        Runner("p1", build_graph(sum_pipeline()), log_, store, options=options, worker=k)
        for k in range(workers)
    ]
    try:
        for runner in runners:
            runner.recover()
        busy = True
        while busy:
            busy = False
            for runner in runners:
                busy = bool(runner.run_once()) or busy
        for runner in runners:
            if not crash:
                runner.flush()
    finally:
        store.close()
        log_.close()
    return runners


@pytest.mark.parametrize(("workers", "partitions"), [(2, 2), (2, 4), (3, 6)])
def test_workers_together_give_the_outputs_and_state_of_one(
    tmp_path: Path, workers: int, partitions: int
) -> None:
    messages = valid(generate_messages(6_000, keys=60))
    fill_by_asset(tmp_path / "one", messages, 1)
    run_in_process(tmp_path / "one", "p1", sum_pipeline(), max_batch_records=400)
    fill_by_asset(tmp_path / "many", messages, partitions)

    runners = run_workers(tmp_path / "many", workers)

    one_log, many_log = open_log(tmp_path / "one"), open_log(tmp_path / "many")
    outputs = [m for p in range(1) for m in read_all(one_log, OUT, p)]
    assert per_key(read_all(many_log, OUT)) == per_key(outputs)
    assert sorted(read_all(many_log, error_topic("p1"))) == sorted(read_all(one_log, error_topic("p1")))
    one_log.close()
    many_log.close()
    one, many = open_pipeline_state(tmp_path / "one", "p1"), open_pipeline_state(tmp_path / "many", "p1")
    assert list(many.scan(STAGE)) == list(one.scan(STAGE))
    assert all(r.stats.records_in > 0 for r in runners)  # every worker had its share
    assert sum(r.stats.records_in for r in runners) == len(messages)
    ends = {(IN, p): n for p in range(partitions) if (n := many_log_end(tmp_path / "many", p))}
    assert {tp: o for k in range(workers) for tp, o in many.checkpoint(k).offsets.items()} == ends
    assert [many.checkpoint(k).seq for k in range(workers)] == [r.checkpoint.seq for r in runners]
    one.close()
    many.close()


def many_log_end(data: Path, partition: int) -> int:
    log_ = open_log(data)
    try:
        return log_.end_offset(IN, partition)
    finally:
        log_.close()


def test_a_restarted_worker_goes_on_from_its_own_checkpoint(tmp_path: Path) -> None:
    messages = valid(generate_messages(3_000, keys=40))
    fill_by_asset(tmp_path / "one", messages, 1)
    run_in_process(tmp_path / "one", "p1", sum_pipeline())
    first, rest = messages[:1_700], messages[1_700:]
    fill_by_asset(tmp_path / "many", first, 2)
    run_workers(tmp_path / "many", 2)
    fill_by_asset(tmp_path / "many", rest, 2)

    run_workers(tmp_path / "many", 2)  # new runners: each reads its checkpoint and state back

    one, many = open_pipeline_state(tmp_path / "one", "p1"), open_pipeline_state(tmp_path / "many", "p1")
    assert list(many.scan(STAGE)) == list(one.scan(STAGE))
    one.close()
    many.close()


def test_a_record_outside_its_assets_partition_goes_to_the_error_lane(tmp_path: Path) -> None:
    asset = next(f"a{i}" for i in range(100) if crc32_partition(f"a{i}", 2) == 1)
    log_ = open_log(tmp_path)
    log_.ensure_topic(TopicConfig(IN, 2))
    log_.append([AppendEntry(IN, 0, [encode_record(record(asset, "p", 1_767_225_600_000, 1))])])
    log_.close()

    runners = run_workers(tmp_path, 2)

    log_ = open_log(tmp_path)
    (error,) = [decode_error(e) for e in read_all(log_, error_topic("p1"))]
    assert read_all(log_, OUT) == []
    log_.close()
    assert error.stage == "EDHKafkaConsumer_01" and (error.topic, error.partition) == (IN, 0)
    assert f"asset {asset} belongs to partition 1 of {IN}, not 0" in error.reason
    assert error.record is not None and error.record.assetId == asset
    assert runners[0].stats.rejected == 1


@pytest.mark.parametrize(("workers", "partitions"), [(2, 1), (2, 3), (3, 4)])
def test_a_topic_the_workers_cannot_share_is_refused(tmp_path: Path, workers: int, partitions: int) -> None:
    log_ = open_log(tmp_path)
    log_.ensure_topic(TopicConfig(IN, partitions))
    store = open_pipeline_state(tmp_path, "p1")
    with pytest.raises(
        PipelineError, match=f"{partitions} partition\\(s\\), which {workers} workers cannot share"
    ):
        Runner(
            "p1", build_graph(sum_pipeline()), log_, store, options=RunnerOptions(workers=workers), worker=1
        )
    with pytest.raises(ValueError, match="worker 2 of 2"):
        Runner("p1", build_graph(sum_pipeline()), log_, store, options=RunnerOptions(workers=2), worker=2)
    store.close()
    log_.close()


def test_each_worker_commits_its_own_seq_and_a_delete_fences_them_all(tmp_path: Path) -> None:
    store = open_pipeline_state(tmp_path, "p1")
    zero, one = store.checkpoint(0), store.checkpoint(1)
    store.commit({STAGE: {("a1", "p"): b"1"}}, zero, Checkpoint(1, zero.generation, {(IN, 0): 5}), 0)
    store.commit({}, one, Checkpoint(1, one.generation, {(IN, 1): 7}), 1)
    store.commit({}, store.checkpoint(1), Checkpoint(2, one.generation, {(IN, 1): 9}), 1)
    assert (store.checkpoint(0).seq, store.checkpoint(1).seq) == (1, 2)
    assert store.checkpoint(0).offsets == store.checkpoint(1).offsets == {(IN, 0): 5, (IN, 1): 9}

    stale = [store.checkpoint(0), store.checkpoint(1)]
    assert store.delete_keys(STAGE, ["a1"], ["p"]) == 1
    for worker, cp in enumerate(stale):
        with pytest.raises(StaleCheckpoint):
            store.commit({}, cp, Checkpoint(cp.seq + 1, cp.generation, {}), worker)
    store.close()


def test_a_worker_scans_only_the_state_of_its_assets(tmp_path: Path) -> None:
    """What an idle timeout's index is rebuilt from: another worker's keys are not this one's to close."""
    store = open_pipeline_state(tmp_path, "p1")
    assets = [f"a{i}" for i in range(20)]
    encode = msgspec.msgpack.encode
    store.commit(
        {STAGE: {(a, "p"): encode(SumState([])) for a in assets}}, store.checkpoint(), Checkpoint(1), 0
    )
    for worker in (0, 1):
        state = StageState(store, STAGE, SumState, owns=lambda a, w=worker: crc32_partition(a, 2) == w)
        assert [k for k, _ in state.scan()] == [
            (a, "p") for a in sorted(assets) if crc32_partition(a, 2) == worker
        ]
    store.close()


def recover_alone(data: Path, workers: int, worker: int) -> None:
    log_ = open_log(data)
    store = open_pipeline_state(data, "p1")
    try:
        options = RunnerOptions(workers=workers)
        Runner("p1", build_graph(sum_pipeline()), log_, store, options=options, worker=worker).recover()
    finally:
        store.close()
        log_.close()


@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2), (2, 3), (3, 2)])
def test_batches_left_by_a_crash_are_redone_only_by_as_many_workers(
    tmp_path: Path, before: int, after: int
) -> None:
    """Worker k of n redid its batches over partitions it may no longer own, or nobody would
    redo those of a worker gone: either would process input twice. The way out is named."""
    messages = valid(generate_messages(3_000, keys=40))
    fill_by_asset(tmp_path / "one", messages, 1)
    run_in_process(tmp_path / "one", "p1", sum_pipeline())
    fill_by_asset(tmp_path / "many", messages[:1_500], 6)
    run_workers(tmp_path / "many", before, crash=True)
    fill_by_asset(tmp_path / "many", messages[1_500:], 6)

    for worker in range(after):  # each refuses, whichever the supervisor starts first
        with pytest.raises(
            RecoveryError, match=f"of a run with {before} worker\\(s\\) left batches uncommitted"
        ):
            recover_alone(tmp_path / "many", after, worker)
    run_workers(tmp_path / "many", before)  # the way out: settle them with as many workers...
    run_workers(tmp_path / "many", after)  # ...then change

    one, many = open_pipeline_state(tmp_path / "one", "p1"), open_pipeline_state(tmp_path / "many", "p1")
    assert list(many.scan(STAGE)) == list(one.scan(STAGE))
    one.close()
    many.close()
    one_log, many_log = open_log(tmp_path / "one"), open_log(tmp_path / "many")
    assert per_key(read_all(many_log, OUT)) == per_key(read_all(one_log, OUT))
    one_log.close()
    many_log.close()


def test_a_merger_of_several_assets_runs_on_one_worker_only(tmp_path: Path) -> None:
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {
                "instanceName": "LatestRecordMerger_01",
                "config": {
                    "mergedBy": "orgId",
                    "cacheExpireMinutes": 5,
                    "rules": [
                        {"inputPoint": "m1::p"},
                        {"inputPoint": "m1::q", "isTrigger": True, "outputPoint": "m1::m"},
                    ],
                },
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }
    log_ = open_log(tmp_path)
    log_.ensure_topic(TopicConfig(IN, 2))
    store = open_pipeline_state(tmp_path, "p1")
    with pytest.raises(PipelineError, match="mergedBy orgId merges the records of several assets") as refused:
        Runner("p1", build_graph(definition), log_, store, options=RunnerOptions(workers=2))
    assert refused.value.stage == "LatestRecordMerger_01"
    Runner("p1", build_graph(definition), log_, store, options=RunnerOptions(workers=1))
    by_asset = copy.deepcopy(definition)
    by_asset["stages"][1]["config"]["mergedBy"] = "assetId"
    Runner("p1", build_graph(by_asset), log_, store, options=RunnerOptions(workers=2))
    store.close()
    log_.close()
