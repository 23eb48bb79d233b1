"""How far a pipeline has read each partition of its source topics, and how far they go: the
lag of Offset and Lag, the console and `streamcalc_consumer_lag_records`."""

from __future__ import annotations

from dataclasses import dataclass

from streamcalc.backends import Backends
from streamcalc.library.edh_kafka import ConsumerConfig
from streamcalc.pipeline import StageGraph


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    committed: int
    """The pipeline's committed offset: what its workers have read and committed."""
    end: int

    @property
    def lag(self) -> int:
        return self.end - self.committed


def source_topics(graph: StageGraph) -> list[str]:
    return [n.config.topic for n in graph.sources if isinstance(n.config, ConsumerConfig)]


def partition_offsets(backends: Backends, pipeline_id: str, topics: list[str]) -> list[PartitionOffsets]:
    """Every partition of `topics` (those that exist), from the pipeline's committed offsets."""
    log_ = backends.log
    offsets = backends.state.store(pipeline_id).checkpoint().offsets
    found = []
    for topic in topics:
        config = log_.topic(topic)
        for p in range(config.partitions if config else 0):
            found.append(PartitionOffsets(topic, p, offsets.get((topic, p), 0), log_.end_offset(topic, p)))
    return found
