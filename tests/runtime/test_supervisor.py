"""The supervisor: pause is a barrier (invariant 3), resume/stop, guards, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    BASE_MS,
    IN,
    OUT,
    STAGE,
    committed_offset,
    fill,
    fill_by_asset,
    generate_messages,
    opened_store,
    per_key,
    read_all,
    record,
    run_in_process,
    snapshot,
    sum_pipeline,
    supervising,
    wait_until,
    worker_pids,
)

from streamcalc.log import AppendEntry, TopicConfig
from streamcalc.log.embedded import open_log
from streamcalc.log.partitioners import crc32_partition
from streamcalc.pipeline import PipelineError
from streamcalc.records import decode_record, encode_record
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import LifecycleError, Supervisor, WorkerInfo, WorkerStatus

FAST = RunnerOptions(max_batch_records=500, max_wait_s=0.01)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    with supervising(tmp_path, backoff_initial_s=0.02, backoff_max_s=0.1, max_failures=3) as sup:
        yield sup


def status(sup: Supervisor) -> WorkerStatus | None:
    info = sup.info("p1")
    return None if info is None else info.status


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def outputs(data_dir: Path) -> int:
    log_ = open_log(data_dir)
    try:
        return log_.end_offset(OUT, 0)
    finally:
        log_.close()


def test_pause_under_load_is_a_barrier(tmp_path: Path, supervisor: Supervisor) -> None:
    """Once pause returns: the worker is gone, every input up to the committed offset has
    its outputs, nothing beyond it does, and nothing moves until resume."""
    stop_feeding = threading.Event()

    def feed() -> None:
        log_ = open_log(tmp_path)
        i = 0
        while not stop_feeding.is_set():
            log_.append(
                [
                    AppendEntry(
                        IN, 0, [encode_record(record("a1", "p", BASE_MS + i + j, 1)) for j in range(200)]
                    )
                ]
            )
            i += 200
            time.sleep(0.002)  # a steady stream, not one burst
        log_.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        supervisor.start("p1", sum_pipeline(window_unit="day"), FAST)
        wait_until(lambda: committed_offset(tmp_path, "p1") > 2_000, what="progress")
        pid = supervisor.info("p1").pid  # type: ignore[union-attr]
        supervisor.pause("p1")
        assert status(supervisor) == WorkerStatus.PAUSED
        # nothing can move: no worker is left to move it
        assert pid is not None and not alive(pid) and worker_pids(tmp_path) == []
        committed = committed_offset(tmp_path, "p1")
        # every committed input record (all are selected, one rule) produced exactly one output
        assert outputs(tmp_path) == committed
    finally:
        stop_feeding.set()
        feeder.join()


def test_pause_delete_resume_through_worker_processes(tmp_path: Path, supervisor: Supervisor) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record(a, "p", BASE_MS + i, 1)) for i in range(4) for a in ("a1", "a2")])
    supervisor.start("p1", sum_pipeline(), FAST)
    wait_until(lambda: committed_offset(tmp_path, "p1") == 8, what="first input")
    supervisor.pause("p1")
    with opened_store(tmp_path) as store:
        assert store.delete_keys(STAGE, ["a1"], ["p"]) == 1
    fill(log_, IN, [encode_record(record(a, "p", BASE_MS + 10, 1)) for a in ("a1", "a2")])

    supervisor.resume("p1")
    wait_until(lambda: committed_offset(tmp_path, "p1") == 10, what="input after resume")

    last = {r.assetId: r.value for r in map(decode_record, read_all(log_, OUT)[-2:])}
    log_.close()
    assert last == {"a1": 1, "a2": 5}


def test_stop_clears_state_and_offsets(tmp_path: Path, supervisor: Supervisor) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, generate_messages(1_000, keys=10))
    log_.close()
    supervisor.start("p1", sum_pipeline(), FAST)
    wait_until(lambda: committed_offset(tmp_path, "p1") == 1_000, what="input")

    supervisor.stop("p1")

    assert status(supervisor) == WorkerStatus.STOPPED
    with opened_store(tmp_path) as store:
        assert store.checkpoint().offsets == {} and list(store.scan(STAGE)) == []
    supervisor.start("p1", sum_pipeline(), FAST)  # a stopped pipeline starts over from the start
    wait_until(lambda: committed_offset(tmp_path, "p1") == 1_000, what="re-reading the input")


def test_status_guards(tmp_path: Path, supervisor: Supervisor) -> None:
    with pytest.raises(LifecycleError, match="not known"):
        supervisor.pause("p1")
    with pytest.raises(PipelineError):
        supervisor.start("p1", {"stages": [{"instanceName": "Nope_01"}]})
    assert supervisor.info("p1") is None
    supervisor.start("p1", sum_pipeline(), FAST)
    with pytest.raises(LifecycleError, match="RUNNING"):
        supervisor.start("p1", sum_pipeline(), FAST)
    with pytest.raises(LifecycleError, match="RUNNING"):
        supervisor.resume("p1")
    supervisor.pause("p1")
    with pytest.raises(LifecycleError, match="PAUSED"):
        supervisor.pause("p1")
    supervisor.start("p1", sum_pipeline(), FAST)  # from PAUSED, start resumes
    assert status(supervisor) == WorkerStatus.RUNNING
    supervisor.stop("p1")
    with pytest.raises(LifecycleError, match="STOPPED"):
        supervisor.stop("p1")
    with pytest.raises(LifecycleError, match="STOPPED"):
        supervisor.resume("p1")


def test_a_crashed_worker_is_restarted(tmp_path: Path, supervisor: Supervisor) -> None:
    supervisor.start("p1", sum_pipeline(), FAST)
    first = supervisor.info("p1").pid  # type: ignore[union-attr]
    assert first is not None
    os.kill(first, 9)
    wait_until(lambda: getattr(supervisor.info("p1"), "restarts", 0) == 1, what="a restart")
    info = supervisor.info("p1")
    assert info is not None and info.status == WorkerStatus.RUNNING and info.pid not in (None, first)
    assert info.last_exit_code == -9


def failing_at_the_first_batch(data_dir: Path) -> AbstractContextManager[Supervisor]:
    """A supervisor whose workers die at their first batch, fast to give up on them."""
    return supervising(
        data_dir,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
        max_failures=3,
        worker_env={"STREAMCALC_FAILPOINT": "before_append:1"},
    )


def test_repeated_failures_end_in_run_error(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, generate_messages(100, keys=3))
    log_.close()
    with failing_at_the_first_batch(tmp_path) as sup:
        sup.start("p1", sum_pipeline(), FAST)
        wait_until(lambda: status(sup) == WorkerStatus.RUN_ERROR, what="RUN_ERROR")
        info = sup.info("p1")
        assert info is not None and info.failures == 3 and info.restarts == 2 and info.pid is None
        sup.stop("p1")
        assert status(sup) == WorkerStatus.STOPPED


@pytest.mark.parametrize(("to", "expected_outputs"), [("earliest", 6), ("latest", 1)])
def test_reset_offsets_while_paused(
    tmp_path: Path, supervisor: Supervisor, to: str, expected_outputs: int
) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + i, 1)) for i in range(3)])
    supervisor.start("p1", sum_pipeline(), FAST)
    wait_until(lambda: committed_offset(tmp_path, "p1") == 3, what="input")
    with pytest.raises(LifecycleError, match="RUNNING"):
        supervisor.reset_offsets("p1", "earliest")
    supervisor.pause("p1")
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + 10 + i, 1)) for i in range(2)])

    assert supervisor.reset_offsets("p1", to) == {(IN, 0): 0 if to == "earliest" else 5}  # type: ignore[arg-type]
    supervisor.resume("p1")
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + 20, 1))])
    wait_until(lambda: committed_offset(tmp_path, "p1") == 6, what="input after the reset")
    supervisor.pause("p1")

    # state is kept by a reset: re-read input keeps adding to the running sum
    values = [decode_record(m).value for m in read_all(log_, OUT)]
    log_.close()
    assert len(values) == 3 + expected_outputs and values[-1] == 3 + expected_outputs


def test_the_supervisor_sweeps_age_retention(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    log_.ensure_topic(TopicConfig("OLD", retention_ms=50))
    log_.append([AppendEntry("OLD", 0, [b"a", b"b"])])
    log_.append([AppendEntry("OLD", 0, [b"c"])])
    assert log_.start_offset("OLD", 0) == 0  # not old yet when the second batch came
    try:
        with supervising(tmp_path, retention_check_s=0.05):
            wait_until(lambda: log_.start_offset("OLD", 0) == 2, what="the sweep to drop the old batch")
    finally:
        log_.close()


# a pipeline of two workers


def result(data_dir: Path) -> tuple[dict[tuple[str, str], list[bytes]], list[bytes], list[Any]]:
    """Outputs by key in log order (what a pipeline guarantees about their order, whatever the
    workers), the error lane and the state."""
    snap = snapshot(data_dir, "p1")
    return per_key(snap.outputs), snap.errors, snap.state


def one_worker_result(data_dir: Path, messages: list[bytes]) -> Any:
    """The same input and pipeline, run to the end by one worker in this process."""
    fill_by_asset(data_dir, messages)
    run_in_process(data_dir, "p1", sum_pipeline())
    return result(data_dir)


def committed(data_dir: Path) -> list[int]:
    """Per worker of two, the committed offset of its partition (-1: none yet)."""
    with opened_store(data_dir) as store:
        return [store.checkpoint(k).offsets.get((IN, k), -1) for k in (0, 1)]


def input_ends(data_dir: Path) -> list[int]:
    log_ = open_log(data_dir)
    try:
        return [log_.end_offset(IN, k) for k in (0, 1)]
    finally:
        log_.close()


def running_pids(sup: Supervisor) -> list[int]:
    info = sup.info("p1")
    assert info is not None and info.status == WorkerStatus.RUNNING
    assert len(info.pids) == 2 and None not in info.pids and info.pid == info.pids[0]
    return [pid for pid in info.pids if pid is not None]


def test_two_workers_share_the_input_and_give_the_result_of_one(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    messages = generate_messages(6_000, keys=40)
    expected = one_worker_result(tmp_path / "one", messages)
    fill_by_asset(tmp_path, messages)
    ends = input_ends(tmp_path)
    assert min(ends) > 0

    supervisor.start("p1", sum_pipeline(), RunnerOptions(max_batch_records=500, max_wait_s=0.01, workers=2))
    pids = running_pids(supervisor)
    wait_until(lambda: committed(tmp_path) == ends, what="both workers at the end of their partition")
    supervisor.pause("p1")

    assert status(supervisor) == WorkerStatus.PAUSED and not any(map(alive, pids))
    with opened_store(tmp_path) as store:
        assert all(store.checkpoint(k).seq > 0 for k in (0, 1))  # each worker committed its own
    assert result(tmp_path) == expected


def test_pause_is_a_barrier_for_every_worker(tmp_path: Path, supervisor: Supervisor) -> None:
    """SIGTERM to both, then wait for both: once pause returns neither runs, every committed
    input of each has its one output, nothing beyond it does, and nothing moves."""
    fill_by_asset(tmp_path, [encode_record(record(f"a{i % 10}", "p", BASE_MS + i, 1)) for i in range(40_000)])
    options = RunnerOptions(max_batch_records=500, max_wait_s=0.01, rate_limit=10_000, workers=2)
    supervisor.start("p1", sum_pipeline(window_unit="day"), options)
    pids = running_pids(supervisor)
    wait_until(lambda: min(committed(tmp_path)) > 0, what="a commit of each worker")

    supervisor.pause("p1")

    assert status(supervisor) == WorkerStatus.PAUSED and not any(map(alive, pids))
    info = supervisor.info("p1")
    assert info is not None and info.pids == [None, None] and info.pid is None
    assert worker_pids(tmp_path) == []  # nothing can move: no worker is left to move it
    done = committed(tmp_path)
    assert sum(done) < 40_000  # paused in the middle of the input
    assert outputs(tmp_path) == sum(done)


SERVICE = """
import json, signal, sys
from pathlib import Path
from streamcalc.backends import Backends
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import Supervisor

