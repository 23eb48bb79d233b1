"""What each worker has committed, per stage, in a file of its own that the service reads.

Workers are processes of their own, so their numbers reach the service (its /metrics and the
console) through the data dir: `pipelines/{id}.stats/worker-{k}.json`, rewritten atomically
after every commit. Counts are added when the batches that made them commit, so a batch
redone after a crash counts once; a restarted worker carries on from its file, so the
numbers only grow (what Prometheus expects of a counter), across pauses and restarts alike.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left
from collections.abc import Mapping
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)
CHECKPOINT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the checkpoint duration histogram; one more bucket is +Inf."""


class StageCounts(msgspec.Struct):
    """Records that reached a stage, that it passed on (a destination: wrote), and that it
    refused (to the error lane or discarded, per its onRecordError)."""

    records_in: int = 0
    records_out: int = 0
    rejected: int = 0

    def add(self, other: StageCounts) -> None:
        self.records_in += other.records_in
        self.records_out += other.records_out
        self.rejected += other.rejected


def add_counts(into: dict[str, StageCounts], counts: Mapping[str, StageCounts]) -> None:
    for stage, c in counts.items():
        into.setdefault(stage, StageCounts()).add(c)


class WorkerStats(msgspec.Struct):
    stages: dict[str, StageCounts] = {}
    checkpoint_buckets: list[int] = msgspec.field(default_factory=lambda: [0] * (len(CHECKPOINT_BUCKETS) + 1))
    """Commits per duration bucket (not cumulative), the last one above every bound."""
    checkpoint_seconds: float = 0.0
    checkpoints: int = 0

    def committed(self, counts: Mapping[str, StageCounts], seconds: float) -> None:
        """One commit that took `seconds`, of batches that counted `counts`."""
        add_counts(self.stages, counts)
        self.checkpoint_buckets[bisect_left(CHECKPOINT_BUCKETS, seconds)] += 1
        self.checkpoint_seconds += seconds
        self.checkpoints += 1

    def merge(self, other: WorkerStats) -> None:
        add_counts(self.stages, other.stages)
        self.checkpoint_buckets = [
            a + b for a, b in zip(self.checkpoint_buckets, other.checkpoint_buckets, strict=True)
        ]
        self.checkpoint_seconds += other.checkpoint_seconds
        self.checkpoints += other.checkpoints


_decode = msgspec.json.Decoder(WorkerStats).decode


def stats_dir(data_dir: Path, pipeline_id: str) -> Path:
    return data_dir / "pipelines" / f"{pipeline_id}.stats"


class WorkerStatsFile:
    """Worker `worker`'s stats: loaded when it starts, written after each of its commits."""

    def __init__(self, data_dir: Path, pipeline_id: str, worker: int) -> None:
        self._path = stats_dir(data_dir, pipeline_id) / f"worker-{worker}.json"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self.stats = _read(self._path) or WorkerStats()

    def committed(self, counts: Mapping[str, StageCounts], seconds: float) -> None:
        """Add a commit's counts and write the file; one that cannot be written (a full disk)
        is logged and written with the next commit: the numbers must never stop the pipeline."""
        self.stats.committed(counts, seconds)
        tmp = self._path.with_suffix(".tmp")
        try:
            tmp.write_bytes(msgspec.json.encode(self.stats))
            os.replace(tmp, self._path)
        except OSError as e:
            log.warning("the worker's stats could not be written to %s: %s; next commit retries", tmp, e)


def pipeline_stats(data_dir: Path, pipeline_id: str) -> WorkerStats:
    """Every worker's stats of the pipeline added up (all zero if none has committed yet)."""
    total = WorkerStats()
    directory = stats_dir(data_dir, pipeline_id)
    for path in sorted(directory.glob("worker-*.json")) if directory.is_dir() else ():
        if (stats := _read(path)) is not None:
            total.merge(stats)
    return total


def _read(path: Path) -> WorkerStats | None:
    try:
        return _decode(path.read_bytes())
    except FileNotFoundError:
        return None
