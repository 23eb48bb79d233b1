"""The runner: micro-batches through the stage graph with exactly-once state and outputs.

Each batch (docs/exactly-once.md has the argument):
1. reads up to `max_batch_records` from the source partitions, after the last batch;
2. runs the stage graph (state loaded once per stage per batch, kept in a worker cache);
3. appends all its outputs (keyed by assetId) and rejections, stamped (pipelineId, seq,
   meta), where meta lists every batch since the last commit with its input offset ranges.
   The append runs on a thread while the next batch is computed (`appender`), one in flight
   at most.
When the commit policy says so (and before a pause), the dirty state of all batches since
the last commit, their end offsets and the last seq commit in one compare-and-set step,
once the last append has landed.

After a crash the log may hold outputs of batches the store never committed, the newest of
them perhaps only in part. `recover()` reads the newest stamp, re-runs exactly those batches
(same ranges, same seqs) on the committed state, appends of their outputs only what the
log's stamp marks say is missing, and commits. Operators being deterministic, the re-run
yields the same outputs and the same state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.errors import StreamcalcError
from streamcalc.keys import TopicPartition
from streamcalc.library.edh_kafka import ConsumerConfig, ProducerConfig
from streamcalc.log import AppendEntry, Log, ProducerStamp, StampMark, TopicConfig
from streamcalc.log.records import record_entries
from streamcalc.pipeline import PipelineError, StageGraph
from streamcalc.records import Record, decode_origin_messages, decode_records, encode_records
from streamcalc.runtime import failpoints
from streamcalc.runtime.appender import Appender
from streamcalc.runtime.errorlane import ErrorEntry, encode_error, error_topic
from streamcalc.runtime.executor import BatchResult, StageExecutor
from streamcalc.runtime.keyed_state import StageState
from streamcalc.runtime.policy import MAX_WORKERS, RunnerOptions
from streamcalc.runtime.ratelimit import RateLimiter
from streamcalc.runtime.reads import PartitionRead, Reads
from streamcalc.runtime.share import Share, check_shareable, producer_id
from streamcalc.state import Checkpoint, StateStore

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.005


class _BatchRanges(msgspec.Struct, array_like=True):
    seq: int
    ranges: list[tuple[str, int, int, int]]
    now_ms: int = 0
    """The batch's processing time, which a re-run must see again."""
    workers: int = 1
    """Workers of the pipeline that ran it: only as many can redo it, each over its partitions."""


_stamp_meta = msgspec.json.Decoder(list[_BatchRanges])


class RecoveryError(StreamcalcError):
    """The log and the state store disagree in a way recovery cannot repair.

    Typically the state directory was removed while outputs remained, or retention dropped
    input that a pending batch must re-read. Inspect, then stop the pipeline (which clears
    its state and offsets) to start over.
    """


class StateVersionError(RecoveryError):
    """A stage's stored state is in an encoding version its operator no longer reads."""


