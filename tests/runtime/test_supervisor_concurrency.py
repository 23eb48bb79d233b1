"""The supervisor's operations side by side: one pipeline's slow I/O (a worker slow to stop, a
store slow to write) holds up neither `info()` nor other pipelines, and two operations on one
pipeline run one after the other, the second seeing what the first did.

Each test holds pipeline A's operation at a real barrier (a stopped worker, a gated store) and
does the rest while it provably waits there; nothing is timed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from runtime_support import (
    BASE_MS,
    IN,
    committed_offset,
    fill,
    record,
    sum_pipeline,
    supervising,
    wait_until,
)

from streamcalc.backends import Backends
from streamcalc.keys import TopicPartition
from streamcalc.log.embedded import open_log
from streamcalc.records import encode_record
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import Supervisor, WorkerStatus
from streamcalc.state.base import StateBackend, StateStore

FAST = RunnerOptions(max_batch_records=500, max_wait_s=0.01)
HANG_GUARD_S = 30.0
"""How long a call may take before it is taken to wait on pipeline A's operation, which never
ends by itself: a guard against a hanging test, not a measure of speed."""

T = TypeVar("T")


def answers(call: Callable[[], T]) -> T:
    """`call()`'s result; fails if it waits on pipeline A's operation held at its barrier."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", call()))
        except BaseException as e:
            outcome.append(("raised", e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    if not outcome:
        raise AssertionError("the call waited on pipeline A's operation")
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    result: T = value
    return result


class Operation(threading.Thread):
    """A supervisor call on a thread of its own; `called` is set just before the call."""

    def __init__(self, call: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self._call = call
        self.called = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        self.called.set()
        try:
            self._call()
        except BaseException as e:
            self.error = e


def sigterm_pending(pid: int) -> bool:
    """Whether a SIGTERM waits on the (stopped) process: a pause has sent it and now waits."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("ShdPnd:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    raise AssertionError(f"no ShdPnd in /proc/{pid}/status")


def status(sup: Supervisor, pipeline_id: str) -> WorkerStatus | None:
    info = sup.info(pipeline_id)
    return None if info is None else info.status


def fill_input(data_dir: Path, n: int = 20) -> None:
    log_ = open_log(data_dir)
    fill(log_, IN, [encode_record(record("a1", "p", BASE_MS + i, 1)) for i in range(n)])
    log_.close()


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    with supervising(tmp_path) as sup:
        yield sup


@pytest.fixture
def stopped_worker(tmp_path: Path, supervisor: Supervisor) -> Iterator[int]:
    """Pipeline A running, its one worker stopped (SIGSTOP): a pause's SIGTERM then waits on it
    until the test continues it, so A's pause waits at a barrier the test opens."""
    fill_input(tmp_path)
    supervisor.start("A", sum_pipeline(out_topic="OUT_A"), FAST)
    wait_until(lambda: committed_offset(tmp_path, "A") == 20, what="A's worker at work")
    pid = supervisor.info("A").pid  # type: ignore[union-attr]
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):  # the test continued it, and it exited
            os.kill(pid, signal.SIGCONT)


def test_a_pause_waiting_for_its_worker_holds_up_no_other_pipeline(
    tmp_path: Path, supervisor: Supervisor, stopped_worker: int
) -> None:
    pausing = Operation(lambda: supervisor.pause("A", timeout_s=600))
    pausing.start()
    wait_until(lambda: sigterm_pending(stopped_worker), what="A's pause to signal its worker")

    assert answers(lambda: status(supervisor, "A")) == WorkerStatus.RUNNING  # until its workers are gone
    assert answers(lambda: supervisor.info("B")) is None
    answers(lambda: supervisor.start("B", sum_pipeline(out_topic="OUT_B"), FAST))
    wait_until(lambda: committed_offset(tmp_path, "B") == 20, what="B's worker at work")
    answers(lambda: supervisor.pause("B"))
    assert status(supervisor, "B") == WorkerStatus.PAUSED
    assert pausing.is_alive() and sigterm_pending(stopped_worker)  # A's pause waited all along

    os.kill(stopped_worker, signal.SIGCONT)
    pausing.join()
    assert pausing.error is None and status(supervisor, "A") == WorkerStatus.PAUSED


def test_an_operation_waits_for_the_one_under_way_on_its_pipeline(
    tmp_path: Path, supervisor: Supervisor, stopped_worker: int
) -> None:
    """A resume issued while the pause is under way resumes the paused pipeline, rather than
    being refused for a pipeline still RUNNING."""
    pausing = Operation(lambda: supervisor.pause("A", timeout_s=600))
    pausing.start()
    wait_until(lambda: sigterm_pending(stopped_worker), what="A's pause to signal its worker")
    resuming = Operation(lambda: supervisor.resume("A"))
    resuming.start()
    resuming.called.wait()

    os.kill(stopped_worker, signal.SIGCONT)
    pausing.join()
    resuming.join()
    assert pausing.error is None and resuming.error is None
    info = supervisor.info("A")
    assert info is not None and info.status == WorkerStatus.RUNNING and info.pid not in (None, stopped_worker)


class Gate:
    """Holds one pipeline's store writes of offsets and clears until `release` is set."""

    def __init__(self, pipeline_id: str) -> None:
        self.pipeline_id = pipeline_id
        self.entered = threading.Event()
        self.release = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def through(self, name: str, call: Callable[[], None]) -> None:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        try:
            assert self.release.wait(HANG_GUARD_S * 4), "the gate was never released"
            call()
            self.calls.append(name)
        finally:
            with self._lock:
                self.inside -= 1


class GatedStore:
    """A pipeline's store whose `reset_offsets` and `clear` pass through its gate."""

    def __init__(self, store: StateStore, gate: Gate) -> None:
        self._store = store
        self._gate = gate

    def reset_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        self._gate.through("reset_offsets", lambda: self._store.reset_offsets(offsets))

    def clear(self) -> None:
        self._gate.through("clear", self._store.clear)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class GatedBackends(Backends):
    """The embedded backends of a data dir, with one pipeline's store behind a gate."""

    gate: Gate

    @property
    def state(self) -> StateBackend:
        backend = super().state
        gate = self.gate

        class Gated:
            def store(self, pipeline_id: str) -> Any:
                store = backend.store(pipeline_id)
                return GatedStore(store, gate) if pipeline_id == gate.pipeline_id else store

            def volatility(self) -> str | None:
                return backend.volatility()

            def close(self) -> None:
                backend.close()

        return Gated()


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Supervisor, Gate]]:
    backends = GatedBackends.resolve(tmp_path)
    backends.gate = Gate("A")
    supervisor = Supervisor(backends, tmp_path)
    try:
        yield supervisor, backends.gate
    finally:
        backends.gate.release.set()
        supervisor.close()
        backends.close()


