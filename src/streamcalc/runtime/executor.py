"""Runs one batch through the stage graph, in topological order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamcalc.errors import StreamcalcError
from streamcalc.library import KeyedState, Operator
from streamcalc.pipeline import StageGraph
from streamcalc.records import Record
from streamcalc.runtime.keyed_state import StageState


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


@dataclass
class BatchResult:
    outputs: dict[str, list[Record]] = field(default_factory=dict)
    """Destination stage name -> records to write."""
    rejections: list[Rejection] = field(default_factory=list)


class _Context:
    __slots__ = ("_rejections", "_stage", "_state")

    def __init__(self, stage: str, state: StageState | None, rejections: list[Rejection]) -> None:
        self._stage = stage
        self._state = state
        self._rejections = rejections

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def state(self) -> KeyedState[Any]:
        if self._state is None:
            raise TypeError(f"stage {self._stage} declares no state")
        return self._state

    def reject(self, record: Record, reason: str) -> None:
        self._rejections.append(Rejection(self._stage, record, reason))


class StageExecutor:
    def __init__(self, graph: StageGraph, states: dict[str, StageState]) -> None:
        self._graph = graph
        self._states = states
        self._operators: dict[str, Operator] = {
            n.name: n.op.build(n.config) for n in graph.nodes if n.op.build is not None
        }

    def run(self, sources: dict[str, list[Record]]) -> BatchResult:
        """`sources`: source stage name -> decoded records read for it in this batch."""
        result = BatchResult()
        lanes: dict[str, list[Record]] = {}
        for node in self._graph.nodes:
            if node.op.role == "source":
                lanes[node.name] = sources.get(node.name, [])
                continue
            batch = (
                lanes[node.inputs[0]] if len(node.inputs) == 1 else [r for i in node.inputs for r in lanes[i]]
            )
            if node.op.role == "destination":
                result.outputs[node.name] = batch
                continue
            ctx = _Context(node.name, self._states.get(node.name), result.rejections)
            try:
                lanes[node.name] = self._operators[node.name].process(batch, ctx) if batch else []
            except Exception as e:
                raise StageFailed(node.name, e) from e
        return result
