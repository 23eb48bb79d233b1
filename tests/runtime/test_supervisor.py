"""The supervisor: pause is a barrier (invariant 3), resume/stop, guards, restarts."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_support import (
    BASE_MS,
    IN,
    OUT,
    STAGE,
    committed_offset,
    fill,
    generate_messages,
    open_store,
    read_all,
    record,
    sum_pipeline,
    wait_until,
)

from streamcalc.log import AppendEntry, TopicConfig, open_log
from streamcalc.pipeline import PipelineError
from streamcalc.records import decode_record, encode_record
from streamcalc.runtime.policy import RunnerOptions
from streamcalc.runtime.supervisor import LifecycleError, PipelineStatus, Supervisor

FAST = RunnerOptions(max_batch_records=500, max_wait_s=0.01)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(tmp_path, backoff_initial_s=0.02, backoff_max_s=0.1, max_failures=3)
    yield sup
    sup.close()


def status(sup: Supervisor) -> PipelineStatus | None:
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
            time.sleep(0.002)
        log_.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        supervisor.start("p1", sum_pipeline(window_unit="day"), FAST)
        wait_until(lambda: committed_offset(tmp_path, "p1") > 2_000, what="progress")
        pid = supervisor.info("p1").pid  # type: ignore[union-attr]
        supervisor.pause("p1")
        assert status(supervisor) == PipelineStatus.PAUSED
        assert pid is not None and not alive(pid)
        committed = committed_offset(tmp_path, "p1")
        # every committed input record (all are selected, one rule) produced exactly one output
        assert outputs(tmp_path) == committed
        time.sleep(0.3)
        assert committed_offset(tmp_path, "p1") == committed and outputs(tmp_path) == committed
    finally:
        stop_feeding.set()
        feeder.join()


def test_pause_delete_resume_through_worker_processes(tmp_path: Path, supervisor: Supervisor) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, [encode_record(record(a, "p", BASE_MS + i, 1)) for i in range(4) for a in ("a1", "a2")])
    supervisor.start("p1", sum_pipeline(), FAST)
    wait_until(lambda: committed_offset(tmp_path, "p1") == 8, what="first input")
    supervisor.pause("p1")
    store = open_store(tmp_path)
    assert store.delete_keys(STAGE, ["a1"], ["p"]) == 1
    store.close()
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

    assert status(supervisor) == PipelineStatus.STOPPED
    store = open_store(tmp_path)
    assert store.checkpoint().offsets == {} and list(store.scan(STAGE)) == []
    store.close()
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
    assert status(supervisor) == PipelineStatus.RUNNING
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
    assert info is not None and info.status == PipelineStatus.RUNNING and info.pid not in (None, first)
    assert info.last_exit_code == -9


def test_repeated_failures_end_in_run_error(tmp_path: Path) -> None:
    log_ = open_log(tmp_path)
    fill(log_, IN, generate_messages(100, keys=3))
    log_.close()
    sup = Supervisor(
        tmp_path,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
        max_failures=3,
        worker_env={"STREAMCALC_FAILPOINT": "before_append:1"},
    )
    try:
        sup.start("p1", sum_pipeline(), FAST)
        wait_until(lambda: status(sup) == PipelineStatus.RUN_ERROR, what="RUN_ERROR")
        info = sup.info("p1")
        assert info is not None and info.failures == 3 and info.restarts == 2 and info.pid is None
        sup.stop("p1")
        assert status(sup) == PipelineStatus.STOPPED
    finally:
        sup.close()


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
    sup = Supervisor(tmp_path, retention_check_s=0.05)
    try:
        wait_until(lambda: log_.start_offset("OLD", 0) == 2, what="the sweep to drop the old batch")
    finally:
        sup.close()
        log_.close()
