"""From a pipeline definition to a validated stage graph.

Stages without lanes form a chain in list order; with lanes they form a DAG: a stage reads
the concatenation of its input lanes, and an output lane may feed several stages. Every
failure names the stage and the field.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel, ValidationError

from streamcalc.library import OperatorType, get_operator
from streamcalc.library.common.record_paths import reader, split_path
from streamcalc.library.expressions.conditions import compile_condition
from streamcalc.pipeline.errors import PipelineError, from_validation
from streamcalc.pipeline.model import OnRecordError, PipelineDef, StageDef
from streamcalc.records import Record

_INSTANCE_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class StageSettings:
    """The settings every stage may declare (EnOS "General" tab), compiled."""

    required: tuple[tuple[str, Callable[[Record], Any]], ...] = ()
    """(path, its reader) of each field a record must have, non-null."""
    precondition: Callable[[Record], bool] | None = None
    on_error: OnRecordError = "TO_ERROR"

    def refusal(self, record: Record) -> str | None:
        """Why `record` may not enter the stage, or None."""
        for path, get in self.required:
            if get(record) is None:
                return f"required field {path} is missing"
        if self.precondition is not None and not self.precondition(record):
            return "preconditions not met"
        return None

    @property
    def screens(self) -> bool:
        return bool(self.required) or self.precondition is not None


@dataclass(frozen=True)
class StageNode:
    name: str
    op: OperatorType[Any]
    config: BaseModel
    inputs: tuple[str, ...]
    """Upstream stage names, in lane order."""
    settings: StageSettings = StageSettings()


@dataclass(frozen=True)
class StageGraph:
    nodes: tuple[StageNode, ...]
    """In topological order: every node comes after its inputs."""
    origin_sources: frozenset[str] = frozenset()
    """Sources whose topic holds origin messages: an origin Normalizer reads them."""

    @property
    def sources(self) -> list[StageNode]:
        return [n for n in self.nodes if n.op.role == "source"]

    @property
    def destinations(self) -> list[StageNode]:
        return [n for n in self.nodes if n.op.role == "destination"]

    def node(self, name: str) -> StageNode | None:
        return next((n for n in self.nodes if n.name == name), None)


def parse_pipeline(doc: Mapping[str, Any] | PipelineDef) -> PipelineDef:
    if isinstance(doc, PipelineDef):
        return doc
    try:
        return PipelineDef.model_validate(doc)
    except ValidationError as e:
        raise from_validation(e, stages=doc.get("stages")) from e


def build_graph(doc: Mapping[str, Any] | PipelineDef) -> StageGraph:
    pipeline = parse_pipeline(doc)
    names = [s.instanceName for s in pipeline.stages]
    for name in names:
        if names.count(name) > 1:
            raise PipelineError("instanceName is used by more than one stage", name, "instanceName")
    typed = [(s, resolve_operator(s)) for s in pipeline.stages]
    configs = {s.instanceName: _validate_config(s, op) for s, op in typed}
    inputs = _wire(pipeline.stages)
    for s, op in typed:
        _check_role(s.instanceName, op, inputs[s.instanceName], inputs)
    order = _topological(names, inputs)
    by_name = {s.instanceName: op for s, op in typed}
    settings = {s.instanceName: _settings(s, op) for s, op in typed}
    graph = StageGraph(
        tuple(StageNode(n, by_name[n], configs[n], tuple(inputs[n]), settings[n]) for n in order),
        _origin_sources(inputs, by_name, configs),
    )
    if not graph.destinations:
        raise PipelineError("a pipeline needs at least one destination stage (e.g. EDHKafkaProducer)")
    read = {up for ups in inputs.values() for up in ups}
    for node in graph.nodes:
        if node.op.role != "destination" and node.name not in read:
            raise PipelineError(
                f"the output of {node.op.name} is not read by any stage", node.name, "outputLanes"
            )
    kept = {n.op.shared_state for n in graph.nodes if n.op.state_kind != "none"}
    for node in graph.nodes:
        if node.op.shared_state is not None and node.op.shared_state not in kept:
            raise PipelineError(
                f"{node.op.name} reads state that no stage of this pipeline keeps "
                f"({node.op.shared_state.name}; e.g. add a RecordCapturer)",
                node.name,
                "stageName",
            )
    return graph


def _origin_sources(
    inputs: dict[str, list[str]], ops: dict[str, OperatorType[Any]], configs: dict[str, BaseModel]
) -> frozenset[str]:
    """The sources read by origin Normalizers; each must be read by those alone."""
    reading = {name for name in inputs if (reads := ops[name].reads_origin) and reads(configs[name])}
    origin = {up for name in reading for up in inputs[name]}
    for name, ups in inputs.items():
        if name in reading:
            if any(ops[up].role != "source" for up in ups):
                raise PipelineError(
                    "an origin Normalizer reads origin messages straight from a source", name, "inputLanes"
                )
        elif origin.intersection(ups):
            raise PipelineError(
                "this stage reads a source of origin messages; read it after the origin Normalizer",
                name,
                "inputLanes",
            )
    return frozenset(origin)


def resolve_operator(stage: StageDef) -> OperatorType[Any]:
    """By stageName; when that is absent or unknown, by the instanceName prefix (`X_01` -> `X`)."""
    candidates = [stage.stageName] if stage.stageName else []
    candidates.append(_INSTANCE_SUFFIX.sub("", stage.instanceName))
    for name in candidates:
        op = get_operator(name)
        if op is not None:
            return op
    field = "stageName" if stage.stageName else "instanceName"
    raise PipelineError(
        f"unknown operator {' / '.join(dict.fromkeys(candidates))}", stage.instanceName, field
    )


def _validate_config(stage: StageDef, op: OperatorType[Any]) -> BaseModel:
    try:
        config: BaseModel = op.config.model_validate(stage.config)
    except ValidationError as e:
        raise from_validation(e, stage=stage.instanceName, within=["config"]) from e
    return config


def _settings(stage: StageDef, op: OperatorType[Any]) -> StageSettings:
    declared = stage.requiredFields or stage.preconditions != "*" or stage.onRecordError != "TO_ERROR"
    if op.role == "source" and declared:
        raise PipelineError(
            "a source takes no requiredFields, preconditions or onRecordError",
            stage.instanceName,
            "requiredFields",
        )
    required = []
    for field in stage.requiredFields:
        path = split_path(field)
        if path is None:
            raise PipelineError(
                f"{field!r} is not a record field or attr.<path>", stage.instanceName, "requiredFields"
            )
        required.append((field, reader(path)))
    return StageSettings(tuple(required), compile_condition(stage.preconditions), stage.onRecordError)


def _wire(stages: list[StageDef]) -> dict[str, list[str]]:
    laned = [s.inputLanes is not None or s.outputLanes is not None for s in stages]
    if not any(laned):
        return {s.instanceName: [stages[i - 1].instanceName] if i else [] for i, s in enumerate(stages)}
    if not all(laned):
        stage = stages[laned.index(False)].instanceName
        raise PipelineError("either every stage declares lanes or none does", stage, "inputLanes")
    producers: dict[str, str] = {}
    for s in stages:
        for lane in s.outputLanes or []:
            if lane in producers:
                raise PipelineError(
                    f"lane {lane!r} is output by {producers[lane]} already", s.instanceName, "outputLanes"
                )
            producers[lane] = s.instanceName
    inputs: dict[str, list[str]] = {}
    for s in stages:
        upstream = []
        lanes = s.inputLanes or []
        if len(set(lanes)) != len(lanes):
            raise PipelineError("an input lane is listed twice", s.instanceName, "inputLanes")
        for lane in lanes:
            if lane not in producers:
                raise PipelineError(f"no stage outputs lane {lane!r}", s.instanceName, "inputLanes")
            upstream.append(producers[lane])
        inputs[s.instanceName] = upstream
    return inputs


def _check_role(name: str, op: OperatorType[Any], upstream: list[str], inputs: dict[str, list[str]]) -> None:
    feeds = any(name in ups for ups in inputs.values())
    if op.role == "source" and upstream:
        raise PipelineError(f"{op.name} is a source and takes no input", name, "inputLanes")
    if op.role != "source" and not upstream:
        raise PipelineError(f"{op.name} needs an input", name, "inputLanes")
    if op.role == "destination" and feeds:
        raise PipelineError(f"{op.name} is a destination and has no output", name, "outputLanes")


def _topological(names: list[str], inputs: dict[str, list[str]]) -> list[str]:
    """The stages in list order, except that each comes after its inputs: of the stages whose
    inputs have run, the first listed runs next, so parallel branches run in list order."""
    position = {name: i for i, name in enumerate(names)}
    sorter = TopologicalSorter({name: inputs[name] for name in names})
    try:
        sorter.prepare()
    except CycleError as e:
        cycle: list[str] = e.args[1][:-1]  # each stage feeds the next, and the last the first
        i = min(range(len(cycle)), key=lambda k: position[cycle[k]])
        path = [*cycle[i:], *cycle[:i], cycle[i]]
        raise PipelineError(
            f"the stage graph has a cycle through this stage: {' -> '.join(path)}", cycle[i], "inputLanes"
        ) from None
    ready: list[int] = []
    order: list[str] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, position[name])
        name = names[heapq.heappop(ready)]
        order.append(name)
        sorter.done(name)
    return order
