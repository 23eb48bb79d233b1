"""Runs one batch through the stage graph, in topological order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamcalc.errors import StreamcalcError
from streamcalc.library import KeyedState, Operator, TimedOperator
from streamcalc.pipeline import StageGraph, StageNode, StageSettings
from streamcalc.records import Record
from streamcalc.runtime.keyed_state import StageState
from streamcalc.runtime.stats import StageCounts


class StageFailed(StreamcalcError):
    """An operator raised while processing a batch; the batch is not committed."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"stage {stage} failed: {type(cause).__name__}: {cause}")
        self.stage = stage


@dataclass
class Rejection:
    stage: str
    record: Record
    reason: str


class RecordStop(StreamcalcError):
    """A stage with onRecordError STOP_PIPELINE refused a record: the batch fails."""


@dataclass
class BatchResult:
    outputs: dict[str, list[Record]] = field(default_factory=dict)
    """Destination stage name -> records to write."""
    rejections: list[Rejection] = field(default_factory=list)
    """For the error lane (stages with onRecordError TO_ERROR)."""
    discarded: int = 0
    """Refused by stages with onRecordError DISCARD: counted, not kept."""
    counts: dict[str, StageCounts] = field(default_factory=dict)
    """Per stage: records in, out and refused (either way)."""


class _Context:
    __slots__ = ("_now_ms", "_on_error", "_result", "_stage", "_state")

    def __init__(self, node: StageNode, state: StageState | None, result: BatchResult, now_ms: int) -> None:
        self._stage = node.name
        self._on_error = node.settings.on_error
        self._state = state
        self._result = result
        self._now_ms = now_ms

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def state(self) -> KeyedState[Any]:
        if self._state is None:
            raise TypeError(f"stage {self._stage} declares no state")
        return self._state

    def reject(self, record: Record, reason: str) -> None:
        """Per the stage's onRecordError: to the error lane, dropped and counted, or stop."""
        if self._on_error != "STOP_PIPELINE":
            self._result.counts[self._stage].rejected += 1
        if self._on_error == "TO_ERROR":
            self._result.rejections.append(Rejection(self._stage, record, reason))
        elif self._on_error == "DISCARD":
            self._result.discarded += 1
        else:
            raise RecordStop(f"stage {self._stage} refused a record (onRecordError STOP_PIPELINE): {reason}")

    def screen(self, batch: list[Record], settings: StageSettings) -> list[Record]:
        """The records that may enter the stage; the others are refused with the reason."""
        admitted = []
        for record in batch:
            reason = settings.refusal(record)
            if reason is None:
                admitted.append(record)
            else:
                self.reject(record, reason)
        return admitted


class StageExecutor:
    def __init__(self, graph: StageGraph, states: dict[str, StageState]) -> None:
        self._graph = graph
        self._states = states
        self._operators: dict[str, Operator] = {}
        self._timed: dict[str, TimedOperator] = {}
        self.rebuild()

    def rebuild(self) -> None:
        """Fresh operators: after a failure, whatever they keep in memory (built from state,
        like an index of idle keys) may be ahead of the committed state."""
        self._operators = {n.name: n.op.build(n.config) for n in self._graph.nodes if n.op.build is not None}
        self._timed = {name: op for name, op in self._operators.items() if isinstance(op, TimedOperator)}

    def due(self, now_ms: int) -> bool:
        """Whether some stage would act at `now_ms` without input (see TimedOperator)."""
        return any(op.due(now_ms, self._states[name]) for name, op in self._timed.items())

    def run(self, sources: dict[str, list[Record]], now_ms: int) -> BatchResult:
        """`sources`: source stage name -> decoded records read for it in this batch;
        `now_ms`: the batch's processing time."""
        result = BatchResult()
        lanes: dict[str, list[Record]] = {}
        for node in self._graph.nodes:
            if node.op.role == "source":
                lanes[node.name] = read = sources.get(node.name, [])
                result.counts[node.name] = StageCounts(len(read), len(read))
                continue
            batch = (
                lanes[node.inputs[0]] if len(node.inputs) == 1 else [r for i in node.inputs for r in lanes[i]]
            )
            counts = result.counts[node.name] = StageCounts(len(batch))
            state = self._states.get(node.name)
            ctx = _Context(node, state, result, now_ms)
            try:
                if node.settings.screens:
                    batch = ctx.screen(batch, node.settings)
                if node.op.role == "destination":
                    result.outputs[node.name] = batch
                    counts.records_out = len(batch)
                    continue
                timed = self._timed.get(node.name)
                if batch or (timed is not None and state is not None and timed.due(now_ms, state)):
                    lanes[node.name] = self._operators[node.name].process(batch, ctx)
                else:
                    lanes[node.name] = []
            except Exception as e:
                raise StageFailed(node.name, e) from e
            counts.records_out = len(lanes[node.name])
        return result
