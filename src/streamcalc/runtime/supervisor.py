"""The supervisor: one worker process per running pipeline, and the lifecycle barriers.

- start: validate, write the worker spec, spawn the worker. RUNNING.
- pause: SIGTERM; the worker commits the batch in flight and exits. Only then PAUSED, so a
  paused pipeline has no batch in flight, nothing uncommitted and no process holding a
  cache (invariants 3 and 4). A worker that ignores the deadline is killed; that is safe,
  because uncommitted work is redone exactly once by the next worker.
- resume: a new worker, which reads the committed offsets and state from the store.
- stop (EnOS): pause, then clear the pipeline's stage state and offsets. STOPPED.
- reset offsets (PAUSED or STOPPED): source offsets to the earliest or latest input.
A worker that exits on its own is restarted with exponential backoff; after `max_failures`
failures in a row (a run shorter than `stable_after_s`) the pipeline goes to RUN_ERROR.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.errors import StreamcalcError
from streamcalc.library.io import ConsumerConfig
from streamcalc.log import ResetTarget, TopicConfig, TopicPartition, open_log
from streamcalc.pipeline import build_graph
from streamcalc.runtime.policy import RunnerOptions
from streamcalc.runtime.spec import read_spec, write_spec
from streamcalc.runtime.worker import worker_command
from streamcalc.state import check_pipeline_id, open_pipeline_state

log = logging.getLogger(__name__)
MONITOR_INTERVAL_S = 0.1
RETENTION_CHECK_S = 60.0
"""Appends trim their own partitions; this sweep ages out topics nobody appends to."""
PAUSE_TIMEOUT_S = 30.0


class PipelineStatus(StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    RUN_ERROR = "RUN_ERROR"


class LifecycleError(StreamcalcError):
    """An action the pipeline's current status does not allow."""

    def __init__(self, pipeline_id: str, action: str, status: PipelineStatus | None) -> None:
        super().__init__(f"cannot {action} pipeline {pipeline_id}: it is {status or 'not known here'}")
        self.pipeline_id = pipeline_id
        self.action = action
        self.status = status


@dataclass
class WorkerInfo:
    status: PipelineStatus
    pid: int | None = None
    failures: int = 0
    restarts: int = 0
    last_exit_code: int | None = None


@dataclass
class _Managed:
    info: WorkerInfo
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    pausing: bool = False


