"""CumulantDecomposer: turn a cumulative meter reading into the energy of the interval since the
previous reading, and emit it renamed to the rule's output point (stateless).

It reads the previous reading from `attr.lastRecordAppender`, which a LastRecordAppender
upstream attaches (so the rule's inputPoint is that appender's outputPoint), or, with
`lastRecordFrom: "LastChangedRecordAppender"`, from the `lastChangedRecord` that appender
attaches: a run of equal readings then leaves the interval start at the last change, as EnOS's
meter-reading algorithm wants for the slope. For a record with value v at time t and an
attached last record (v0, t0):

    delta = v - v0        slope = delta / ((t - t0) in hours)        output value = delta * scale

The output is emitted only when min <= slope <= max (both ends closed); otherwise the interval
is dropped and nothing is emitted. Because min >= 0, a meter reset or rollover (negative
delta) contributes nothing, as in EnOS's meter-reading algorithm; re-baselining on the new
reading is the appender's job (condition `*` stores every reading). The slope is taken on the
raw reading, before scaling. Nothing is emitted either when no last record is attached (the
first reading of a key, as EnOS's example shows) or when t <= t0 (slope undefined: a duplicate
or an out-of-order reading). A value, or an attached last value or time, that is not a number
goes to the error lane.

Scale: `{"type": "fixed", "value": > 0}` or `{"type": "attr", "path": "attr.a.b"}`, read from
the record's own attr; a missing or invalid attribute (not a number > 0) gives scale 1, as
EnOS does for a bad model attribute. Slope: `{"type": "fixed", "min": >= 0, "max": > min}` or
`{"type": "attr", "path": ...}` giving max with min 0; a missing or invalid attribute (not a
number >= 0) leaves the slope unlimited (maxSlope None). EnOS's binding to a model attribute
(`{modelId}::{attrId}`) needs an asset attribute service we do not have, so it is refused.

The output keeps the record's attr (with `lastRecordAppender`) and adds
`attr.deltaCalculator = {scale, slope, minSlope, maxSlope, delta}` - the key and the first four
fields are those of EnOS's output example (which shows numbers as strings; ours are numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.attrs import CUMULANT_ATTR, LAST_CHANGED_ATTR, LAST_RECORD_ATTR
from streamcalc.library.common.durations import MS_PER_HOUR
from streamcalc.library.common.energy import AttrScale, AttrSlope, FixedScale, FixedSlope, Scale, Slope
from streamcalc.library.common.point_rules import (
    Output,
    PointRule,
    RuleIndex,
    UniqueOutputs,
    with_attr,
)
from streamcalc.library.common.record_paths import getter
from streamcalc.library.common.values import is_finite_number
from streamcalc.records import Record

Number = int | float


class CumulantRule(PointRule):
    scale: Scale
    slope: Slope


class CumulantDecomposerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[CumulantRule], Field(min_length=1), UniqueOutputs]
    lastRecordFrom: Literal["LastRecordAppender", "LastChangedRecordAppender"] = "LastRecordAppender"
    """The upstream appender whose attachment holds the previous reading."""


def _scale_of(spec: FixedScale | AttrScale) -> Callable[[Record], Number]:
    if isinstance(spec, FixedScale):
        fixed = spec.value
        return lambda _: fixed
    get = getter(spec.path)

    def scale(record: Record) -> Number:
        x = get(record)
        return x if is_finite_number(x) and x > 0 else 1

    return scale


def _slope_of(spec: FixedSlope | AttrSlope) -> Callable[[Record], tuple[Number, Number | None]]:
    if isinstance(spec, FixedSlope):
        bounds = (spec.min, spec.max)
        return lambda _: bounds
    get = getter(spec.path)

    def slope(record: Record) -> tuple[Number, Number | None]:
        x = get(record)
        return (0, x if is_finite_number(x) and x >= 0 else None)

    return slope


class _Rule:
    __slots__ = ("output", "scale", "slope")

    def __init__(self, rule: CumulantRule) -> None:
        self.output = Output(rule.outputPoint)
        self.scale = _scale_of(rule.scale)
        self.slope = _slope_of(rule.slope)


def _last_record(record: Record) -> object:
    return record.attr.get(LAST_RECORD_ATTR)


def _last_changed_record(record: Record) -> object:
    attached = record.attr.get(LAST_CHANGED_ATTR)
    return attached.get("lastChangedRecord") if isinstance(attached, dict) else None


class CumulantDecomposer:
    def __init__(self, config: CumulantDecomposerConfig) -> None:
        self._index = RuleIndex((r.inputPoint, _Rule(r)) for r in config.rules)
        self._previous = (
            _last_record if config.lastRecordFrom == "LastRecordAppender" else _last_changed_record
        )

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        previous = self._previous
        out: list[Record] = []
        for record, rules in self._index.matched(batch):
            last = previous(record)
            if not isinstance(last, dict):
                continue
            interval = _interval(record, last)
            if isinstance(interval, str):
                ctx.reject(record, interval)
                continue
            delta, dt_ms = interval
            if dt_ms <= 0:
                continue
            slope = delta * MS_PER_HOUR / dt_ms
            for rule in rules:
                low, high = rule.slope(record)
                if slope < low or (high is not None and slope > high):
                    continue
                scale = rule.scale(record)
                detail = {"scale": scale, "slope": slope, "minSlope": low, "maxSlope": high, "delta": delta}
                out.append(
                    rule.output.emit(
                        record, value=delta * scale, attr=with_attr(record, CUMULANT_ATTR, detail)
                    )
                )
        return out


def _interval(record: Record, last: dict[str, Any]) -> tuple[Number, int] | str:
    """(delta, dt in ms) from the attached last record, or why it cannot be computed."""
    value, last_value, last_time = record.value, last.get("value"), last.get("time")
    if not is_finite_number(value):
        return f"value {value!r} of {record.pointId} is not a number"
    if not is_finite_number(last_value):
        return f"the attached last record's value {last_value!r} is not a number"
    if type(last_time) is not int:
        return f"the attached last record's time {last_time!r} is not an epoch in ms"
    return value - last_value, record.time - last_time


CUMULANT_DECOMPOSER = OperatorType("CumulantDecomposer", CumulantDecomposerConfig, CumulantDecomposer)
