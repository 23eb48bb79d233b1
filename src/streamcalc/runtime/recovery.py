"""Crash recovery: what a runner's crash can leave in the log, and how the next run redoes it.

Every append is stamped with the batches since the last commit and their input ranges
(`BatchRanges`). After a crash the log may hold outputs of batches the store never committed,
the newest of them perhaps only in part. Recovery reads the newest stamp of each worker,
hands the runner exactly the batches to redo (same ranges, same seqs, same processing time)
with their input read again, and tells it, per output partition, what of a redone batch the
log holds already (`unwritten`). Operators being deterministic, the re-run yields the same
outputs and the same state. docs/exactly-once.md has the argument.
"""

from __future__ import annotations

import msgspec

from streamcalc.errors import StreamcalcError
from streamcalc.keys import TopicPartition
from streamcalc.log import AppendEntry, Log, ProducerStamp, StampMark
from streamcalc.runtime.assignment import producer_id
from streamcalc.runtime.options import MAX_WORKERS, RunnerOptions
from streamcalc.runtime.reads import PartitionRead, Reads
from streamcalc.runtime.wiring import Wiring
from streamcalc.state import Checkpoint, StateStore


class RecoveryError(StreamcalcError):
    """The log and the state store disagree in a way recovery cannot repair.

    Typically the state directory was removed while outputs remained, or retention dropped
    input that a pending batch must re-read. Inspect, then stop the pipeline (which clears
    its state and offsets) to start over.
    """


class StateVersionError(RecoveryError):
    """A stage's stored state is in an encoding version its operator no longer reads."""


class BatchRanges(msgspec.Struct, array_like=True):
    """One batch as its stamp records it: what a re-run needs to redo it exactly."""

    seq: int
    ranges: list[tuple[str, int, int, int]]
    """(topic, partition, start, end) of each source partition it read."""
    now_ms: int = 0
    """The batch's processing time, which a re-run must see again."""
    workers: int = 1
    """Workers of the pipeline that ran it: only as many can redo it, each over its partitions."""


_stamp_meta = msgspec.json.Decoder(list[BatchRanges])


def unwritten(
    entries: list[AppendEntry], seq: int, marks: dict[TopicPartition, StampMark], pipeline_id: str
) -> list[AppendEntry]:
    """Of a redone batch's entries, what the log does not hold yet: per partition, nothing
    if a later batch's mark is there, the rest of the entry if this batch's mark is (an
    append cut short), all of it otherwise. A mark of another length means the re-run did
    not reproduce the first run's outputs, which exactly-once cannot repair."""
    out = []
    for entry in entries:
        mark = marks.get((entry.topic, entry.partition))
        if mark is None or mark.stamp.seq < seq:
            out.append(entry)
        elif mark.stamp.seq == seq:
            if mark.count and mark.count != len(entry.messages):
                raise RecoveryError(
                    f"pipeline {pipeline_id}: batch {seq} redone wrote {len(entry.messages)} "
                    f"message(s) to {entry.topic}[{entry.partition}], the first run {mark.count}: "
                    "a stage is not deterministic"
                )
            if not mark.complete:
                out.append(entry._replace(start=mark.written))
    return out


class Recovery:
    """One worker's view of what its pipeline left: the store's checkpoints, the log's stamps."""

    def __init__(self, wiring: Wiring, log_: Log, store: StateStore, options: RunnerOptions) -> None:
        self._wiring = wiring
        self._log = log_
        self._store = store
        self._opts = options

    def check_state_versions(self) -> None:
        """Refuse state in an encoding this release cannot read, rather than fail decoding it.
        State stored before versions were recorded is taken to be in the current one."""
        stored = self._store.state_versions()
        record: dict[str, int] = {}
        for name, (operator, version) in self._wiring.versions.items():
            found = stored.get(name)
            if found == version:
                continue
            if found is not None and next(self._store.scan(name), None) is not None:
                raise StateVersionError(
                    f"pipeline {self._wiring.pipeline_id}: the state of {name} is in encoding version "
                    f"{found}, but {operator} reads version {version}; delete that state (Delete Stage "
                    f"State while paused) or stop the pipeline to start it afresh"
                )
            record[name] = version
        if record:
            self._store.record_state_versions(record)

    def committed(self) -> Checkpoint:
        """This worker's committed checkpoint, with its own offsets only (a commit writes those)."""
        cp = self._store.checkpoint(self._wiring.assignment.worker)
        mine = set(self._wiring.assignment.reads)
        return Checkpoint(cp.seq, cp.generation, {tp: o for tp, o in cp.offsets.items() if tp in mine})

    def positions(self, cp: Checkpoint) -> dict[TopicPartition, int]:
        """Where this worker reads each of its partitions next: the committed offset, else the
        start or end of the partition as its source's auto.offset.reset says."""
        positions = {}
        for tp in self._wiring.assignment.reads:
            if tp in cp.offsets:
                positions[tp] = cp.offsets[tp]
            elif self._wiring.resets[tp[0]] == "latest":
                positions[tp] = self._log.end_offset(*tp)
            else:
                positions[tp] = self._log.start_offset(*tp)
        return positions

    def pending(self, cp: Checkpoint) -> list[BatchRanges]:
        """Batches whose outputs may be in the log though the store never committed them.

        Only a pipeline of as many workers can redo them, each worker over its partitions. So
        every worker looks at the batches any worker may have left, its own to redo and the
        others' to check, and refuses batches made by another number of workers rather than
        process input twice."""
        me = self._wiring.assignment.worker
        mine: list[BatchRanges] = []
        for k in range(MAX_WORKERS):
            stamp = self._newest_stamp(producer_id(self._wiring.pipeline_id, k))
            if stamp is None or stamp.seq <= (cp.seq if k == me else self._store.checkpoint(k).seq):
                continue
            batches = _stamp_meta.decode(stamp.meta)
            if batches[-1].workers != self._opts.workers:
                raise self._settle_first(k, batches[-1].workers)
            if k == me:
                if batches[0].seq != cp.seq + 1 or batches[-1].seq != stamp.seq:
                    raise RecoveryError(
                        f"pipeline {self._wiring.pipeline_id}: the log holds batches {batches[0].seq}.."
                        f"{stamp.seq} but state is committed up to batch {cp.seq}"
                    )
                mine = batches
        return mine

    def marks(self, producer: str | None = None) -> dict[TopicPartition, StampMark]:
        """A producer's (default: this worker's) newest mark in each output partition it reached."""
        producer = producer or self._wiring.producer_id
        marks = {tp: self._log.last_stamp(tp[0], tp[1], producer) for tp in self._wiring.output_partitions}
        return {tp: mark for tp, mark in marks.items() if mark is not None}

    def read_exact(self, batch: BatchRanges) -> Reads:
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

    def _newest_stamp(self, producer: str) -> ProducerStamp | None:
        """A producer's newest stamp across the pipeline's destinations and error lane."""
        marks = self.marks(producer).values()
        return max((mark.stamp for mark in marks), key=lambda stamp: stamp.seq, default=None)

    def _settle_first(self, worker: int, workers: int) -> RecoveryError:
        return RecoveryError(
            f"pipeline {self._wiring.pipeline_id}: worker {worker} of a run with {workers} worker(s) "
            f"left batches uncommitted, which a run with {self._opts.workers} cannot redo; start it "
            f"with {workers} worker(s) once (a pause commits everything), then with {self._opts.workers}"
        )
