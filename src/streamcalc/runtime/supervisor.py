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

The supervisor runs on the `Backends` it is given (its caller closes them); its workers open
the same ones from their spec, so the log and state must reach other processes.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from streamcalc.backends import Backends, BackendUrls
from streamcalc.backends.urls import Part, scheme_of
from streamcalc.errors import StreamcalcError
from streamcalc.ids import check_pipeline_id
from streamcalc.keys import TopicPartition
from streamcalc.log import ResetTarget, TopicConfig
from streamcalc.pipeline import StageGraph, build_graph
from streamcalc.runtime.assignment import check_shareable, source_topics
from streamcalc.runtime.options import RunnerOptions
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
    halting: bool = False
    """Its workers are being stopped: the watcher neither reaps nor restarts them."""

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
        self._clock = backends.clock
        self._data_dir = data_dir
        self._retention_check_s = retention_check_s
        self._next_retention = self._clock.monotonic()
        self._max_failures = max_failures
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stable_after_s = stable_after_s
        self._env = {**os.environ, **(worker_env or {})}
        self._lock = threading.Lock()
        self._pipelines: dict[str, _Managed] = {}
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
        workers cannot open with `BackendsNotShared`.
        """
        check_pipeline_id(pipeline_id)
        if not self._backends.urls.shared:
            raise BackendsNotShared(pipeline_id, self._backends.urls)
        graph = build_graph(definition)
        options = options or RunnerOptions()
        with self._lock:
            current = self._pipelines.get(pipeline_id)
            if current and current.status == WorkerStatus.RUNNING:
                raise LifecycleError(pipeline_id, "start", current.status)
        self._share_sources(graph, options.workers)
        if current is not None:
            self._halt(current, PAUSE_TIMEOUT_S)  # after RUN_ERROR, workers may still be stopping
        with self._lock:
            if self._pipelines.get(pipeline_id) is not current:  # another start came first
                raise LifecycleError(pipeline_id, "start", self._pipelines[pipeline_id].status)
            write_spec(self._data_dir, pipeline_id, definition, options, self._backends.urls)
            self._launch(pipeline_id, options.workers)

    def resume(self, pipeline_id: str) -> None:
        with self._lock:
            paused = self._require(pipeline_id, "resume", WorkerStatus.PAUSED)
            self._launch(pipeline_id, len(paused.workers))

    def pause(self, pipeline_id: str, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """Return once every worker has committed and exited: no batch in flight anywhere."""
        with self._lock:
            managed = self._require(pipeline_id, "pause", WorkerStatus.RUNNING)
        try:
            self._halt(managed, timeout_s)
        finally:
            with self._lock:
                managed.status = WorkerStatus.PAUSED

    def stop(self, pipeline_id: str, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """EnOS stop: halt, then clear the pipeline's stage state and source offsets.

        Also for a pipeline this supervisor never ran (paused before a restart, say).
        """
        check_pipeline_id(pipeline_id)
        with self._lock:
            managed = self._pipelines.get(pipeline_id)
            status = managed.status if managed else None
        if status == WorkerStatus.STOPPED:
            raise LifecycleError(pipeline_id, "stop", status)
        if status == WorkerStatus.RUNNING:
            self.pause(pipeline_id, timeout_s)
        elif managed is not None:
            self._halt(managed, timeout_s)  # after RUN_ERROR, workers may still be stopping
        self._backends.state.store(pipeline_id).clear()
        with self._lock:
            self._pipelines[pipeline_id] = _Managed(WorkerStatus.STOPPED)

    def reset_offsets(
        self, pipeline_id: str, to: ResetTarget, definition: dict[str, Any] | None = None
    ) -> dict[TopicPartition, int]:
        """Move the source offsets of `definition` (default: the last one run) to the earliest
        or latest input. Not while a worker runs: its next commit would be fenced anyway."""
        check_pipeline_id(pipeline_id)
        with self._lock:
            managed = self._pipelines.get(pipeline_id)
            status = managed.status if managed else None
            if status == WorkerStatus.RUNNING or (status is None and definition is None):
                raise LifecycleError(pipeline_id, "reset the offsets of", status)
            graph = build_graph(definition or read_spec(self._data_dir, pipeline_id).definition)
            log_ = self._backends.log
            offset_at = log_.start_offset if to == "earliest" else log_.end_offset
            offsets: dict[TopicPartition, int] = {}
            for _, topic in source_topics(graph):
                config = log_.ensure_topic(TopicConfig(topic))
                for p in range(config.partitions):
                    offsets[(topic, p)] = offset_at(topic, p)
            self._backends.state.store(pipeline_id).reset_offsets(offsets)
            return offsets

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
            pipelines = list(self._pipelines.items())
        for pipeline_id, managed in pipelines:
            if managed.status == WorkerStatus.RUNNING:
                self.pause(pipeline_id, timeout_s)
            else:
                self._halt(managed, timeout_s)  # after RUN_ERROR, workers may still be stopping
        self._closed.set()
        self._monitor.join()

    # internals (called without the lock)

    def _share_sources(self, graph: StageGraph, workers: int) -> None:
        """Create missing source topics with a partition per worker, then refuse what the
        workers cannot run (`check_shareable`): here as well as in each worker's runner, so a
        start that cannot run fails at once instead of ending in RUN_ERROR."""
        partitions = {
            topic: self._backends.log.ensure_topic(TopicConfig(topic, partitions=workers)).partitions
            for _, topic in source_topics(graph)
        }
        check_shareable(graph, partitions, workers)

    def _halt(self, managed: _Managed, timeout_s: float) -> None:
        """Stop the workers of `managed` (see `_terminate`); called without the lock."""
        with self._lock:
            managed.halting = True
            processes = [w.process for w in managed.workers if w.process is not None]
        try:
            _terminate(processes, timeout_s)
        finally:
            with self._lock:
                for worker in managed.workers:
                    worker.process, worker.restart_at = None, None
                managed.halting = False

    # internals (called with the lock held)

    def _require(self, pipeline_id: str, action: str, status: WorkerStatus) -> _Managed:
        managed = self._pipelines.get(pipeline_id)
        if managed is None or managed.status != status:
            raise LifecycleError(pipeline_id, action, managed.status if managed else None)
        return managed

    def _launch(self, pipeline_id: str, workers: int) -> None:
        managed = _Managed(WorkerStatus.RUNNING, [_Worker(k) for k in range(workers)])
        self._pipelines[pipeline_id] = managed
        for worker in managed.workers:
            self._spawn(pipeline_id, worker)

    def _spawn(self, pipeline_id: str, worker: _Worker) -> None:
        logs = self._data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{pipeline_id}.log", "ab") as out:
            worker.process = subprocess.Popen(
                worker_command(self._data_dir, pipeline_id, worker.index),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
            )
        worker.started_at = self._clock.monotonic()
        worker.restart_at = None

    def _watch(self) -> None:
        while not self._closed.wait(MONITOR_INTERVAL_S):
            # The watcher must outlive any failure: without it nothing restarts a worker.
            with self._lock:
                for pipeline_id, managed in self._pipelines.items():
                    if managed.halting or managed.status not in _WATCHED:
                        continue
                    try:
                        self._check(pipeline_id, managed)
                    except Exception:
                        log.exception("pipeline %s: supervising failed; will retry", pipeline_id)
            if self._clock.monotonic() >= self._next_retention:
                self._next_retention = self._clock.monotonic() + self._retention_check_s
                try:
                    self._backends.log.enforce_retention()
                except Exception:
                    log.exception("retention sweep failed; retrying in %.0fs", self._retention_check_s)

    def _check(self, pipeline_id: str, managed: _Managed) -> None:
        """Reap the workers that exited, and restart each after its backoff. RUN_ERROR stops the
        others (they commit and exit), since a pipeline missing a worker misses its input."""
        now = self._clock.monotonic()
        for worker in managed.workers:
            if worker.process is None:
                if worker.restart_at is not None and now >= worker.restart_at:
                    managed.restarts += 1
                    self._spawn(pipeline_id, worker)
                continue
            code = worker.process.poll()
            if code is None:
                continue
            worker.process = None
            if managed.status == WorkerStatus.RUN_ERROR:
                continue  # stopped because another worker failed
            managed.last_exit_code = code
            if now - worker.started_at >= self._stable_after_s:
                worker.failures = 0
            worker.failures += 1
            if worker.failures >= self._max_failures:
                log.error(
                    "pipeline %s: worker %d failed %d times in a row; RUN_ERROR",
                    pipeline_id,
                    worker.index,
                    worker.failures,
                )
                managed.status = WorkerStatus.RUN_ERROR
                for other in managed.workers:
                    other.restart_at = None
                    if other.process is not None:
                        other.process.send_signal(signal.SIGTERM)
                continue
            delay = min(self._backoff[0] * 2 ** (worker.failures - 1), self._backoff[1])
            log.warning(
                "pipeline %s: worker %d exited with %s; restart in %.1fs",
                pipeline_id,
                worker.index,
                code,
                delay,
            )
            worker.restart_at = now + delay


def _terminate(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM to all, then wait for all against one deadline: the workers commit and exit side
    by side, so this takes about as long as the slowest of them. A worker past the deadline is
    killed; its uncommitted work is redone by the next worker."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        if not _exited(process, max(0.0, deadline - time.monotonic())):
            log.warning(
                "worker %d did not stop within %.0fs; killing it (uncommitted work is redone)",
                process.pid,
                timeout_s,
            )
            process.kill()
            process.wait()


def _exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait up to `timeout_s` for `process` to exit, and reap it. Woken by the kernel through a
    pidfd: `Popen.wait` polls in sleeps growing to 50 ms, which a pause would wait out."""
    try:
        fd = os.pidfd_open(process.pid)
    except OSError:  # reaped already, or no pidfd on this kernel
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)
    if ready:
        process.wait()
    return bool(ready)
