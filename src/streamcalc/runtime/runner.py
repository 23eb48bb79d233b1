"""The runner: micro-batches through the stage graph with exactly-once state and outputs.

Each batch is one step (docs/exactly-once.md has the argument):
1. read up to `max_batch_records` from the source partitions, from the committed offsets;
2. run the stage graph (state loaded once per stage, kept in a per-worker cache);
3. append all outputs and rejections in one log append stamped (pipelineId, seq = committed
   seq + 1, meta = the batch's input offset ranges) - the log skips a stamp it already has;
4. commit the dirty state, the end offsets and seq in one compare-and-set store commit.

A crash between 3 and 4 leaves outputs whose stamp is one ahead of the store. `recover()`
finds that stamp and re-runs exactly that input range on the committed state; being
deterministic, the batch yields the same outputs (skipped by the log) and the same state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.errors import StreamcalcError
from streamcalc.library.io import ConsumerConfig, ProducerConfig
from streamcalc.log import AppendEntry, Log, ProducerStamp, TopicConfig, TopicPartition, partition_for
from streamcalc.pipeline import PipelineError, StageGraph
from streamcalc.records import Record, decode_records, encode_record
from streamcalc.runtime import failpoints
from streamcalc.runtime.errorlane import ErrorEntry, encode_error, error_topic
from streamcalc.runtime.executor import BatchResult, StageExecutor
from streamcalc.runtime.keyed_state import StageState
from streamcalc.runtime.policy import RunnerOptions
from streamcalc.runtime.ratelimit import RateLimiter
from streamcalc.state import Checkpoint, StateStore

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.005
_ranges_codec = msgspec.json.Decoder(list[tuple[str, int, int, int]])
_Reads = dict[TopicPartition, tuple[int, list[bytes]]]
"""source partition -> (offset of the first message, messages) read for one batch."""


class RecoveryError(StreamcalcError):
    """The log and the state store disagree in a way recovery cannot repair.

    Typically the state directory was removed while outputs remained, or retention dropped
    input that a pending batch must re-read. Inspect, then stop the pipeline (which clears
    its state and offsets) to start over.
    """


@dataclass
class RunnerStats:
    batches: int = 0
    records_in: int = 0
    records_out: int = 0
    rejected: int = 0


class Runner:
    def __init__(
        self,
        pipeline_id: str,
        graph: StageGraph,
        log_: Log,
        store: StateStore,
        *,
        options: RunnerOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.stats = RunnerStats()
        self._log = log_
        self._store = store
        self._opts = options or RunnerOptions()
        self._clock = clock
        self._limiter = RateLimiter(self._opts.rate_limit, clock)
        self._stop = False
        self._source_of: dict[str, str] = {}  # topic -> source stage
        self._resets: dict[str, str] = {}  # topic -> auto.offset.reset
        for node in graph.sources:
            config = node.config
            assert isinstance(config, ConsumerConfig), "graph validation binds sources to ConsumerConfig"
            if config.topic in self._source_of:
                raise PipelineError(
                    f"topic {config.topic} is read by {self._source_of[config.topic]} already",
                    node.name,
                    "config.topic",
                )
            self._source_of[config.topic] = node.name
            self._resets[config.topic] = config.auto_offset_reset
        self._sinks: dict[str, tuple[str, int]] = {}  # destination stage -> (topic, partitions)
        for node in graph.destinations:
            sink = node.config
            assert isinstance(sink, ProducerConfig), "graph validation binds destinations to ProducerConfig"
            self._sinks[node.name] = (sink.topic, log_.ensure_topic(TopicConfig(sink.topic)).partitions)
        self._error_topic = log_.ensure_topic(TopicConfig(error_topic(pipeline_id))).name
        self._source_tps = [
            (topic, p)
            for topic in self._source_of
            for p in range(log_.ensure_topic(TopicConfig(topic)).partitions)
        ]
        self._states = {
            n.name: StageState(store, n.name, n.op.state_type, max_cached_keys=self._opts.max_cached_keys)
            for n in graph.nodes
            if n.op.state_type is not None
        }
        self._executor = StageExecutor(graph, self._states)
        self._checkpoint = Checkpoint()
        self._positions: dict[TopicPartition, int] = {}

    # lifecycle

    def recover(self) -> None:
        """Load the committed checkpoint and finish a batch a crash left half done."""
        self._discard_cache()
        cp = self._store.checkpoint()
        self._checkpoint = cp
        self._positions = {tp: self._initial_position(cp, tp) for tp in self._source_tps}
        ranges = self._pending_batch(cp)
        if ranges:
            log.info("pipeline %s: finishing batch %d after a crash", self.pipeline_id, cp.seq + 1)
            self._process(self._read_exact(ranges))

    def run_once(self) -> int:
        """One micro-batch: poll, process, append, commit. Returns the records consumed."""
        reads = self._poll()
        return self._process(reads) if reads else 0

    def run(self) -> None:
        """Recover, then process batches until `request_stop()`; the last batch is committed."""
        self.recover()
        while not self._stop:
            self.run_once()

    def request_stop(self) -> None:
        """Ask `run` to return after the batch in flight commits. Safe from a signal handler."""
        self._stop = True

    @property
    def checkpoint(self) -> Checkpoint:
        return self._checkpoint

    # batch steps

    def _poll(self) -> _Reads:
        budget = self._limiter.acquire(self._opts.max_batch_records)
        deadline = self._clock.monotonic() + self._opts.max_wait_s
        reads: _Reads = {}
        total = 0
        while True:
            for i, tp in enumerate(self._source_tps):
                share = max(1, (budget - total) // (len(self._source_tps) - i))
                if total >= budget:
                    break
                first, messages = reads.get(tp, (self._positions[tp], []))
                got = self._log.read(tp[0], tp[1], first + len(messages), share)
                if got.messages:
                    reads[tp] = (first if messages else got.offset, messages + got.messages)
                    total += len(got.messages)
            if total >= budget or self._stop or self._clock.monotonic() >= deadline:
                return reads
            self._clock.sleep(POLL_INTERVAL_S)

    def _process(self, reads: _Reads) -> int:
        seq = self._checkpoint.seq + 1
        sources: dict[str, list[Record]] = {}
        errors: list[ErrorEntry] = []
        for (topic, partition), (first, messages) in reads.items():
            records, rejected = decode_records(messages)
            sources.setdefault(self._source_of[topic], []).extend(records)
            errors.extend(
                ErrorEntry(
                    pipelineId=self.pipeline_id,
                    stage=self._source_of[topic],
                    reason=r.reason,
                    raw=r.raw,
                    topic=topic,
                    partition=partition,
                    offset=first + r.index,
                )
                for r in rejected
            )
        ends = {tp: first + len(messages) for tp, (first, messages) in reads.items()}
        try:
            result = self._executor.run(sources)
            errors.extend(
                ErrorEntry(pipelineId=self.pipeline_id, stage=r.stage, reason=r.reason, record=r.record)
                for r in result.rejections
            )
            entries = self._entries(result, errors)
            failpoints.reached("before_append", seq)
            if entries:
                meta = msgspec.json.encode(
                    [(t, p, first, first + len(m)) for (t, p), (first, m) in reads.items()]
                )
                self._log.append(entries, ProducerStamp(self.pipeline_id, seq, meta))
            failpoints.reached("after_append", seq)
            writes = {name: state.drain() for name, state in self._states.items()}
            new = self._checkpoint.advance(ends)
            self._store.commit(writes, self._checkpoint, new)
        except BaseException:
            self._discard_cache()
            raise
        failpoints.reached("after_commit", seq)
        self._checkpoint = new
        self._positions.update(ends)
        consumed = sum(len(m) for _, m in reads.values())
        self._limiter.consume(consumed)
        self.stats.batches += 1
        self.stats.records_in += consumed
        self.stats.records_out += sum(len(r) for r in result.outputs.values())
        self.stats.rejected += len(errors)
        return consumed

    def _entries(self, result: BatchResult, errors: list[ErrorEntry]) -> list[AppendEntry]:
        per_partition: dict[TopicPartition, list[bytes]] = {}
        for stage, records in result.outputs.items():
            topic, partitions = self._sinks[stage]
            for r in records:
                per_partition.setdefault((topic, partition_for(r.assetId, r.pointId, partitions)), []).append(
                    encode_record(r)
                )
        if errors:
            per_partition.setdefault((self._error_topic, 0), []).extend(encode_error(e) for e in errors)
        return [AppendEntry(t, p, msgs) for (t, p), msgs in per_partition.items()]

    # recovery

    def _initial_position(self, cp: Checkpoint, tp: TopicPartition) -> int:
        if tp in cp.offsets:
            return cp.offsets[tp]
        if self._resets[tp[0]] == "latest":
            return self._log.end_offset(*tp)
        return self._log.start_offset(*tp)

    def _pending_batch(self, cp: Checkpoint) -> dict[TopicPartition, tuple[int, int]]:
        """Input ranges of a batch whose outputs reached the log but whose commit did not."""
        for topic, partitions in [*self._sinks.values(), (self._error_topic, 1)]:
            for partition in range(partitions):
                stamp = self._log.producer(topic, partition, self.pipeline_id)
                if stamp is None or stamp.seq <= cp.seq:
                    continue
                if stamp.seq != cp.seq + 1:
                    raise RecoveryError(
                        f"pipeline {self.pipeline_id}: {topic}[{partition}] holds batch {stamp.seq} "
                        f"but state is committed up to batch {cp.seq}"
                    )
                return {(t, p): (first, end) for t, p, first, end in _ranges_codec.decode(stamp.meta)}
        return {}

    def _read_exact(self, ranges: dict[TopicPartition, tuple[int, int]]) -> _Reads:
        reads: _Reads = {}
        for tp, (start, end) in ranges.items():
            messages: list[bytes] = []
            while start + len(messages) < end:
                got = self._log.read(
                    tp[0], tp[1], start + len(messages), end - start - len(messages), until=end
                )
                if got.offset != start + len(messages) or not got.messages:
                    raise RecoveryError(f"input {tp[0]}[{tp[1]}] {start}..{end} of the pending batch is gone")
                messages.extend(got.messages)
            reads[tp] = (start, messages)
        return reads

    def _discard_cache(self) -> None:
        for state in self._states.values():
            state.discard()
