"""Fixtures for runtime tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_support import IN, RunResult, WorkerProcess, fill, run_in_process, snapshot

from streamcalc.log.embedded import open_log


@pytest.fixture
def reference(tmp_path: Path) -> Callable[[list[bytes], dict[str, Any]], RunResult]:
    """The result of an uninterrupted run over the same input."""

    def make(messages: list[bytes], definition: dict[str, Any]) -> RunResult:
        ref_dir = tmp_path / "reference"
        log_ = open_log(ref_dir)
        fill(log_, IN, messages)
        log_.close()
        run_in_process(ref_dir, "p1", definition, max_batch_records=7_777)
        return snapshot(ref_dir, "p1")

    return make


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(
        data_dir: Path, pipeline_id: str = "p1", failpoint: str | None = None, worker: int = 0
    ) -> WorkerProcess:
        w = WorkerProcess(data_dir, pipeline_id, failpoint, worker)
        started.append(w)
        return w

    yield make
    for w in started:
        if w.process.poll() is None:
            w.process.kill()
            w.wait()