@dataclass
class RunnerStats:
    batches: int = 0
    records_in: int = 0
    records_out: int = 0
    rejected: int = 0
    discarded: int = 0


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
        worker: int = 0,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.stats = RunnerStats()
        self._log = log_
        self._store = store
        self._opts = options or RunnerOptions()
        self._clock = clock
        # The rate limit (kafkaRate) is the pipeline's: each of its workers reads an equal share.
        self._limiter = RateLimiter(self._opts.rate_limit / self._opts.workers, clock)
        self._stop = False
        self._source_of: dict[str, str] = {}  # topic -> source stage
        self._origin_sources = graph.origin_sources
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
        partitions = {topic: log_.ensure_topic(TopicConfig(topic)).partitions for topic in self._source_of}
        self._share = Share(worker, self._opts.workers, partitions, log_.partition_for)
        check_shareable(graph, partitions, self._opts.workers)
        self._producer_id = producer_id(pipeline_id, worker)
        self._source_tps = self._share.reads
        self._states: dict[str, StageState] = {}  # by name in the store: shared states once
        self._versions: dict[str, tuple[str, int]] = {}  # by name in the store: (operator, version)
        stage_states: dict[str, StageState] = {}
        for n in graph.nodes:
            if (binding := n.op.state_binding(n.name)) is not None:
                name, state_type = binding
                if name not in self._states:
                    self._states[name] = StageState(
                        store,
                        name,
                        state_type,
                        max_cached_keys=self._opts.max_cached_keys,
                        owns=self._share.owns(),
                    )
                    self._versions[name] = (n.op.name, n.op.state_version)
                stage_states[n.name] = self._states[name]
        self._executor = StageExecutor(graph, stage_states)
        self._appender = Appender(log_)
        self._checkpoint = Checkpoint()
        self._now_ms = 0
        """Processing time of the newest batch: the wall clock, held from going back."""
        self._positions: dict[TopicPartition, int] = {}
        self._marks: dict[TopicPartition, StampMark] = {}
        """While redoing batches after a crash: this worker's newest mark per output partition."""
        self._uncommitted: list[_BatchRanges] = []
        self._uncommitted_records = 0
        self._oldest_uncommitted = 0.0
        self._recovered = False
        """False until `recover()`, and again after any failure: batches then refuse to run."""

    # lifecycle

    def recover(self) -> None:
        """Load the committed checkpoint and redo the batches a crash left uncommitted.

        Also the way back after any exception from `run_once`: it drops every cached value.
        """
        self._discard_cache()
        self._check_state_versions()
        self._uncommitted, self._uncommitted_records = [], 0
        self._recovered = True
        cp = self._store.checkpoint(self._share.worker)
        mine = set(self._source_tps)  # a commit writes this worker's offsets only
        cp = self._checkpoint = Checkpoint(
            cp.seq, cp.generation, {tp: o for tp, o in cp.offsets.items() if tp in mine}
        )
        self._positions = {tp: self._initial_position(cp, tp) for tp in self._source_tps}
        pending = self._pending_batches(cp)
        self._marks = self._stamp_marks() if pending else {}
        if pending:
            log.info(
                "pipeline %s: redoing batches %d..%d after a crash",
                self.pipeline_id,
                pending[0].seq,
                pending[-1].seq,
            )
            for batch in pending:
                self._now_ms = max(self._now_ms, batch.now_ms)
                self._process(self._read_exact(batch), batch.seq, batch.now_ms)
            self._marks = {}
            self.flush()

    def run_once(self) -> int:
        """One micro-batch (poll, process, append), then a commit if one is due. Without
        input the batch runs only if a stage acts on processing time (see TimedOperator).

        Returns the records consumed (0 when no input came within `max_wait_s`). A batch's
        outputs are in the log once the next `run_once`, or `flush`, returns.
        """
        self._require_recovered()
        try:
            reads = self._poll()
            seq = (self._uncommitted[-1].seq if self._uncommitted else self._checkpoint.seq) + 1
            now_ms = self._now_ms = max(self._now_ms, self._clock.wall_ms())
            due = bool(reads) or self._executor.due(now_ms)
        except BaseException:
            self._discard_cache()
            raise
        consumed = self._process(reads, seq, now_ms) if due else 0
        if not reads:  # idle: what was processed is in the log when this returns
            self._await_append()
        elapsed = self._clock.monotonic() - self._oldest_uncommitted
        if self._opts.commit_due(elapsed, self._uncommitted_records, len(self._uncommitted)):
            self.flush()
        return consumed

    def run(self) -> None:
        """Recover, process batches until `request_stop()`, then commit everything."""
        self.recover()
        while not self._stop:
            self.run_once()
        self.flush()

    def flush(self) -> None:
        """Commit all processed batches now (a pause does this before it reports PAUSED)."""
        self._require_recovered()
        if not self._uncommitted:
            return
        ends = {(t, p): end for batch in self._uncommitted for t, p, _, end in batch.ranges}
        new = Checkpoint(
            self._uncommitted[-1].seq, self._checkpoint.generation, {**self._checkpoint.offsets, **ends}
        )
        self._await_append()  # state never commits ahead of the outputs it produced
        try:
            writes = {name: state.drain() for name, state in self._states.items()}
            self._store.commit(writes, self._checkpoint, new, self._share.worker)
        except BaseException:
            self._discard_cache()
            raise
        for seq in range(self._checkpoint.seq + 1, new.seq + 1):
            failpoints.reached("after_commit", seq)
        self._checkpoint = new
        self._uncommitted, self._uncommitted_records = [], 0

    def request_stop(self) -> None:
        """Ask `run` to return after the batch in flight commits. Safe from a signal handler."""
        self._stop = True

    @property
    def checkpoint(self) -> Checkpoint:
        """What the store has committed."""
        return self._checkpoint

    # batch steps

    def _poll(self) -> Reads:
        budget = self._limiter.acquire(self._opts.max_batch_records)
        deadline = self._clock.monotonic() + self._opts.max_wait_s
        reads: Reads = {}
        total = 0
        while True:
            for i, tp in enumerate(self._source_tps):
                share = max(1, (budget - total) // (len(self._source_tps) - i))
                if total >= budget:
                    break
                read = reads.get(tp) or PartitionRead(self._positions[tp])
                got = self._log.read(tp[0], tp[1], read.end, share)
                if got.messages or got.next_offset > read.end:  # a gap moves the position too
                    read.add(got)
                    reads[tp] = read
                    total += len(got.messages)
            if total >= budget or self._stop or self._clock.monotonic() >= deadline:
                return reads
            self._clock.sleep(POLL_INTERVAL_S)

    def _process(self, reads: Reads, seq: int, now_ms: int) -> int:
        sources: dict[str, list[Record]] = {}
        errors: list[ErrorEntry] = []
        for (topic, partition), read in reads.items():
            source = self._source_of[topic]
            decode = decode_origin_messages if source in self._origin_sources else decode_records
            records, rejected = decode(read.messages)
            records, misplaced = self._share.split(records, topic, partition)
            errors.extend(
                ErrorEntry(
                    pipelineId=self.pipeline_id,
                    stage=source,
                    reason=reason,
                    record=r,
                    topic=topic,
                    partition=partition,
                )
                for r, reason in misplaced
            )
            sources.setdefault(source, []).extend(records)
            errors.extend(
                ErrorEntry(
                    pipelineId=self.pipeline_id,
                    stage=source,
                    reason=r.reason,
                    raw=r.raw,
                    topic=topic,
                    partition=partition,
                    offset=read.offset_of(r.index),
                )
                for r in rejected
            )
        batch = _BatchRanges(
            seq,
            [(t, p, read.start, read.end) for (t, p), read in reads.items()],
            now_ms,
            self._opts.workers,
        )
        try:
            result = self._executor.run(sources, now_ms)
            errors.extend(
                ErrorEntry(pipelineId=self.pipeline_id, stage=r.stage, reason=r.reason, record=r.record)
                for r in result.rejections
            )
            entries = self._entries(result, errors)
            if self._marks:
                entries = self._unwritten(entries, seq)
            self._appender.wait()
            failpoints.reached("before_append", seq)
            if entries:
                meta = msgspec.json.encode([*self._uncommitted, batch])
                self._appender.start(entries, ProducerStamp(self._producer_id, seq, meta))
            else:
                failpoints.reached("after_append", seq)
        except BaseException:
            self._discard_cache()
            raise
        consumed = sum(len(read.messages) for read in reads.values())
        if not self._uncommitted:
            self._oldest_uncommitted = self._clock.monotonic()
        self._uncommitted.append(batch)
        self._uncommitted_records += consumed
        self._positions.update({(t, p): end for t, p, _, end in batch.ranges})
        self._limiter.consume(consumed)
        self.stats.batches += 1
        self.stats.records_in += consumed
        self.stats.records_out += sum(len(r) for r in result.outputs.values())
        self.stats.rejected += len(errors)
        self.stats.discarded += result.discarded
        return consumed

    def _entries(self, result: BatchResult, errors: list[ErrorEntry]) -> list[AppendEntry]:
        """The batch's appends: outputs keyed by assetId in the partition the log's partitioner
        gives that key, then the error lane's entries (unkeyed)."""
        values: dict[TopicPartition, list[bytes]] = {}
        keys: dict[TopicPartition, list[bytes | None]] = {}
        for stage, records in result.outputs.items():
            topic, partitions = self._sinks[stage]
            if partitions == 1:
                values.setdefault((topic, 0), []).extend(encode_records(records))
                keys.setdefault((topic, 0), []).extend([r.assetId.encode() for r in records])
                continue
            for entry in record_entries(self._log, topic, partitions, records):
                values.setdefault((topic, entry.partition), []).extend(entry.messages)
                keys.setdefault((topic, entry.partition), []).extend(entry.keys or ())
        entries = [AppendEntry(t, p, msgs, keys[(t, p)]) for (t, p), msgs in values.items()]
        if errors:
            entries.append(AppendEntry(self._error_topic, 0, [encode_error(e) for e in errors]))
        return entries

    def _unwritten(self, entries: list[AppendEntry], seq: int) -> list[AppendEntry]:
        """Of a redone batch's entries, what the log does not hold yet: per partition, nothing
        if a later batch's mark is there, the rest of the entry if this batch's mark is (an
        append cut short), all of it otherwise. A mark of another length means the re-run did
        not reproduce the first run's outputs, which exactly-once cannot repair."""
        out = []
        for entry in entries:
            mark = self._marks.get((entry.topic, entry.partition))
            if mark is None or mark.stamp.seq < seq:
                out.append(entry)
            elif mark.stamp.seq == seq:
                if mark.count and mark.count != len(entry.messages):
                    raise RecoveryError(
                        f"pipeline {self.pipeline_id}: batch {seq} redone wrote {len(entry.messages)} "
                        f"message(s) to {entry.topic}[{entry.partition}], the first run {mark.count}: "
                        "a stage is not deterministic"
                    )
                if not mark.complete:
                    out.append(entry._replace(start=mark.written))
        return out

    # recovery

    def _initial_position(self, cp: Checkpoint, tp: TopicPartition) -> int:
        if tp in cp.offsets:
            return cp.offsets[tp]
        if self._resets[tp[0]] == "latest":
            return self._log.end_offset(*tp)
        return self._log.start_offset(*tp)

    def _pending_batches(self, cp: Checkpoint) -> list[_BatchRanges]:
        """Batches whose outputs may be in the log though the store never committed them.

        Only a pipeline of as many workers can redo them, each worker over its partitions. So
        every worker looks at the batches any worker may have left, its own to redo and the
        others' to check, and refuses batches made by another number of workers rather than
        process input twice."""
        mine: list[_BatchRanges] = []
        for k in range(MAX_WORKERS):
            stamp = self._newest_stamp(producer_id(self.pipeline_id, k))
            if stamp is None or stamp.seq <= (
                cp.seq if k == self._share.worker else self._store.checkpoint(k).seq
            ):
                continue
            batches = _stamp_meta.decode(stamp.meta)
            if batches[-1].workers != self._opts.workers:
                raise self._settle_first(k, batches[-1].workers)
            if k == self._share.worker:
                if batches[0].seq != cp.seq + 1 or batches[-1].seq != stamp.seq:
                    raise RecoveryError(
                        f"pipeline {self.pipeline_id}: the log holds batches {batches[0].seq}..{stamp.seq} "
                        f"but state is committed up to batch {cp.seq}"
                    )
                mine = batches
        return mine

    def _output_partitions(self) -> list[TopicPartition]:
        """Every partition the pipeline appends to: its destinations' and its error lane."""
        sinks = {(topic, p) for topic, partitions in self._sinks.values() for p in range(partitions)}
        return sorted(sinks | {(self._error_topic, 0)})

    def _stamp_marks(self, producer: str | None = None) -> dict[TopicPartition, StampMark]:
        """A producer's (default: this worker's) newest mark in each output partition it reached."""
        producer = producer or self._producer_id
        marks = {tp: self._log.last_stamp(tp[0], tp[1], producer) for tp in self._output_partitions()}
        return {tp: mark for tp, mark in marks.items() if mark is not None}

    def _newest_stamp(self, producer: str) -> ProducerStamp | None:
        """A producer's newest stamp across the pipeline's destinations and error lane."""
        marks = self._stamp_marks(producer).values()
        return max((mark.stamp for mark in marks), key=lambda stamp: stamp.seq, default=None)

    def _settle_first(self, worker: int, workers: int) -> RecoveryError:
        return RecoveryError(
            f"pipeline {self.pipeline_id}: worker {worker} of a run with {workers} worker(s) left batches "
            f"uncommitted, which a run with {self._opts.workers} cannot redo; start it with {workers} "
            f"worker(s) once (a pause commits everything), then with {self._opts.workers}"
        )

    def _read_exact(self, batch: _BatchRanges) -> Reads:
        """The input of a batch again: every message of its ranges, read with the offsets the
        log gives (they may have gaps). Gone if retention dropped any of it meanwhile."""
        reads: Reads = {}
        for topic, partition, start, end in batch.ranges:
            read = PartitionRead(start)
            while read.end < end:
                got = self._log.read(topic, partition, read.end, self._opts.max_batch_records, until=end)
                if got.next_offset <= read.end:
                    break
                read.add(got)
            if read.end < end or self._log.start_offset(topic, partition) > start:
                raise RecoveryError(f"input {topic}[{partition}] {start}..{end} of batch {batch.seq} is gone")
            reads[(topic, partition)] = read
        return reads

    def _check_state_versions(self) -> None:
        """Refuse state in an encoding this release cannot read, rather than fail decoding it.
        State stored before versions were recorded is taken to be in the current one."""
        stored = self._store.state_versions()
        record: dict[str, int] = {}
        for name, (operator, version) in self._versions.items():
            found = stored.get(name)
            if found == version:
                continue
            if found is not None and next(self._store.scan(name), None) is not None:
                raise StateVersionError(
                    f"pipeline {self.pipeline_id}: the state of {name} is in encoding version {found}, "
                    f"but {operator} reads version {version}; delete that state (Delete Stage State "
                    f"while paused) or stop the pipeline to start it afresh"
                )
            record[name] = version
        if record:
            self._store.record_state_versions(record)

    def _await_append(self) -> None:
        try:
            self._appender.wait()
        except BaseException:
            self._discard_cache()
            raise

    def _discard_cache(self) -> None:
        """After a failure nothing cached can be trusted; only `recover()` makes the runner usable.
        The append in flight ends first, so recovery reads the log it left."""
        self._appender.abandon()
        self._recovered = False
        for state in self._states.values():
            state.discard()
        self._executor.rebuild()

    def _require_recovered(self) -> None:
        if not self._recovered:
            raise RecoveryError(
                f"pipeline {self.pipeline_id}: call recover() first (at start and after a failure)"
            )