def test_a_pipelines_store_io_holds_up_no_other_pipeline(
    tmp_path: Path, gated: tuple[Supervisor, Gate]
) -> None:
    """While A's offset reset waits inside the store, `info()` of A and B and B's whole
    lifecycle answer; a stop of A issued meanwhile runs after the reset, never beside it."""
    supervisor, gate = gated
    fill_input(tmp_path)
    resetting = Operation(lambda: supervisor.reset_offsets("A", "earliest", sum_pipeline()))
    resetting.start()
    assert gate.entered.wait(HANG_GUARD_S), "A's reset never reached the store"

    assert answers(lambda: supervisor.info("A")) is None
    answers(lambda: supervisor.start("B", sum_pipeline(out_topic="OUT_B"), FAST))
    assert answers(lambda: status(supervisor, "B")) == WorkerStatus.RUNNING
    wait_until(lambda: committed_offset(tmp_path, "B") == 20, what="B's worker at work")
    answers(lambda: supervisor.stop("B"))
    assert status(supervisor, "B") == WorkerStatus.STOPPED
    stopping = Operation(lambda: supervisor.stop("A"))
    stopping.start()
    stopping.called.wait()
    assert resetting.is_alive() and gate.calls == []  # A's reset waited at the gate all along

    gate.release.set()
    resetting.join()
    stopping.join()
    assert resetting.error is None and stopping.error is None
    assert gate.calls == ["reset_offsets", "clear"] and gate.most_inside == 1
    assert status(supervisor, "A") == WorkerStatus.STOPPED
