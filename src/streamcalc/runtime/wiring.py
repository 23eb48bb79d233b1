"""A runner's wiring, resolved once when it is built: the topics its stages read and write (made
to exist, with their partitions), this worker's assignment, the stage states and the executor
over them. Everything here is fixed for the runner's life; the batch loop only reads it."""

from __future__ import annotations

from dataclasses import dataclass

from streamcalc.keys import TopicPartition
from streamcalc.library.edh_kafka import ConsumerConfig, ProducerConfig
from streamcalc.log import Log, TopicConfig
from streamcalc.pipeline import PipelineError, StageGraph
from streamcalc.runtime.assignment import Assignment, check_shareable, producer_id
from streamcalc.runtime.errorlane import error_topic
from streamcalc.runtime.executor import StageExecutor
from streamcalc.runtime.keyed_state import StageState
from streamcalc.runtime.options import RunnerOptions
from streamcalc.state import StateStore


@dataclass(frozen=True)
class Wiring:
    pipeline_id: str
    source_of: dict[str, str]
    """Source topic -> the stage that reads it."""
    resets: dict[str, str]
    """Source topic -> its auto.offset.reset: where a partition without an offset starts."""
    origin_sources: frozenset[str]
    """Source stages whose topic holds origin messages."""
    sinks: dict[str, tuple[str, int]]
    """Destination stage -> (topic, partitions)."""
    error_topic: str
    assignment: Assignment
    producer_id: str
    """What this worker stamps its appends with."""
    states: dict[str, StageState]
    """By name in the store: a state that several stages share appears once."""
    versions: dict[str, tuple[str, int]]
    """By name in the store: (operator, encoding version) of its state."""
    executor: StageExecutor

    @property
    def output_partitions(self) -> list[TopicPartition]:
        """Every partition the pipeline appends to: its destinations' and its error lane."""
        sinks = {(topic, p) for topic, partitions in self.sinks.values() for p in range(partitions)}
        return sorted(sinks | {(self.error_topic, 0)})


def wire(
    pipeline_id: str, graph: StageGraph, log_: Log, store: StateStore, options: RunnerOptions, worker: int
) -> Wiring:
    """Resolve `graph` on `log_` and `store` for worker `worker`; raises `PipelineError` for a
    pipeline that cannot run here (a topic read twice, sources its workers cannot share)."""
    source_of, resets = _sources(graph)
    sinks: dict[str, tuple[str, int]] = {}
    for node in graph.destinations:
        sink = node.config
        assert isinstance(sink, ProducerConfig), "graph validation binds destinations to ProducerConfig"
        sinks[node.name] = (sink.topic, log_.ensure_topic(TopicConfig(sink.topic)).partitions)
    errors = log_.ensure_topic(TopicConfig(error_topic(pipeline_id))).name
    partitions = {topic: log_.ensure_topic(TopicConfig(topic)).partitions for topic in source_of}
    assignment = Assignment(worker, options.workers, partitions, log_.partition_for)
    check_shareable(graph, partitions, options.workers)
    states: dict[str, StageState] = {}
    versions: dict[str, tuple[str, int]] = {}
    stage_states: dict[str, StageState] = {}  # by stage
    for n in graph.nodes:
        if (binding := n.op.state_binding(n.name)) is not None:
            name, state_type = binding
            if name not in states:
                states[name] = StageState(
                    store, name, state_type, max_cached_keys=options.max_cached_keys, owns=assignment.owns()
                )
                versions[name] = (n.op.name, n.op.state_version)
            stage_states[n.name] = states[name]
    return Wiring(
        pipeline_id,
        source_of,
        resets,
        graph.origin_sources,
        sinks,
        errors,
        assignment,
        producer_id(pipeline_id, worker),
        states,
        versions,
        StageExecutor(graph, stage_states),
    )


def _sources(graph: StageGraph) -> tuple[dict[str, str], dict[str, str]]:
    """(topic -> source stage, topic -> auto.offset.reset); a topic may be read by one source."""
    source_of: dict[str, str] = {}
    resets: dict[str, str] = {}
    for node in graph.sources:
        config = node.config
        assert isinstance(config, ConsumerConfig), "graph validation binds sources to ConsumerConfig"
        if config.topic in source_of:
            raise PipelineError(
                f"topic {config.topic} is read by {source_of[config.topic]} already",
                node.name,
                "config.topic",
            )
        source_of[config.topic] = node.name
        resets[config.topic] = config.auto_offset_reset
    return source_of, resets
