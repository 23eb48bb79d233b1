"""Invariant 1 and exactly-once outputs: kill -9 a worker anywhere, restart, and the final
state, outputs and error lane equal those of an uninterrupted run - nothing duplicated,
nothing lost."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from runtime_support import (
    IN,
    OUT,
    RunResult,
    WorkerProcess,
    assert_plain_consumer_reads,
    committed_offset,
    fill,
    fill_by_asset,
    generate_messages,
    opened_log,
    opened_store,
    per_key,
    prepare,
    snapshot,
    sum_pipeline,
    supervising,
    wait_until,
    write_p1_spec,
)

from streamcalc.backends import Backends
from streamcalc.runtime.failpoints import POINTS
from streamcalc.runtime.options import RunnerOptions

Reference = Callable[[list[bytes], dict[str, object]], RunResult]


def producer_seq(data_dir: Path) -> int:
    with opened_log(data_dir) as log_:
        mark = log_.last_stamp(OUT, 0, "p1")
        return 0 if mark is None else mark.stamp.seq


COMMIT_EVERY = 3  # batches; crashes then leave up to 3 appended but uncommitted batches


@dataclass(frozen=True)
class On:
    """The log and state URLs a crashed pipeline runs on (the reference run is on the
    embedded log and LMDB whatever they are)."""

    log: str
    state: str


@pytest.fixture(params=["embedded-lmdb", "embedded-redis", "kafka-lmdb"])
def on(request: pytest.FixtureRequest) -> Iterator[On]:
    """The embedded log of the data dir or the session's Kafka broker; LMDB under the data dir
    or a redis-server's database."""
    log_, state = request.param.split("-")
    yield On(
        str(request.getfixturevalue("kafka_url")) if log_ == "kafka" else log_,
        str(request.getfixturevalue("redis_url")) if state == "redis" else state,
    )


@pytest.mark.parametrize("batch", [1, 5, 9])
@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_each_step_of_a_batch_then_restart(
    tmp_path: Path,
    reference: Reference,
    worker_factory: Callable[..., WorkerProcess],
    point: str,
    batch: int,
    on: On,
) -> None:
    messages = generate_messages(6_000, keys=50)
    expected = reference(messages, sum_pipeline())
    data = tmp_path / "crashed"
    prepare(
        data,
        messages,
        sum_pipeline(),
        max_batch_records=500,
        max_wait_s=0.01,
        commit_max_batches=COMMIT_EVERY,
        commit_interval_s=600,
        commit_when_drained=False,
        state=on.state,
        log=on.log,
    )

    crashed = worker_factory(data, failpoint=f"{point}:{batch}")
    assert crashed.wait() == -signal.SIGKILL, crashed.output

    with opened_store(data) as store:
        committed = store.checkpoint().seq
    if point == "after_commit":
        assert committed == -(-batch // COMMIT_EVERY) * COMMIT_EVERY == producer_seq(data)
    else:
        assert committed == (batch - 1) // COMMIT_EVERY * COMMIT_EVERY
        # outputs of batches committed+1 .. batch(-1) are in the log, their state is not
        assert producer_seq(data) == (batch if point == "after_append" else batch - 1)

    options = RunnerOptions(max_batch_records=500, commit_interval_s=0.05)
    write_p1_spec(data, sum_pipeline(), options, on.state, on.log)
    worker = worker_factory(data)
    wait_until(lambda: committed_offset(data, "p1") == len(messages), what="the restarted worker to catch up")
    assert worker.stop() == 0, worker.output
    assert snapshot(data, "p1") == expected
    assert_plain_consumer_reads(on.log, expected.outputs)


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_of_one_of_two_workers_at_each_step_then_restart(
    tmp_path: Path, reference: Reference, worker_factory: Callable[..., WorkerProcess], point: str, on: On
) -> None:
    """Worker 1 of a parallel pipeline dies with batches appended but not committed (or just
    committed) while worker 0 goes on; restarted, it redoes exactly its own batches."""
    messages = generate_messages(6_000, keys=50)
    expected = reference(messages, sum_pipeline())
    data = tmp_path / "crashed"
    fill_by_asset(data, messages, log=on.log)
    options = RunnerOptions(
        max_batch_records=300,
        max_wait_s=0.01,
        commit_max_batches=COMMIT_EVERY,
        commit_interval_s=600,
        commit_when_drained=False,
        workers=2,
    )
    write_p1_spec(data, sum_pipeline(), options, on.state, on.log)
    other = worker_factory(data, worker=0)
    crashed = worker_factory(data, failpoint=f"{point}:5", worker=1)
    assert crashed.wait() == -signal.SIGKILL, crashed.output
    with opened_store(data) as store:
        assert store.checkpoint(1).seq == (6 if point == "after_commit" else 3)

    write_p1_spec(
        data,
        sum_pipeline(),
        RunnerOptions(max_batch_records=300, commit_interval_s=0.05, workers=2),
        on.state,
        on.log,
    )
    restarted = worker_factory(data, worker=1)
    ends = partition_ends(data)
    wait_until(lambda: committed_offsets(data)[1] == ends[1], what="the restarted worker to catch up")
    for w in (other, restarted):  # worker 0 commits what it holds as it stops
        assert w.stop() == 0, w.output
    assert committed_offsets(data) == ends

    result = snapshot(data, "p1")
    assert per_key(result.outputs) == per_key(expected.outputs)
    assert result.state == expected.state
    assert len(result.errors) == len(expected.errors)
    assert_plain_consumer_reads(on.log, expected.outputs, per_key)


def partition_ends(data_dir: Path) -> dict[int, int]:
    with opened_log(data_dir) as log_:
        return {p: log_.end_offset(IN, p) for p in (0, 1)}


def committed_offsets(data_dir: Path) -> dict[int, int]:
    with opened_store(data_dir) as store:
        offsets = store.checkpoint().offsets
        return {p: offsets.get((IN, p), 0) for p in (0, 1)}


@pytest.mark.slow
@pytest.mark.parametrize("on", ["embedded-lmdb", "kafka-lmdb"], indirect=True)
def test_random_sigkills_of_a_supervised_worker(tmp_path: Path, reference: Reference, on: On) -> None:
    messages = generate_messages(150_000, keys=2_000, seed=11)
    expected = reference(messages, sum_pipeline())
    data = tmp_path / "crashed"
    backends = Backends.resolve(data, log=on.log)
    fill(backends.log, IN, messages)
    backends.close()
    rng = random.Random(5)
    kills = 0
    with supervising(
        data, on.state, on.log, backoff_initial_s=0.01, backoff_max_s=0.05, max_failures=1_000
    ) as supervisor:
        supervisor.start(
            "p1", sum_pipeline(), RunnerOptions(max_batch_records=900, max_wait_s=0.005, rate_limit=15_000)
        )
        while committed_offset(data, "p1") < len(messages) and kills < 30:
            time.sleep(rng.uniform(0.3, 0.9))  # kills at random moments of the run: what is tested
            info = supervisor.info("p1")
            if info is not None and info.pid is not None:
                os.kill(info.pid, signal.SIGKILL)
                kills += 1
        wait_until(lambda: committed_offset(data, "p1") == len(messages), timeout_s=120, what="catching up")
        wait_until(lambda: getattr(supervisor.info("p1"), "restarts", 0) >= kills, what="a restart per kill")
    assert kills >= 8
    assert snapshot(data, "p1") == expected
    assert_plain_consumer_reads(on.log, expected.outputs)
