"""A worker's share of a parallel pipeline: the source partitions it reads, the assets whose
state it owns, and the records it must not process (docs/exactly-once.md, Parallel pipelines)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streamcalc.log import TopicPartition, partition_for
from streamcalc.records import Record


class Share:
    """Worker `worker` of `workers`, over sources of the given partition counts. Producers place
    records by asset and every source has a multiple of `workers` partitions, so an asset in
    partition crc % p is read by worker (crc % p) % workers = crc % workers: one worker."""

    def __init__(self, worker: int, workers: int, partitions: Mapping[str, int]) -> None:
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} of {workers}: a worker is numbered from 0 to workers - 1")
        self.worker, self.workers = worker, workers
        self._partitions = partitions
        self.unshareable = {topic: n for topic, n in partitions.items() if n % workers}
        """Sources `workers` cannot share, with their partitions: a runner refuses them."""
        self.partitions: list[TopicPartition] = [
            (topic, p) for topic, n in partitions.items() for p in range(worker, n, workers)
        ]

    def producer_id(self, pipeline_id: str) -> str:
        """Worker 0 stamps as the pipeline, so a pipeline's stamps keep their id across a change
        to one worker or more."""
        return pipeline_id if self.worker == 0 else f"{pipeline_id}#{self.worker}"

    def owns(self) -> Callable[[str], bool] | None:
        """Whether this worker owns an asset's state (None with one worker: it owns all)."""
        if self.workers == 1:
            return None
        workers, worker = self.workers, self.worker
        return lambda asset_id: partition_for(asset_id, workers) == worker

    def split(
        self, records: list[Record], topic: str, partition: int
    ) -> tuple[list[Record], list[tuple[Record, str]]]:
        """The records in their asset's partition, and the others with the reason: another
        worker may own their state, so processing them could race it."""
        if self.workers == 1:
            return records, []
        n = self._partitions[topic]
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
