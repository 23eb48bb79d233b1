"""What a worker process runs: a pipeline's definition, options and backends, as a file the
supervisor writes under the data dir and the worker reads at start."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.backends import Backends, BackendUrls
from streamcalc.runtime.options import RunnerOptions


class WorkerSpec(msgspec.Struct, frozen=True):
    pipelineId: str
    definition: dict[str, Any]
    options: dict[str, Any] = {}
    backends: BackendUrls | None = None
    """The supervisor's resolved backends; None in a spec an earlier release wrote, which ran
    on the embedded defaults under the data dir."""

    @property
    def runner_options(self) -> RunnerOptions:
        return RunnerOptions(**self.options)

    def backend_urls(self, data_dir: Path) -> BackendUrls:
        """The backends to open: the spec's, or for an earlier release's spec those it ran on."""
        return self.backends or Backends.resolve(data_dir).urls


def spec_path(data_dir: Path, pipeline_id: str) -> Path:
    return data_dir / "pipelines" / f"{pipeline_id}.json"


def write_spec(
    data_dir: Path,
    pipeline_id: str,
    definition: dict[str, Any],
    options: RunnerOptions,
    backends: BackendUrls,
) -> Path:
    """Write atomically (temp file + rename), so a starting worker never reads half a spec;
    readable by this user only, since a backend URL may hold a password."""
    path = spec_path(data_dir, pipeline_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    content = msgspec.json.encode(WorkerSpec(pipeline_id, definition, asdict(options), backends))
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(content)
    os.chmod(tmp, 0o600)  # a .tmp left by an earlier crash kept its own mode
    tmp.replace(path)
    return path


def read_spec(data_dir: Path, pipeline_id: str) -> WorkerSpec:
    return msgspec.json.decode(spec_path(data_dir, pipeline_id).read_bytes(), type=WorkerSpec)
