"""The supervisor: the worker processes of each running pipeline, and the lifecycle barriers.

- start: validate, make the source topics shareable by the pipeline's `workers`, write the
  worker spec (with the backends the workers open), spawn the workers (worker k of n reads
  the source partitions p % n == k). RUNNING.
- pause: SIGTERM to every worker, then wait for all; each commits the batch in flight and
  exits. Only then PAUSED, so a paused pipeline has no batch in flight, nothing uncommitted
  and no process holding a cache (invariants 3 and 4). A worker that ignores the deadline is
  killed; that is safe, because uncommitted work is redone exactly once by the next worker.
- resume: new workers, which read the committed offsets and state from the store.
- stop (EnOS): pause, then clear the pipeline's stage state and offsets. STOPPED.
- reset offsets (PAUSED or STOPPED): source offsets to the earliest or latest input.
A worker that exits on its own is restarted alone, with exponential backoff; after
`max_failures` failures in a row of any one worker (each a run shorter than `stable_after_s`)
the pipeline goes to RUN_ERROR and its other workers are stopped.

Operations on one pipeline run one at a time, each whole (a later one sees what the earlier
did); operations on other pipelines, and `info()`, never wait for them: the table lock guards
memory only, and the I/O (processes, specs, the backends' data: `pipeline_data`) runs under
the pipeline's own lock.

The supervisor runs on the `Backends` it is given (its caller closes them); its workers open
the same ones from their spec, so the log and state must reach other processes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from streamcalc.backends import Backends, BackendUrls
from streamcalc.backends.urls import Part, scheme_of
from streamcalc.errors import StreamcalcError
from streamcalc.ids import check_pipeline_id
from streamcalc.keys import TopicPartition
from streamcalc.log import ResetTarget
from streamcalc.pipeline import build_graph
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.pipeline_data import PipelineData
from streamcalc.runtime.processes import spawn, terminate
from streamcalc.runtime.worker import worker_command
from streamcalc.runtime.worker_spec import read_spec, spec_path, write_spec

log = logging.getLogger(__name__)
MONITOR_INTERVAL_S = 0.1
RETENTION_CHECK_S = 60.0
"""Appends trim their own partitions; this sweep ages out topics nobody appends to."""
PAUSE_TIMEOUT_S = 30.0


class WorkerStatus(StrEnum):
    """What the supervisor knows of a pipeline's workers; the catalog's `PipelineStatus` is the
    lifecycle users see (DRAFT, PUBLISHED, ...), which this feeds."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    RUN_ERROR = "RUN_ERROR"


_WATCHED = (WorkerStatus.RUNNING, WorkerStatus.RUN_ERROR)
"""Statuses with workers to reap: RUN_ERROR's are stopping."""


class LifecycleError(StreamcalcError):
    """An action the pipeline's current status does not allow."""

    def __init__(self, pipeline_id: str, action: str, status: WorkerStatus | None) -> None:
        super().__init__(f"cannot {action} pipeline {pipeline_id}: it is {status or 'not known here'}")
        self.pipeline_id = pipeline_id
        self.action = action
        self.status = status


class BackendsNotShared(StreamcalcError):
    """A start on a log or state that lives in one process only (memory), which worker
    processes could not reach."""

    def __init__(self, pipeline_id: str, urls: BackendUrls) -> None:
        parts: tuple[Part, ...] = ("log", "state")
        local = [
            f"--{part} {getattr(urls, part)}"
            for part in parts
            if not scheme_of(part, getattr(urls, part)).shared
        ]
        super().__init__(
            f"cannot start pipeline {pipeline_id}: {' and '.join(local)} "
            f"{'is' if len(local) == 1 else 'are'} reachable from this process only, "
            "and its worker processes need a log and state they can open too"
        )
        self.pipeline_id = pipeline_id


