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

What the runner is made of is resolved once (`wiring`); `recover()` redoes, through the same
batch steps, what a crash left uncommitted (`recovery`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.keys import TopicPartition
from streamcalc.log import AppendEntry, Log, ProducerStamp, StampMark
from streamcalc.log.records import record_entries
from streamcalc.pipeline import StageGraph
from streamcalc.records import Record, decode_origin_messages, decode_records, encode_records
from streamcalc.runtime import failpoints
from streamcalc.runtime.appender import Appender
from streamcalc.runtime.errorlane import ErrorEntry, encode_error
from streamcalc.runtime.executor import BatchResult
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.ratelimit import RateLimiter
from streamcalc.runtime.reads import PartitionRead, Reads
from streamcalc.runtime.recovery import BatchRanges, Recovery, RecoveryError, unwritten
from streamcalc.runtime.stats import StageCounts, add_counts
from streamcalc.runtime.wiring import wire
from streamcalc.state import Checkpoint, StateStore

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.005
OnCommit = Callable[[Mapping[str, StageCounts], float], None]
"""Told after each commit: the committed batches' counts per stage, and the commit's seconds."""


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
        on_commit: OnCommit | None = None,
    ) -> None:
        """Resolve `graph` on the log and store (see `wire`); nothing runs until `recover()`."""
        self.pipeline_id = pipeline_id
        self.stats = RunnerStats()
        self._log = log_
        self._store = store
        self._opts = options = options or RunnerOptions()
        self._clock = clock
        # The rate limit (kafkaRate) is the pipeline's: each of its workers reads an equal share.
        self._limiter = RateLimiter(options.rate_limit / options.workers, clock)
        self._stop = False
        self._wiring = wire(pipeline_id, graph, log_, store, options, worker)
        self._recovery = Recovery(self._wiring, log_, store, options)
        self._appender = Appender(log_)
        self._checkpoint = Checkpoint()
        self._now_ms = 0
        """Processing time of the newest batch: the wall clock, held from going back."""
        self._positions: dict[TopicPartition, int] = {}
        self._marks: dict[TopicPartition, StampMark] = {}
        """While redoing batches after a crash: this worker's newest mark per output partition."""
        self._uncommitted: list[BatchRanges] = []
        self._uncommitted_records = 0
        self._uncommitted_counts: dict[str, StageCounts] = {}
        self._on_commit = on_commit
        self._oldest_uncommitted = 0.0
        self._drained = False
        self._recovered = False
        """False until `recover()`, and again after any failure: batches then refuse to run."""

    # lifecycle

    def recover(self) -> None:
        """Load the committed checkpoint and redo the batches a crash left uncommitted.

        Also the way back after any exception from `run_once`: it drops every cached value.
        """
        self._discard_cache()
        self._recovery.check_state_versions()
        self._uncommitted, self._uncommitted_records, self._uncommitted_counts = [], 0, {}
        self._recovered = True
        cp = self._checkpoint = self._recovery.committed()
        self._positions = self._recovery.positions(cp)
        pending = self._recovery.pending(cp)
        self._marks = self._recovery.marks() if pending else {}
        if pending:
            log.info(
                "pipeline %s: redoing batches %d..%d after a crash",
                self.pipeline_id,
                pending[0].seq,
                pending[-1].seq,
            )
            for batch in pending:
                self._now_ms = max(self._now_ms, batch.now_ms)
                self._process(self._recovery.read_exact(batch), batch.seq, batch.now_ms)
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
            due = bool(reads) or self._wiring.executor.due(now_ms)
        except BaseException:
            self._discard_cache()
            raise
        consumed = self._process(reads, seq, now_ms) if due else 0
        if not reads:  # idle: what was processed is in the log when this returns
            self._await_append()
        elapsed = self._clock.monotonic() - self._oldest_uncommitted
        if self._opts.commit_due(elapsed, self._uncommitted_records, len(self._uncommitted), self._drained):
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
        started = self._clock.monotonic()
        try:
            writes = {name: state.drain() for name, state in self._wiring.states.items()}
            self._store.commit(writes, self._checkpoint, new, self._wiring.assignment.worker)
        except BaseException:
            self._discard_cache()
            raise
        seconds = self._clock.monotonic() - started
        for seq in range(self._checkpoint.seq + 1, new.seq + 1):
            failpoints.reached("after_commit", seq)
        self._checkpoint = new
        if self._on_commit is not None:
            self._on_commit(self._uncommitted_counts, seconds)
        self._uncommitted, self._uncommitted_records, self._uncommitted_counts = [], 0, {}

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
        tps = self._wiring.assignment.reads
        reads: Reads = {}
        total = 0
        while True:
            for i, tp in enumerate(tps):
                share = max(1, (budget - total) // (len(tps) - i))
                if total >= budget:
                    break
                read = reads.get(tp) or PartitionRead(self._positions[tp])
                got = self._log.read(tp[0], tp[1], read.end, share)
                if got.messages or got.next_offset > read.end:  # a gap moves the position too
                    read.add(got)
                    reads[tp] = read
                    total += len(got.messages)
            if total >= budget or self._stop or self._clock.monotonic() >= deadline:
                self._drained = total < budget  # the log had no more when the wait ended
                return reads
            self._clock.sleep(POLL_INTERVAL_S)

    def _process(self, reads: Reads, seq: int, now_ms: int) -> int:
        """Run one batch over `reads` and start its append; it is then uncommitted work."""
        sources, errors = self._decode(reads)
        unread = list(errors)  # refused by their source: never reached it as records
        batch = BatchRanges(
            seq, [(t, p, read.start, read.end) for (t, p), read in reads.items()], now_ms, self._opts.workers
        )
        try:
            result = self._wiring.executor.run(sources, now_ms)
            errors.extend(
                ErrorEntry(pipelineId=self.pipeline_id, stage=r.stage, reason=r.reason, record=r.record)
                for r in result.rejections
            )
            self._append(self._entries(result, errors), batch)
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
        for e in unread:
            result.counts[e.stage].records_in += 1
            result.counts[e.stage].rejected += 1
        add_counts(self._uncommitted_counts, result.counts)
        return consumed

    def _decode(self, reads: Reads) -> tuple[dict[str, list[Record]], list[ErrorEntry]]:
        """Each source stage's records, and for the error lane the messages that are none and
        the records this worker must not process (see `Assignment.split`)."""
        sources: dict[str, list[Record]] = {}
        errors: list[ErrorEntry] = []
        for (topic, partition), read in reads.items():
            source = self._wiring.source_of[topic]
            decode = decode_origin_messages if source in self._wiring.origin_sources else decode_records
            records, rejected = decode(read.messages)
            records, misplaced = self._wiring.assignment.split(records, topic, partition)
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
        return sources, errors

    def _entries(self, result: BatchResult, errors: list[ErrorEntry]) -> list[AppendEntry]:
        """The batch's appends: outputs keyed by assetId in the partition the log's partitioner
        gives that key, then the error lane's entries (unkeyed)."""
        values: dict[TopicPartition, list[bytes]] = {}
        keys: dict[TopicPartition, list[bytes | None]] = {}
        for stage, records in result.outputs.items():
            topic, partitions = self._wiring.sinks[stage]
            if partitions == 1:
                values.setdefault((topic, 0), []).extend(encode_records(records))
                keys.setdefault((topic, 0), []).extend([r.assetId.encode() for r in records])
                continue
            for entry in record_entries(self._log, topic, partitions, records):
                values.setdefault((topic, entry.partition), []).extend(entry.messages)
                keys.setdefault((topic, entry.partition), []).extend(entry.keys or ())
        entries = [AppendEntry(t, p, msgs, keys[(t, p)]) for (t, p), msgs in values.items()]
        if errors:
            entries.append(AppendEntry(self._wiring.error_topic, 0, [encode_error(e) for e in errors]))
        return entries

    def _append(self, entries: list[AppendEntry], batch: BatchRanges) -> None:
        """Start the batch's append, stamped with every batch since the last commit, once the
        one before has landed. A redone batch appends only what the log does not hold yet."""
        if self._marks:
            entries = unwritten(entries, batch.seq, self._marks, self.pipeline_id)
        self._appender.wait()
        failpoints.reached("before_append", batch.seq)
        if entries:
            meta = msgspec.json.encode([*self._uncommitted, batch])
            self._appender.start(entries, ProducerStamp(self._wiring.producer_id, batch.seq, meta))
        else:
            failpoints.reached("after_append", batch.seq)

    # failures

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
        for state in self._wiring.states.values():
            state.discard()
        self._wiring.executor.rebuild()

    def _require_recovered(self) -> None:
        if not self._recovered:
            raise RecoveryError(
                f"pipeline {self.pipeline_id}: call recover() first (at start and after a failure)"
            )
