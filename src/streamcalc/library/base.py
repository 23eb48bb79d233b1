"""The operator contract: batch in, batch out, with keyed state loaded once per batch.

An operator type is a pydantic config model, a builder that turns a validated config into an
`Operator`, a declared state kind and, for stateful kinds, the msgspec type of one key's
state. The runtime owns state: it hands each stateful stage a `KeyedState` view bound to
that stage, loads all keys of a batch with one multi-get, and commits only dirty keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

import msgspec
from pydantic import BaseModel

from streamcalc.keys import StateKey
from streamcalc.records import Record

StateKind = Literal["none", "record", "timestamp", "window"]
Role = Literal["source", "processor", "destination"]
S = TypeVar("S")


class KeyedState(Protocol[S]):
    """One stage's state, keyed by (assetId, pointId), as seen during one batch."""

    def load(self, keys: Iterable[StateKey]) -> dict[StateKey, S | None]:
        """Every key the batch will touch, fetched in one round trip: a working set the
        operator reads and changes freely (None = no state), then hands to `save`."""
        ...

    def save(self, changes: Mapping[StateKey, S | None]) -> None:
        """Keep these values (None deletes the key); committed with the batch's offsets."""
        ...

    def edit(self, keys: Iterable[StateKey]) -> Mapping[StateKey, S | None]:
        """`load` and `save` in one, for an operator that changes most keys it loads in place:
        the stage's live working set rather than a copy, read-only, holding at least `keys`,
        which are all committed with the batch. The operator changes the values of `keys` in
        place and reads no other key; it replaces a value, or gives a key its first one, with
        `save` (so no key can change without being committed). As with a loaded value changed
        in place, a batch that fails leaves its changes there: the runtime then drops the
        working set."""
        ...

    def scan(self) -> Iterator[tuple[StateKey, S]]:
        """Every key with state, as this batch sees it (committed values overlaid with those
        of batches since): for an operator that rebuilds an in-memory index of its keys."""
        ...


class StageContext(Protocol):
    @property
    def stage(self) -> str:
        """The stage instance name."""
        ...

    @property
    def state(self) -> KeyedState[Any]:
        """This stage's keyed state; only stateful operator types may use it."""
        ...

    def reject(self, record: Record, reason: str) -> None:
        """Send `record` to the pipeline's error lane with `reason`; it is counted, never lost."""
        ...

    @property
    def now_ms(self) -> int:
        """Processing time of this batch (epoch ms, never going back while the worker runs).
        Fixed when the batch first runs and recorded with it, so a re-run after a crash sees
        the same time: the only clock an operator may read."""
        ...


class Operator(Protocol):
    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        """Transform one batch. Must be deterministic in (state, batch): crash recovery relies
        on re-running a batch giving the same outputs and state."""
        ...


@runtime_checkable
class TimedOperator(Operator, Protocol):
    """An operator that also acts on processing time, e.g. to close the windows of keys
    that went quiet: the runtime runs it on an empty batch when `due` says so."""

    def due(self, now_ms: int, state: KeyedState[Any]) -> bool:
        """Whether a batch at `now_ms` would do something even without input."""
        ...


C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class SharedState:
    """A pipeline-wide keyed state that several stages use instead of a state of their own
    (EnOS's `commonRedisStage`: every RecordCapturer writes it, RecordRestorer reads it)."""

    name: str
    """Its name in the state store; never a valid stage instanceName, so the two cannot clash."""
    state_type: type[msgspec.Struct]


@dataclass(frozen=True)
class OperatorType(Generic[C]):
    name: str
    config: type[C]
    build: Callable[[C], Operator] | None
    """None for sources and destinations, which the runtime binds to the log."""
    role: Role = "processor"
    state_kind: StateKind = "none"
    state_type: type[msgspec.Struct] | None = None
    state_version: int = 1
    """Bump when the encoding of `state_type` changes incompatibly: the store records it, and
    a runner refuses stored state of another version instead of misreading it."""
    state_view: Callable[[str, str, Any], Any] | None = None
    """(assetId, pointId, decoded state) -> the Get Stage State item, shaped by the state kind:
    a dict, or a msgspec Struct that encodes as that JSON object (built faster; an answer can
    hold 100,000 items)."""
    shared_state: SharedState | None = None
    """When set, `ctx.state` is this pipeline-wide state; a stateful type keeps its state there
    (its state_type must be the shared one), a stateless type only reads it."""
    across_assets: Callable[[C], str | None] | None = None
    """Why a config's state keys group records of several assets (None: they do not). Each
    worker of a parallel pipeline owns some assets only, so such a stage runs on one worker."""
    reads_origin: Callable[[C], bool] | None = None
    """Whether a config's stage reads origin messages (many points per message) straight from
    its source (None: it does not). Such a source then feeds those stages only, and the runtime
    decodes its messages into records before they do."""

    def state_binding(self, stage: str) -> tuple[str, type[msgspec.Struct]] | None:
        """(its name in the pipeline's state store, its type) of the state a stage of this type
        uses; None when it uses none."""
        if self.shared_state is not None:
            return self.shared_state.name, self.shared_state.state_type
        return None if self.state_type is None else (stage, self.state_type)

    def __post_init__(self) -> None:
        stateless = self.state_kind == "none"
        if stateless != (self.state_type is None) or stateless != (self.state_view is None):
            raise TypeError(
                f"operator {self.name}: a state type and view go with a state kind other than 'none'"
            )
        if (
            self.shared_state is not None
            and not stateless
            and self.state_type is not self.shared_state.state_type
        ):
            raise TypeError(f"operator {self.name}: the state type must be that of its shared state")
        if (self.role == "processor") != (self.build is not None):
            raise TypeError(
                f"operator {self.name}: processors need a builder; sources and destinations have none"
            )
