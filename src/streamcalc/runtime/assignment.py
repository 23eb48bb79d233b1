"""Worker assignment: which source partitions each worker of a parallel pipeline reads, which
assets' state it owns, and which records it must not process (docs/exactly-once.md, Parallel
pipelines); and the checks that a pipeline can be shared out at all."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streamcalc.keys import TopicPartition
from streamcalc.library.edh_kafka import ConsumerConfig
from streamcalc.pipeline import PipelineError, StageGraph
from streamcalc.records import Record


def source_topics(graph: StageGraph) -> list[tuple[str, str]]:
    """(stage, topic) of each source of `graph`."""
    sources = []
    for node in graph.sources:
        assert isinstance(node.config, ConsumerConfig), "graph validation binds sources to ConsumerConfig"
        sources.append((node.name, node.config.topic))
    return sources


def producer_id(pipeline_id: str, worker: int) -> str:
    """The id a worker stamps its appends with. Worker 0 stamps as the pipeline, so a pipeline's
    stamps keep their id across a change to one worker or more."""
    return pipeline_id if worker == 0 else f"{pipeline_id}#{worker}"


def check_shareable(graph: StageGraph, partitions: Mapping[str, int], workers: int) -> None:
    """Refuse (`PipelineError`, naming the stage) a pipeline that `workers` workers cannot run:
    a source topic (of `partitions[topic]` partitions) they cannot share, or a stage whose state
    groups several assets."""
    if workers == 1:
        return
    for stage, topic in source_topics(graph):
        if partitions[topic] % workers:
            raise PipelineError(
                f"topic {topic} has {partitions[topic]} partition(s), which {workers} workers cannot "
                f"share: give it a multiple of {workers}",
                stage,
                "config.topic",
            )
    for node in graph.nodes:
        across = node.op.across_assets
        if across is not None and (why := across(node.config)) is not None:
            raise PipelineError(
                f"{why}, which only a pipeline of one worker keeps together", node.name, "config"
            )


Partitioner = Callable[[str, int], int]
"""(key, partitions) -> partition: the log's, `h(key) mod partitions` (the Log contract)."""


class Assignment:
    """Worker `worker` of `workers`, over sources of the given partition counts. Producers place
    records by asset with the log's partitioner, h mod p, and every source has a multiple of
    `workers` partitions, so an asset in partition h % p is read by worker (h % p) % workers =
    h % workers: one worker."""

    def __init__(
        self, worker: int, workers: int, partitions: Mapping[str, int], partition_for: Partitioner
    ) -> None:
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} of {workers}: a worker is numbered from 0 to workers - 1")
        self.worker, self.workers = worker, workers
        self._partitions = partitions
        self._partition_for = partition_for
        self.reads: list[TopicPartition] = [  # the source partitions this worker reads
            (topic, p) for topic, n in partitions.items() for p in range(worker, n, workers)
        ]

    def owns(self) -> Callable[[str], bool] | None:
        """Whether this worker owns an asset's state (None with one worker: it owns all)."""
        if self.workers == 1:
            return None
        workers, worker, partition_for = self.workers, self.worker, self._partition_for
        return lambda asset_id: partition_for(asset_id, workers) == worker

    def split(
        self, records: list[Record], topic: str, partition: int
    ) -> tuple[list[Record], list[tuple[Record, str]]]:
        """The records in their asset's partition, and the others with the reason: another
        worker may own their state, so processing them could race it."""
        if self.workers == 1:
            return records, []
        n, partition_for = self._partitions[topic], self._partition_for
        placed: list[Record] = []
        misplaced: list[tuple[Record, str]] = []
        for r in records:
            home = partition_for(r.assetId, n)
            if home == partition:
                placed.append(r)
            else:
                reason = (
                    f"asset {r.assetId} belongs to partition {home} of {topic}, not {partition}: a "
                    f"pipeline of {self.workers} workers needs its input partitioned by asset"
                )
                misplaced.append((r, reason))
        return placed, misplaced