class Supervisor:
    def __init__(
        self,
        data_dir: Path,
        *,
        max_failures: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_after_s: float = 60.0,
        worker_env: Mapping[str, str] | None = None,
        retention_check_s: float = RETENTION_CHECK_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._data_dir = data_dir
        self._log = open_log(data_dir)
        self._retention_check_s = retention_check_s
        self._next_retention = clock.monotonic()
        self._max_failures = max_failures
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stable_after_s = stable_after_s
        self._env = {**os.environ, **(worker_env or {})}
        self._clock = clock
        self._lock = threading.Lock()
        self._pipelines: dict[str, _Managed] = {}
        self._closed = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="streamcalc-supervisor", daemon=True)
        self._monitor.start()

    def start(
        self, pipeline_id: str, definition: dict[str, Any], options: RunnerOptions | None = None
    ) -> None:
        """Run `definition` (validated here, like the id) from the committed state and offsets.

        From PAUSED this resumes with the given (possibly newly released) definition.
        """
        check_pipeline_id(pipeline_id)
        build_graph(definition)
        with self._lock:
            current = self._pipelines.get(pipeline_id)
            if current and current.info.status == PipelineStatus.RUNNING:
                raise LifecycleError(pipeline_id, "start", current.info.status)
            write_spec(self._data_dir, pipeline_id, definition, options or RunnerOptions())
            managed = _Managed(WorkerInfo(PipelineStatus.RUNNING))
            self._pipelines[pipeline_id] = managed
            self._spawn(pipeline_id, managed)

    def resume(self, pipeline_id: str) -> None:
        with self._lock:
            managed = self._require(pipeline_id, "resume", PipelineStatus.PAUSED)
            managed.info = WorkerInfo(PipelineStatus.RUNNING)
            self._spawn(pipeline_id, managed)

    def pause(self, pipeline_id: str, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """Return once no batch is in flight and everything is committed."""
        with self._lock:
            managed = self._require(pipeline_id, "pause", PipelineStatus.RUNNING)
            managed.pausing = True
            managed.restart_at = None
            process = managed.process
        try:
            if process is not None:
                _terminate(process, timeout_s)
        finally:
            with self._lock:
                managed.process = None
                managed.pausing = False
                managed.info.pid = None
                managed.info.status = PipelineStatus.PAUSED

    def stop(self, pipeline_id: str, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """EnOS stop: halt, then clear the pipeline's stage state and source offsets.

        Also for a pipeline this supervisor never ran (paused before a restart, say).
        """
        check_pipeline_id(pipeline_id)
        with self._lock:
            managed = self._pipelines.get(pipeline_id)
            status = managed.info.status if managed else None
        if status == PipelineStatus.STOPPED:
            raise LifecycleError(pipeline_id, "stop", status)
        if status == PipelineStatus.RUNNING:
            self.pause(pipeline_id, timeout_s)
        store = open_pipeline_state(self._data_dir, pipeline_id)
        try:
            store.clear()
        finally:
            store.close()
        with self._lock:
            self._pipelines[pipeline_id] = _Managed(WorkerInfo(PipelineStatus.STOPPED))

    def reset_offsets(
        self, pipeline_id: str, to: ResetTarget, definition: dict[str, Any] | None = None
    ) -> dict[TopicPartition, int]:
        """Move the source offsets of `definition` (default: the last one run) to the earliest
        or latest input. Not while a worker runs: its next commit would be fenced anyway."""
        check_pipeline_id(pipeline_id)
        with self._lock:
            managed = self._pipelines.get(pipeline_id)
            status = managed.info.status if managed else None
            if status == PipelineStatus.RUNNING or (status is None and definition is None):
                raise LifecycleError(pipeline_id, "reset the offsets of", status)
            graph = build_graph(definition or read_spec(self._data_dir, pipeline_id).definition)
            offsets: dict[TopicPartition, int] = {}
            for node in graph.sources:
                assert isinstance(node.config, ConsumerConfig), (
                    "graph validation binds sources to ConsumerConfig"
                )
                topic = node.config.topic
                config = self._log.ensure_topic(TopicConfig(topic))
                for p in range(config.partitions):
                    offsets[(topic, p)] = (
                        self._log.start_offset if to == "earliest" else self._log.end_offset
                    )(topic, p)
            store = open_pipeline_state(self._data_dir, pipeline_id)
            try:
                store.reset_offsets(offsets)
            finally:
                store.close()
            return offsets

    def info(self, pipeline_id: str) -> WorkerInfo | None:
        with self._lock:
            managed = self._pipelines.get(pipeline_id)
            return None if managed is None else WorkerInfo(**vars(managed.info))

    def close(self, timeout_s: float = PAUSE_TIMEOUT_S) -> None:
        """Pause every running pipeline (their state and offsets stay) and stop watching."""
        with self._lock:
            running = [p for p, m in self._pipelines.items() if m.info.status == PipelineStatus.RUNNING]
        for pipeline_id in running:
            self.pause(pipeline_id, timeout_s)
        self._closed.set()
        self._monitor.join()
        self._log.close()

    # internals (called with the lock held)

    def _require(self, pipeline_id: str, action: str, status: PipelineStatus) -> _Managed:
        managed = self._pipelines.get(pipeline_id)
        if managed is None or managed.info.status != status:
            raise LifecycleError(pipeline_id, action, managed.info.status if managed else None)
        return managed

    def _spawn(self, pipeline_id: str, managed: _Managed) -> None:
        logs = self._data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{pipeline_id}.log", "ab") as out:
            managed.process = subprocess.Popen(
                worker_command(self._data_dir, pipeline_id),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
            )
        managed.started_at = self._clock.monotonic()
        managed.restart_at = None
        managed.info.pid = managed.process.pid

    def _watch(self) -> None:
        while not self._closed.wait(MONITOR_INTERVAL_S):
            # The watcher must outlive any failure: without it nothing restarts a worker.
            with self._lock:
                for pipeline_id, managed in self._pipelines.items():
                    if managed.info.status == PipelineStatus.RUNNING and not managed.pausing:
                        try:
                            self._check(pipeline_id, managed)
                        except Exception:
                            log.exception("pipeline %s: supervising failed; will retry", pipeline_id)
            if self._clock.monotonic() >= self._next_retention:
                self._next_retention = self._clock.monotonic() + self._retention_check_s
                try:
                    self._log.enforce_retention()
                except Exception:
                    log.exception("retention sweep failed; retrying in %.0fs", self._retention_check_s)

    def _check(self, pipeline_id: str, managed: _Managed) -> None:
        now = self._clock.monotonic()
        if managed.process is None:
            if managed.restart_at is not None and now >= managed.restart_at:
                managed.info.restarts += 1
                self._spawn(pipeline_id, managed)
            return
        code = managed.process.poll()
        if code is None:
            return
        managed.process = None
        managed.info.pid = None
        managed.info.last_exit_code = code
        if now - managed.started_at >= self._stable_after_s:
            managed.info.failures = 0
        managed.info.failures += 1
        if managed.info.failures >= self._max_failures:
            log.error(
                "pipeline %s: worker failed %d times in a row; RUN_ERROR", pipeline_id, managed.info.failures
            )
            managed.info.status = PipelineStatus.RUN_ERROR
            return
        delay = min(self._backoff[0] * 2 ** (managed.info.failures - 1), self._backoff[1])
        log.warning("pipeline %s: worker exited with %s; restart in %.1fs", pipeline_id, code, delay)
        managed.restart_at = now + delay


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    process.send_signal(signal.SIGTERM)
    if not _exited(process, timeout_s):
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
