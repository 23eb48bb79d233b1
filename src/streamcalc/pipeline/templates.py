"""EnOS calculation templates: a small template config expanded into a native pipeline.

A template document is a pipelineJson `{"templateType": T, "name"?, "description"?,
"template": {...}}`; T is EnOS's templateType: 0 Time Window Aggregation, 3 Electric Energy by
Meter Reading, 4 by Average Power, 5 by Instant Power (1 is a native pipeline, 2 multi-point
merging is not supported). The template config names its source and destination topics and
lists policies. `expand_template` turns it into a chain of library operators whose stages
have readable names (`LastChangedRecordAppender_01`), so the stage-state API serves them:

- 0: PointSelector -> per distinct threshold: [RecordFilter_0k] -> FixedTimeWindowAggregator_0k.
- 3: PointSelector -> LastChangedRecordAppender -> CumulantDecomposer -> FixedTimeWindowAggregator
  (1-day sum, optional detail-interval sum).
- 4, 5: PointSelector -> LastRecordAppender -> PowerIntegrator -> FixedTimeWindowAggregator.

Every stateful stage is keyed by the policy's input point: between the appender and the
integrating stage records carry the internal id `{pointId}#previous`, then the input point again.
docs/templates.md gives the algorithms and the EnOS ambiguities resolved here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamcalc.library.common.durations import MAX_LATENCY_MINUTES, MS_PER_DAY, UNIT_MS, WindowUnit
from streamcalc.library.common.energy import Method, Scale, Slope
from streamcalc.library.common.intervals import Interval, IntervalText, parse_interval
from streamcalc.library.common.point_rules import UniqueOutputs, check_rule_points
from streamcalc.library.common.points import PointRef
from streamcalc.library.common.topics import TopicName
from streamcalc.pipeline.errors import PipelineError, from_validation
from streamcalc.pipeline.model import PipelineDef

ORIGIN_TEMPLATE = 1
"""templateType of a native (operator) pipeline."""
TIME_WINDOW_AGGREGATION, MULTI_POINT_MERGING, METER_READING, AVERAGE_POWER, INSTANT_POWER = 0, 2, 3, 4, 5

M = TypeVar("M", bound=BaseModel)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Topics(_Config):
    sourceTopic: TopicName
    destinationTopic: TopicName


# --- 0: Time Window Aggregation ---------------------------------------------------------------


class WindowPolicy(_Config):
    inputPoint: PointRef
    threshold: IntervalText | None = None
    """Records whose value lies outside are dropped before aggregation."""
    interpolation: Literal["Ignore"] = "Ignore"
    """The only interpolation EnOS offers for this template: out-of-threshold data is dropped."""
    aggregator: Literal["max", "min", "avg", "sum", "count"]
    windowSize: int = Field(ge=1)
    windowUnit: WindowUnit
    outputPoint: PointRef

    @model_validator(mode="after")
    def _same_model(self) -> WindowPolicy:
        check_rule_points(self.inputPoint, self.outputPoint)
        return self


class TimeWindowAggregationTemplate(_Topics):
    latencyMinutes: int = Field(default=0, ge=0, le=MAX_LATENCY_MINUTES)
    policies: Annotated[list[WindowPolicy], Field(min_length=1), UniqueOutputs]


# --- 3, 4, 5: electric energy -----------------------------------------------------------------


class DetailOutput(_Config):
    """Energy per fixed interval, besides the daily total."""

    outputPoint: PointRef
    windowSize: int = Field(ge=1)
    windowUnit: WindowUnit

    @model_validator(mode="after")
    def _divides_a_day(self) -> DetailOutput:
        if MS_PER_DAY % (self.windowSize * UNIT_MS[self.windowUnit]):
            raise ValueError(
                "the interval must divide a day (e.g. 15 minute, 1 hour), so days hold whole intervals"
            )
        return self


class EnergyPolicy(_Config):
    inputPoint: PointRef
    dailyOutputPoint: PointRef
    detailOutput: DetailOutput | None = None

    @property
    def outputs(self) -> list[str]:
        detail = [] if self.detailOutput is None else [self.detailOutput.outputPoint]
        return [self.dailyOutputPoint, *detail]

    @model_validator(mode="after")
    def _points(self) -> EnergyPolicy:
        for output in self.outputs:
            check_rule_points(self.inputPoint, output)
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError("dailyOutputPoint and detailOutput.outputPoint must differ")
        return self


class MeterPolicy(EnergyPolicy):
    slopeThreshold: Slope
    """Per hour, on the raw reading: an interval outside [min, max] is dropped."""
    scale: Scale


class PowerPolicy(EnergyPolicy):
    threshold: IntervalText | None = None
    interpolation: Literal["LastValue", "Ignore"] = "Ignore"
    """Out-of-threshold power: LastValue integrates across it with the last valid power, Ignore
    drops the intervals on both sides of it."""


class EnergyTemplate(_Topics):
    policies: Sequence[EnergyPolicy]

    @model_validator(mode="after")
    def _distinct_points(self) -> EnergyTemplate:
        inputs = [p.inputPoint for p in self.policies]
        outputs = [o for p in self.policies for o in p.outputs]
        for kind, points in (("inputPoint", inputs), ("output point", outputs)):
            twice = next((x for i, x in enumerate(points) if x in points[:i]), None)
            if twice is not None:
                raise ValueError(f"{twice} is the {kind} of more than one policy")
        internal = {_previous(i) for i in inputs}
        clash = next((x for x in (*inputs, *outputs) if x in internal), None)
        if clash is not None:
            raise ValueError(f"{clash} is an internal point id of this template; rename that point")
        return self


class MeterReadingTemplate(EnergyTemplate):
    policies: Annotated[list[MeterPolicy], Field(min_length=1)]


class PowerTemplate(EnergyTemplate):
    policies: Annotated[list[PowerPolicy], Field(min_length=1)]


# --- the document -----------------------------------------------------------------------------


class TemplateDocument(_Config):
    templateType: int
    name: str | None = None
    description: str | None = None
    template: dict[str, Any]


_CONFIGS: dict[int, type[_Topics]] = {
    TIME_WINDOW_AGGREGATION: TimeWindowAggregationTemplate,
    METER_READING: MeterReadingTemplate,
    AVERAGE_POWER: PowerTemplate,
    INSTANT_POWER: PowerTemplate,
}


def is_template_document(doc: Mapping[str, Any]) -> bool:
    """A pipelineJson naming a calculation template: a templateType other than 1 (native)."""
    kind = doc.get("templateType", ORIGIN_TEMPLATE)
    return not (type(kind) is int and kind == ORIGIN_TEMPLATE)


def expand_template(doc: Mapping[str, Any]) -> PipelineDef:
    """The native pipeline of a template document; a PipelineError names the bad field."""
    kind = doc.get("templateType")
    if type(kind) is int and kind == MULTI_POINT_MERGING:
        raise PipelineError("multi-point merging (templateType 2) is not supported", None, "templateType")
    if type(kind) is not int or kind not in _CONFIGS:
        raise PipelineError(f"expected 0, 1, 3, 4 or 5, got {kind!r}", None, "templateType")
    envelope = _validated(TemplateDocument, doc)
    template = _validated(_CONFIGS[kind], envelope.template, "template")
    if isinstance(template, TimeWindowAggregationTemplate):
        stages = _time_window_stages(template)
    elif isinstance(template, MeterReadingTemplate):
        stages = _meter_stages(template)
    else:
        assert isinstance(template, PowerTemplate)
        stages = _power_stages(template, "average" if kind == AVERAGE_POWER else "instant")
    named = {
        k: v for k, v in (("name", envelope.name), ("description", envelope.description)) if v is not None
    }
    return PipelineDef.model_validate({**named, "stages": stages})


def _validated(model: type[M], doc: Mapping[str, Any], *within: str) -> M:
    """`doc` validated; an error names its field below `within`, where `doc` sits."""
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise from_validation(e, within=within) from e


class _Stages:
    """Stage definitions wired by lanes, each `{Operator}_{NN}`, from a source to a destination."""

    def __init__(self, source_topic: str) -> None:
        self.stages: list[dict[str, Any]] = []
        self.source = self.add("EDHKafkaConsumer", {"topic": source_topic}, [])

    def add(self, op: str, config: dict[str, Any], after: Sequence[str], number: int = 1) -> str:
        name = f"{op}_{number:02d}"
        self.stages.append(
            {
                "instanceName": name,
                "stageName": op,
                "config": config,
                "inputLanes": [_lane(up) for up in after],
                "outputLanes": [_lane(name)],
            }
        )
        return name

    def finish(self, destination_topic: str, after: Sequence[str]) -> list[dict[str, Any]]:
        self.add("EDHKafkaProducer", {"topic": destination_topic}, after)
        self.stages[-1]["outputLanes"] = []
        return self.stages


def _lane(stage: str) -> str:
    return f"{stage}OutputLane"


def _previous(ref: str) -> str:
    """The internal point the appender renames `ref` to: its records carry the previous one."""
    return f"{ref}#previous"


def _interval(threshold: str | None) -> Interval | None:
    """The threshold, or None when it bounds nothing (absent or `(-inf,+inf)`)."""
    interval = None if threshold is None else parse_interval(threshold)
    return None if interval is None or (interval.min is None and interval.max is None) else interval


def _bounds(interval: Interval) -> list[tuple[str, int | float]]:
    """The interval as (operator, bound) tests on the value that must all hold."""
    tests = []
    if interval.min is not None:
        tests.append((">=" if interval.min_including else ">", interval.min))
    if interval.max is not None:
        tests.append(("<=" if interval.max_including else "<", interval.max))
    return tests


def _time_window_stages(t: TimeWindowAggregationTemplate) -> list[dict[str, Any]]:
    """Policies with the same threshold share a branch: one filter, one aggregator."""
    s = _Stages(t.sourceTopic)
    selected = s.add(
        "PointSelector", {"points": list(dict.fromkeys(p.inputPoint for p in t.policies))}, [s.source]
    )
    branches: dict[Interval | None, list[WindowPolicy]] = {}
    for p in t.policies:
        branches.setdefault(_interval(p.threshold), []).append(p)
    windows = []
    for k, (interval, policies) in enumerate(branches.items(), 1):
        upstream = selected
        if interval is not None:
            expression = " && ".join(f"record.value {op} {bound!r}" for op, bound in _bounds(interval))
            upstream = s.add("RecordFilter", {"filters": [{"expression": expression}]}, [upstream], k)
        rules = [
            p.model_dump(include={"inputPoint", "windowSize", "windowUnit", "aggregator", "outputPoint"})
            for p in policies
        ]
        config = {"latencyMinutes": t.latencyMinutes, "rules": rules}
        windows.append(s.add("FixedTimeWindowAggregator", config, [upstream], k))
    return s.finish(t.destinationTopic, windows)


def _meter_stages(t: MeterReadingTemplate) -> list[dict[str, Any]]:
    def previous(p: MeterPolicy) -> dict[str, Any]:
        return {"inputPoint": p.inputPoint, "outputPoint": _previous(p.inputPoint)}

    def delta(p: MeterPolicy) -> dict[str, Any]:
        return {
            "inputPoint": _previous(p.inputPoint),
            "outputPoint": p.inputPoint,
            "scale": p.scale.model_dump(),
            "slope": p.slopeThreshold.model_dump(),
        }

    return _energy_stages(
        t,
        ("LastChangedRecordAppender", {"onlyNewer": True, "rules": [previous(p) for p in t.policies]}),
        (
            "CumulantDecomposer",
            {"lastRecordFrom": "LastChangedRecordAppender", "rules": [delta(p) for p in t.policies]},
        ),
    )


def _power_stages(t: PowerTemplate, method: Method) -> list[dict[str, Any]]:
    def previous(p: PowerPolicy) -> dict[str, Any]:
        interval = _interval(p.threshold)
        condition: Any = "*"
        if p.interpolation == "LastValue" and interval is not None:  # keep only valid samples
            condition = [{"op": op, "value": bound} for op, bound in _bounds(interval)]
        return {"inputPoint": p.inputPoint, "outputPoint": _previous(p.inputPoint), "condition": condition}

    def energy(p: PowerPolicy) -> dict[str, Any]:
        rule = {"inputPoint": _previous(p.inputPoint), "outputPoint": p.inputPoint, "method": method}
        return rule if _interval(p.threshold) is None else {**rule, "threshold": p.threshold}

    return _energy_stages(
        t,
        ("LastRecordAppender", {"onlyNewer": True, "rules": [previous(p) for p in t.policies]}),
        ("PowerIntegrator", {"rules": [energy(p) for p in t.policies]}),
    )


def _energy_stages(
    t: EnergyTemplate, baseline: tuple[str, dict[str, Any]], interval: tuple[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The previous reading attached (never an older one: `onlyNewer`), the interval's energy
    computed and renamed back to the input point, then summed per day and detail interval."""
    s = _Stages(t.sourceTopic)
    stage = s.add("PointSelector", {"points": [p.inputPoint for p in t.policies]}, [s.source])
    stage = s.add(*baseline, [stage])
    stage = s.add(*interval, [stage])
    sums = [_sum(p.inputPoint, p.dailyOutputPoint, 1, "day") for p in t.policies]
    sums += [
        _sum(p.inputPoint, d.outputPoint, d.windowSize, d.windowUnit)
        for p in t.policies
        if (d := p.detailOutput) is not None
    ]
    stage = s.add("FixedTimeWindowAggregator", {"rules": sums}, [stage])
    return s.finish(t.destinationTopic, [stage])


def _sum(input_point: str, output_point: str, size: int, unit: WindowUnit) -> dict[str, Any]:
    return {
        "inputPoint": input_point,
        "windowSize": size,
        "windowUnit": unit,
        "aggregator": "sum",
        "outputPoint": output_point,
    }


__all__ = [
    "ORIGIN_TEMPLATE",
    "MeterReadingTemplate",
    "PowerTemplate",
    "TemplateDocument",
    "TimeWindowAggregationTemplate",
    "expand_template",
    "is_template_document",
]