sup = Supervisor(Backends.resolve(Path(sys.argv[1])), Path(sys.argv[1]))
options = RunnerOptions(max_batch_records=500, max_wait_s=0.01, rate_limit=10_000, workers=2)
sup.start("p1", json.loads(sys.argv[2]), options)
print(json.dumps(sup.info("p1").pids), flush=True)
signal.pause()  # until the test kills it
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's new parent may be slow to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_whose_service_is_killed_pause_themselves(tmp_path: Path) -> None:
    """A service killed with -9 cannot pause its workers: each notices it is orphaned, commits
    what it did and exits, instead of running on beside the workers a restart would start."""
    fill_by_asset(tmp_path, [encode_record(record(f"a{i % 10}", "p", BASE_MS + i, 1)) for i in range(40_000)])
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(tmp_path), json.dumps(sum_pipeline(window_unit="day"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        pids = json.loads(service.stdout.readline())
        wait_until(lambda: min(committed(tmp_path)) > 0, what="a commit of each worker")
    finally:
        service.kill()
        service.communicate()

    wait_until(lambda: not any(map(running, pids)), timeout_s=20, what="the orphaned workers to exit")
    done = committed(tmp_path)
    assert sum(done) < 40_000  # they stopped in the middle of the input
    assert outputs(tmp_path) == sum(done)  # and committed all they had done


@pytest.mark.slow
def test_a_killed_worker_is_restarted_alone_and_the_result_is_exact(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    messages = generate_messages(20_000, keys=50, seed=3)
    expected = one_worker_result(tmp_path / "one", messages)
    fill_by_asset(tmp_path, messages)
    ends = input_ends(tmp_path)
    options = RunnerOptions(max_batch_records=500, max_wait_s=0.01, rate_limit=6_000, workers=2)
    supervisor.start("p1", sum_pipeline(), options)
    first, second = running_pids(supervisor)
    wait_until(lambda: committed(tmp_path)[1] > 0, what="a commit of worker 1")
    assert committed(tmp_path)[1] < ends[1]  # killed in the middle of its partition

    os.kill(second, signal.SIGKILL)

    wait_until(lambda: getattr(supervisor.info("p1"), "restarts", 0) == 1, what="a restart")
    info = supervisor.info("p1")
    assert info is not None and info.status == WorkerStatus.RUNNING and info.last_exit_code == -9
    assert info.pids[0] == first and info.pids[1] not in (None, second)
    wait_until(lambda: committed(tmp_path) == ends, what="both workers at the end of their partition")
    supervisor.pause("p1")
    assert result(tmp_path) == expected


def test_a_worker_failing_repeatedly_stops_the_others_in_run_error(tmp_path: Path) -> None:
    """Only worker 0 has input, so only it reaches its first batch and dies there each time."""
    assets = [a for a in (f"a{i}" for i in range(20)) if crc32_partition(a, 2) == 0]
    fill_by_asset(tmp_path, [encode_record(record(a, "p", BASE_MS, 1)) for a in assets])
    with failing_at_the_first_batch(tmp_path) as sup:
        sup.start("p1", sum_pipeline(), RunnerOptions(max_wait_s=0.01, workers=2))
        healthy = sup.info("p1").pids[1]  # type: ignore[union-attr]
        wait_until(lambda: status(sup) == WorkerStatus.RUN_ERROR, what="RUN_ERROR")
        wait_until(
            lambda: sup.info("p1") == WorkerInfo(WorkerStatus.RUN_ERROR, None, 3, 2, -9, [None, None]),
            what="worker 1 stopped",
        )
        assert healthy is not None and not alive(healthy)
        sup.stop("p1")
        assert status(sup) == WorkerStatus.STOPPED


def test_a_source_topic_the_workers_cannot_share_is_refused_at_start(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    log_ = open_log(tmp_path)
    log_.ensure_topic(TopicConfig(IN, 3))
    log_.close()
    with pytest.raises(
        PipelineError, match=f"topic {IN} has 3 partition\\(s\\), which 2 workers cannot share"
    ):
        supervisor.start("p1", sum_pipeline(), RunnerOptions(workers=2))
    assert supervisor.info("p1") is None
    supervisor.start("p1", sum_pipeline(in_topic="NEW"), RunnerOptions(workers=2))
    log_ = open_log(tmp_path)
    config = log_.topic("NEW")
    log_.close()
    assert config is not None and config.partitions == 2  # created for the workers
