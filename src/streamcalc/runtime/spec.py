"""What a worker process runs: a pipeline's definition and options, as a file the
supervisor writes under the data dir and the worker reads at start."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.runtime.policy import RunnerOptions


class WorkerSpec(msgspec.Struct, frozen=True):
    pipelineId: str
    definition: dict[str, Any]
    options: dict[str, Any] = {}

    @property
    def runner_options(self) -> RunnerOptions:
        return RunnerOptions(**self.options)


def spec_path(data_dir: Path, pipeline_id: str) -> Path:
    return data_dir / "pipelines" / f"{pipeline_id}.json"


def write_spec(data_dir: Path, pipeline_id: str, definition: dict[str, Any], options: RunnerOptions) -> Path:
    """Write atomically (temp file + rename), so a starting worker never reads half a spec."""
    path = spec_path(data_dir, pipeline_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(WorkerSpec(pipeline_id, definition, asdict(options))))
    tmp.replace(path)
    return path


def read_spec(data_dir: Path, pipeline_id: str) -> WorkerSpec:
    return msgspec.json.decode(spec_path(data_dir, pipeline_id).read_bytes(), type=WorkerSpec)
