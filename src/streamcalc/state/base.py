"""The StateStore contract: per-pipeline keyed stage state plus the source offsets.

Keys are (stageInstanceName, assetId, pointId); a value is the bytes of one key's whole
state as its operator encodes it (a window operator keeps all open windows of a key in one
value, so a key is read with one lookup). Each pipeline has its own store.

Semantics every backend keeps (an in-memory store, LMDB and Redis alike):
- **Durable when `commit` returns**: a commit that returned survives a crash of the process
  and, for backends that say so, of the machine or server. A backend that cannot promise it
  (e.g. a Redis without fsync on every write) says why in `StateBackend.volatility()`, and no
  pipeline runs on it unless that was accepted; reading and deleting state still work.
- `commit` applies the state writes of one or more batches, their source end offsets and
  the sequence number of the last one in one atomic step. Readers (other processes
  included) see all of it or none. The sequence number only moves forward.
- Each worker of a parallel pipeline has a sequence of its own (worker 0's is the only one
  of a pipeline with one worker); the workers own disjoint keys and source partitions, and
  share the generation.
- `commit` is a compare-and-set on (the worker's seq, generation): a writer whose checkpoint
  is stale gets `StaleCheckpoint` and nothing is written. This fences zombie workers and any
  cache that was read before a delete, reset or clear (architecture invariant 4).
- `delete_keys` removes every requested key of one stage or none, and bumps the generation
  if it removed any (a delete that finds nothing changes nothing).
  Given a `keep` id it also keeps the values it removed under that id, in the same atomic
  step: the store, not its caller, holds what an undo needs, so a delete of 100,000 keys is
  one pass over them and nothing is deleted that is not kept. `restore_kept` puts them back
  (all or none) and bumps the generation too; neither moves a worker's seq, so recovery never
  takes them for a batch. Kept values stay until `drop_kept` or `clear`.
- Offsets never move backwards through `commit` (`OffsetRegression`); `reset_offsets` and
  `clear` are the only ways back, and both bump the generation.
- No call blocks on another reader; writers are serialised by the backend.
- A failure of the storage or server is `StateUnavailable` (cause chained), never the
  backend library's own exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streamcalc.keys import StateKey, TopicPartition
from streamcalc.state.errors import OffsetRegression, StaleCheckpoint

StateWrites = Mapping[str, Mapping[StateKey, bytes | None]]
"""stage -> key -> new value, or None to delete the key."""


@dataclass(frozen=True)
class Checkpoint:
    """What a store has committed: the last batch's seq, the delete/reset generation, the offsets."""

    seq: int = 0
    generation: int = 0
    offsets: Mapping[TopicPartition, int] = field(default_factory=dict)

    def advance(self, offsets: Mapping[TopicPartition, int]) -> Checkpoint:
        """The checkpoint one batch later, with the batch's end offsets merged in."""
        return Checkpoint(self.seq + 1, self.generation, {**self.offsets, **offsets})


def check_seq_forward(expected: Checkpoint, new: Checkpoint) -> None:
    """ValueError if `new` does not move the worker's seq forward (a caller's mistake)."""
    if new.seq <= expected.seq:
        raise ValueError(f"a commit moves seq forward: {expected.seq} -> {new.seq}")


def check_commit(stored: Checkpoint, expected: Checkpoint, new: Checkpoint) -> None:
    """The compare-and-set of `commit`, for every backend alike: `StaleCheckpoint` if the worker's
    checkpoint moved, ValueError if `new` does not move seq forward, `OffsetRegression` if an
    offset of `new` is behind the committed one."""
    if (stored.seq, stored.generation) != (expected.seq, expected.generation):
        raise StaleCheckpoint((expected.seq, expected.generation), (stored.seq, stored.generation))
    check_seq_forward(expected, new)
    for tp, offset in new.offsets.items():
        committed = stored.offsets.get(tp, 0)
        if offset < committed:
            raise OffsetRegression(tp[0], tp[1], committed, offset)


class StateStore(Protocol):
    def get_many(self, stage: str, keys: Sequence[StateKey]) -> list[bytes | None]:
        """Values for `keys` in order, None where a key has no state."""
        ...

    def scan(self, stage: str, asset_id: str | None = None) -> Iterator[tuple[str, str, bytes]]:
        """(assetId, pointId, value) of one stage, or of one asset in it, sorted by (assetId, pointId)."""
        ...

    def delete_keys(
        self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str], keep: str | None = None
    ) -> int:
        """Delete the cross product assets x points of `stage` atomically; returns how many existed.
        With `keep`, the deleted values are kept under that id (nothing is kept if none existed)."""
        ...

    def restore_kept(self, keep: str) -> int:
        """Put back the values kept under `keep` and forget them, atomically, bumping the
        generation; returns how many keys were put back, 0 (and nothing changes) if none are kept."""
        ...

    def drop_kept(self, keep: str) -> None:
        """Forget the values kept under `keep`, if any (undo retention)."""
        ...

    def checkpoint(self, worker: int = 0) -> Checkpoint:
        """The worker's seq, the generation and every committed offset."""
        ...

    def commit(self, writes: StateWrites, expected: Checkpoint, new: Checkpoint, worker: int = 0) -> None:
        """Apply `writes` and record `new` if the worker's checkpoint is still `expected` (see
        module doc). Only the offsets in `new` are written."""
        ...

    def reset_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Set source offsets (e.g. to earliest or latest); state is kept."""
        ...

    def clear(self) -> None:
        """Drop every stage's state, every offset and every kept value (EnOS stop); the batch
        sequence goes on."""
        ...

    def stages(self) -> list[str]:
        """Stage instance names that hold any state."""
        ...

    def state_versions(self) -> dict[str, int]:
        """Stage -> the encoding version its state is written in, as recorded."""
        ...

    def record_state_versions(self, versions: Mapping[str, int]) -> None:
        """Record stages' state encoding versions; `clear` forgets them with the state."""
        ...

    def close(self) -> None: ...


class StateBackend(Protocol):
    """Where the stores of all pipelines live (one LMDB directory, one Redis, ...).

    `store` hands out one long-lived store per pipeline, shared by every caller in this
    process (an API request must not pay for a connection); the backend closes them all."""

    def store(self, pipeline_id: str) -> StateStore:
        """The store of `pipeline_id` (created on first use); do not close it yourself."""
        ...

    def volatility(self) -> str | None:
        """Why a commit that returned could still be lost (e.g. a server that does not fsync
        every write), or None if it cannot: pipelines refuse to run on volatile state unless
        it is allowed (`Backends.require_durable_state`)."""
        ...

    def close(self) -> None: ...
