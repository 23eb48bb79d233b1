"""What the supervisor does to a pipeline's data on the backends, apart from its processes:
source topics made shareable by its workers, offsets reset, state and offsets cleared, and
the log's retention swept. Each is plain backend I/O, which the supervisor runs without its
table lock."""

from __future__ import annotations

from streamcalc.backends import Backends
from streamcalc.keys import TopicPartition
from streamcalc.log import ResetTarget, TopicConfig
from streamcalc.pipeline import StageGraph
from streamcalc.runtime.assignment import check_shareable, source_topics


class PipelineData:
    def __init__(self, backends: Backends) -> None:
        self._backends = backends

    def share_sources(self, graph: StageGraph, workers: int) -> None:
        """Create missing source topics with a partition per worker, then refuse what the
        workers cannot run (`check_shareable`): here as well as in each worker's runner, so a
        start that cannot run fails at once instead of ending in RUN_ERROR."""
        partitions = {
            topic: self._backends.log.ensure_topic(TopicConfig(topic, partitions=workers)).partitions
            for _, topic in source_topics(graph)
        }
        check_shareable(graph, partitions, workers)

    def reset_offsets(
        self, pipeline_id: str, graph: StageGraph, to: ResetTarget
    ) -> dict[TopicPartition, int]:
        """Every source partition of `graph` to its earliest or latest input; returns the offsets."""
        log_ = self._backends.log
        offset_at = log_.start_offset if to == "earliest" else log_.end_offset
        offsets: dict[TopicPartition, int] = {}
        for _, topic in source_topics(graph):
            config = log_.ensure_topic(TopicConfig(topic))
            for p in range(config.partitions):
                offsets[(topic, p)] = offset_at(topic, p)
        self._backends.state.store(pipeline_id).reset_offsets(offsets)
        return offsets

    def clear(self, pipeline_id: str) -> None:
        """Drop the pipeline's stage state and offsets (EnOS stop): its next start begins afresh."""
        self._backends.state.store(pipeline_id).clear()

    def sweep_retention(self) -> None:
        """Age out what retention no longer keeps: appends trim their own partitions, this the
        topics nobody appends to."""
        self._backends.log.enforce_retention()
