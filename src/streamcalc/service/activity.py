"""What the console and /metrics show of a pipeline beyond the EnOS reads: its stage graph with
each stage's committed counts (from the workers' stats files, `runtime.stats`), its workers,
the offsets of its source partitions, the keys each stateful stage holds, the latest records
its stages rejected, and its last error. One source for both, so they never disagree."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.backends import Backends
from streamcalc.catalog import PipelineRecord
from streamcalc.pipeline import StageGraph, build_graph, load_pipeline_document
from streamcalc.runtime.errorlane import decode_error, error_topic
from streamcalc.runtime.stats import StageCounts, WorkerStats, pipeline_stats
from streamcalc.runtime.supervisor import Supervisor, WorkerInfo
from streamcalc.service.offsets import PartitionOffsets, partition_offsets, source_topics

MAX_REJECTED = 200
"""Rejected records one call shows at most."""


@dataclass(frozen=True)
class _KeyCount:
    generation: int
    at: float
    keys: dict[str, int]


class Activity:
    """On the service's backends and supervisor; `state_keys_ttl_s` bounds how often a stage's
    keys are counted (a scan), unless a delete, restore or stop changed the store since."""

    def __init__(
        self, backends: Backends, supervisor: Supervisor, data_dir: Path, state_keys_ttl_s: float
    ) -> None:
        self._backends = backends
        self._supervisor = supervisor
        self._data_dir = data_dir
        self._ttl_s = state_keys_ttl_s
        self._lock = threading.Lock()
        self._key_counts: dict[str, _KeyCount] = {}

    def graph(self, record: PipelineRecord) -> StageGraph:
        """The graph it runs (the released version), else the design's."""
        return build_graph(load_pipeline_document(record.released or record.design))

    def stats(self, pipeline_id: str) -> WorkerStats:
        return pipeline_stats(self._data_dir, pipeline_id)

    def stages(self, record: PipelineRecord) -> list[dict[str, Any]]:
        """Each stage in topological order with its inputs, kind and committed counts."""
        counts = self.stats(record.pipeline_id).stages
        graph = self.graph(record)
        keys = self.state_keys(record, graph)
        return [
            {
                "name": n.name,
                "stageName": n.op.name,
                "role": n.op.role,
                "inputs": list(n.inputs),
                "stateful": n.op.state_kind != "none",
                "stateKeys": keys.get(n.name),
                **_counts(counts.get(n.name, StageCounts())),
            }
            for n in graph.nodes
        ]

    def workers(self, pipeline_id: str) -> dict[str, Any]:
        """What the supervisor of this service knows of the workers (none: never run here)."""
        info: WorkerInfo | None = self._supervisor.info(pipeline_id)
        if info is None:
            return {"status": None, "pids": [], "restarts": 0, "failures": 0, "lastExitCode": None}
        return {
            "status": str(info.status),
            "pids": info.pids,
            "restarts": info.restarts,
            "failures": info.failures,
            "lastExitCode": info.last_exit_code,
        }

    def offsets(self, record: PipelineRecord) -> list[PartitionOffsets]:
        return partition_offsets(self._backends, record.pipeline_id, source_topics(self.graph(record)))

    def state_keys(self, record: PipelineRecord, graph: StageGraph | None = None) -> dict[str, int]:
        """Stateful stage -> keys holding state, counted at most every `state_keys_ttl_s`."""
        pipeline_id = record.pipeline_id
        store = self._backends.state.store(pipeline_id)
        generation = store.checkpoint().generation
        now = self._backends.clock.monotonic()
        with self._lock:
            cached = self._key_counts.get(pipeline_id)
        if cached is not None and cached.generation == generation and now - cached.at < self._ttl_s:
            return cached.keys
        keys = {}
        for n in (graph or self.graph(record)).nodes:
            if (binding := n.op.state_binding(n.name)) is not None:
                keys[n.name] = sum(1 for _ in store.scan(binding[0]))
        with self._lock:
            self._key_counts[pipeline_id] = _KeyCount(generation, now, keys)
        return keys

    def rejected(self, pipeline_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` entries of the error lane, newest first, with their reasons."""
        topic, log_ = error_topic(pipeline_id), self._backends.log
        if log_.topic(topic) is None:
            return []
        end = log_.end_offset(topic, 0)
        start = max(log_.start_offset(topic, 0), end - min(limit, MAX_REJECTED))
        read = log_.read(topic, 0, start, end - start)
        entries = [
            {"errorOffset": read.offset_of(i), **msgspec.to_builtins(decode_error(m))}
            for i, m in enumerate(read.messages)
        ]
        return entries[::-1]


def _counts(c: StageCounts) -> dict[str, int]:
    return {"recordsIn": c.records_in, "recordsOut": c.records_out, "rejected": c.rejected}