@dataclass
class WorkerInfo:
    status: WorkerStatus
    pid: int | None = None
    """Worker 0's process: the only one of a pipeline of one worker."""
    failures: int = 0
    """Failures in a row of the worker that failed most."""
    restarts: int = 0
    """Of all its workers, since the pipeline was started or resumed."""
    last_exit_code: int | None = None
    pids: list[int | None] = field(default_factory=list)
    """Each worker's process by worker number; None while it has none (paused, or waiting to restart)."""


@dataclass
class _Worker:
    """One worker process of a pipeline: restarted on its own, with its own backoff."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    failures: int = 0


@dataclass
class _Managed:
    status: WorkerStatus
    workers: list[_Worker] = field(default_factory=list)
    restarts: int = 0
    last_exit_code: int | None = None

    def info(self) -> WorkerInfo:
        pids = [w.process.pid if w.process else None for w in self.workers]
        failures = max((w.failures for w in self.workers), default=0)
        return WorkerInfo(
            self.status, pids[0] if pids else None, failures, self.restarts, self.last_exit_code, pids
        )


class Supervisor:
    def __init__(
        self,
        backends: Backends,
        data_dir: Path,
        *,
        max_failures: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_after_s: float = 60.0,
        worker_env: Mapping[str, str] | None = None,
        retention_check_s: float = RETENTION_CHECK_S,
    ) -> None:
        """`data_dir` holds the worker specs and the workers' logs (`pipelines/`, `logs/`)."""
        self._backends = backends
        self._data = PipelineData(backends)
        self._clock = backends.clock
        self._data_dir = data_dir
        self._retention_check_s = retention_check_s
        self._next_retention = self._clock.monotonic()
        self._max_failures = max_failures
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stable_after_s = stable_after_s
        self._env = {**os.environ, **(worker_env or {})}
        self._lock = threading.Lock()
        """The table lock: over `_pipelines`, `_serial` and what they hold; never held across I/O.
        A pipeline's entry changes under both this and its serial lock, so an operation holding
        the latter reads it freely, and `info()` under this one sees it whole."""
        self._pipelines: dict[str, _Managed] = {}
        self._serial: dict[str, threading.Lock] = {}
        """Per pipeline: held through each operation on it and each watcher round over it."""
        self._closed = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="streamcalc-supervisor", daemon=True)
        self._monitor.start()

    def start(
        self, pipeline_id: str, definition: dict[str, Any], options: RunnerOptions | None = None
    ) -> None:
        """Run `definition` (validated here, like the id) from the committed state and offsets.

        From PAUSED this resumes with the given (possibly newly released) definition. A source
        topic that does not exist yet is created with one partition per worker; one whose
        partitions the workers cannot share is refused with a `PipelineError`, backends that
        workers cannot open with `BackendsNotShared`, state that may lose commits with
        `VolatileState` (unless allowed).
        """
        check_pipeline_id(pipeline_id)
        if not self._backends.urls.shared:
            raise BackendsNotShared(pipeline_id, self._backends.urls)
        self._backends.require_durable_state()
        graph = build_graph(definition)
        options = options or RunnerOptions()
        with self._operating(pipeline_id):
            current = self._entry(pipeline_id)
            if current and current.status == WorkerStatus.RUNNING:
                raise LifecycleError(pipeline_id, "start", current.status)
            self._data.share_sources(graph, options.workers)
            if current is not None:
                self._halt(current, PAUSE_TIMEOUT_S)  # after RUN_ERROR, workers may still be stopping
            write_spec(self._data_dir, pipeline_id, definition, options, self._backends.urls)
            self._launch(pipeline_id, options.workers)

    def resume(self, pipeline_id: str) -> None:
        self._backends.require_durable_state()  # its settings may have changed since the start
        with self._operating(pipeline_id):
            paused = self._require(pipeline_id, "resume", WorkerStatus.PAUSED)
            self._launch(pipeline_id, len(paused.workers))

    def pause(self, pipeline_id: str, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """Return once every worker has committed and exited: no batch in flight anywhere."""
        with self._operating(pipeline_id):
            self._pause(self._require(pipeline_id, "pause", WorkerStatus.RUNNING), timeout_s)

    def stop(self, pipeline_id: str, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """EnOS stop: halt, then clear the pipeline's stage state and source offsets.

        Also for a pipeline this supervisor never ran (paused before a restart, say).
        """
        check_pipeline_id(pipeline_id)
        with self._operating(pipeline_id):
            managed = self._entry(pipeline_id)
            if managed is not None and managed.status == WorkerStatus.STOPPED:
                raise LifecycleError(pipeline_id, "stop", managed.status)
            if managed is not None and managed.status == WorkerStatus.RUNNING:
                self._pause(managed, timeout_s)
            elif managed is not None:
                self._halt(managed, timeout_s)  # after RUN_ERROR, workers may still be stopping
            self._data.clear(pipeline_id)
            with self._lock:
                self._pipelines[pipeline_id] = _Managed(WorkerStatus.STOPPED)

    def reset_offsets(
        self, pipeline_id: str, to: ResetTarget, definition: dict[str, Any] | None = None
    ) -> dict[TopicPartition, int]:
        """Move the source offsets of `definition` (default: the last one run) to the earliest
        or latest input. Not while a worker runs: its next commit would be fenced anyway."""
        check_pipeline_id(pipeline_id)
        with self._operating(pipeline_id):
            managed = self._entry(pipeline_id)
            status = managed.status if managed else None
            if status == WorkerStatus.RUNNING or (status is None and definition is None):
                raise LifecycleError(pipeline_id, "reset the offsets of", status)
            graph = build_graph(definition or read_spec(self._data_dir, pipeline_id).definition)
            return self._data.reset_offsets(pipeline_id, graph, to)

    def info(self, pipeline_id: str) -> WorkerInfo | None:
        with self._lock:
            managed = self._pipelines.get(pipeline_id)
            return None if managed is None else managed.info()

    def last_options(self, pipeline_id: str) -> RunnerOptions:
        """The options it was last started with, kept in its worker spec; defaults if it never
        ran on this data dir."""
        check_pipeline_id(pipeline_id)
        if not spec_path(self._data_dir, pipeline_id).exists():
            return RunnerOptions()
        return read_spec(self._data_dir, pipeline_id).runner_options

    def close(self, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """Pause every running pipeline (their state and offsets stay) and stop watching; the
        backends stay open."""
        with self._lock:
            pipeline_ids = list(self._pipelines)
        for pipeline_id in pipeline_ids:
            with self._operating(pipeline_id):
                with self._lock:
                    managed = self._pipelines[pipeline_id]  # replaced at times, never removed
                if managed.status == WorkerStatus.RUNNING:
                    self._pause(managed, timeout_s)
                else:
                    self._halt(managed, timeout_s)  # after RUN_ERROR, workers may still be stopping
        self._closed.set()
        self._monitor.join()

    # the table (takes the table lock, briefly)

    def _serial_lock(self, pipeline_id: str) -> threading.Lock:
        with self._lock:
            return self._serial.setdefault(pipeline_id, threading.Lock())

    @contextmanager
    def _operating(self, pipeline_id: str) -> Iterator[None]:
        """One operation on `pipeline_id` at a time; those on other pipelines go on meanwhile."""
        with self._serial_lock(pipeline_id):
            yield

    def _entry(self, pipeline_id: str) -> _Managed | None:
        with self._lock:
            return self._pipelines.get(pipeline_id)

    def _require(self, pipeline_id: str, action: str, status: WorkerStatus) -> _Managed:
        managed = self._entry(pipeline_id)
        if managed is None or managed.status != status:
            raise LifecycleError(pipeline_id, action, managed.status if managed else None)
        return managed

    # processes (called with the pipeline's serial lock held, without the table lock)

    def _launch(self, pipeline_id: str, workers: int) -> None:
        managed = _Managed(WorkerStatus.RUNNING, [_Worker(k) for k in range(workers)])
        with self._lock:
            self._pipelines[pipeline_id] = managed
        for worker in managed.workers:
            self._spawn(pipeline_id, worker)

    def _spawn(self, pipeline_id: str, worker: _Worker) -> None:
        process = spawn(
            worker_command(self._data_dir, pipeline_id, worker.index),
            self._data_dir / "logs" / f"{pipeline_id}.log",
            self._env,
        )
        with self._lock:
            worker.process, worker.started_at, worker.restart_at = process, self._clock.monotonic(), None

    def _pause(self, managed: _Managed, timeout_s: float) -> None:
        try:
            self._halt(managed, timeout_s)
        finally:
            with self._lock:
                managed.status = WorkerStatus.PAUSED

    def _halt(self, managed: _Managed, timeout_s: float) -> None:
        """Stop the workers of `managed` (see `terminate`)."""
        processes = [w.process for w in managed.workers if w.process is not None]
        try:
            terminate(processes, timeout_s)
        finally:
            with self._lock:
                for worker in managed.workers:
                    worker.process, worker.restart_at = None, None

    def _watch(self) -> None:
        while not self._closed.wait(MONITOR_INTERVAL_S):
            with self._lock:
                pipeline_ids = list(self._pipelines)
            for pipeline_id in pipeline_ids:
                serial = self._serial_lock(pipeline_id)
                if not serial.acquire(blocking=False):
                    continue  # an operation on it is under way and handles its workers
                try:
                    managed = self._entry(pipeline_id)
                    if managed is not None and managed.status in _WATCHED:
                        self._check(pipeline_id, managed)
                except Exception:  # the watcher must outlive any failure: nothing else restarts workers
                    log.exception("pipeline %s: supervising failed; will retry", pipeline_id)
                finally:
                    serial.release()
            if self._clock.monotonic() >= self._next_retention:
                self._next_retention = self._clock.monotonic() + self._retention_check_s
                try:
                    self._data.sweep_retention()
                except Exception:
                    log.exception("retention sweep failed; retrying in %.0fs", self._retention_check_s)

    def _check(self, pipeline_id: str, managed: _Managed) -> None:
        """Reap the workers that exited, and restart each after its backoff."""
        now = self._clock.monotonic()
        for worker in managed.workers:
            if worker.process is None:
                if worker.restart_at is not None and now >= worker.restart_at:
                    with self._lock:
                        managed.restarts += 1
                    self._spawn(pipeline_id, worker)
                continue
            code = worker.process.poll()
            if code is not None:
                self._reap(pipeline_id, managed, worker, code, now)

    def _reap(self, pipeline_id: str, managed: _Managed, worker: _Worker, code: int, now: float) -> None:
        """`worker` exited with `code`: a restart after its backoff, or after too many failures
        in a row RUN_ERROR, which stops the others (they commit and exit), since a pipeline
        missing a worker misses its input."""
        with self._lock:
            worker.process = None
            if managed.status == WorkerStatus.RUN_ERROR:
                return  # stopped because another worker failed
            managed.last_exit_code = code
            if now - worker.started_at >= self._stable_after_s:
                worker.failures = 0
            worker.failures += 1
            failed = worker.failures >= self._max_failures
            delay = min(self._backoff[0] * 2 ** (worker.failures - 1), self._backoff[1])
            if failed:
                managed.status = WorkerStatus.RUN_ERROR
                for other in managed.workers:
                    other.restart_at = None
            else:
                worker.restart_at = now + delay
            others = [w.process for w in managed.workers if w.process is not None]
        if not failed:
            log.warning(
                "pipeline %s: worker %d exited with %s; restart in %.1fs",
                pipeline_id,
                worker.index,
                code,
                delay,
            )
            return
        log.error(
            "pipeline %s: worker %d failed %d times in a row; RUN_ERROR",
            pipeline_id,
            worker.index,
            worker.failures,
        )
        for process in others:
            process.send_signal(signal.SIGTERM)
