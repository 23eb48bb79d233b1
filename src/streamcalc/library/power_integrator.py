"""PowerIntegrator: turn power samples into the energy of the interval since the previous sample,
and emit it renamed to the rule's output point (stateless).

The previous sample is the record a LastRecordAppender upstream attached under
`attr.lastRecordAppender` (so the rule's inputPoint is that appender's outputPoint). For a
sample P2 at t2 with an attached previous sample P1 at t1, and h = (t2 - t1) in hours:

    instant:  energy = P1 * h               (P1 holds until the next sample)
    average:  energy = (P1 + P2) / 2 * h    (EnOS's simplification for average power)

Power in kW gives kWh (W gives Wh). With a `threshold` (the interval notation of
OffLimitTagger), an interval counts only when both of its samples lie inside it. What an
out-of-threshold sample does to its neighbours is the appender's choice, so this operator
needs no state: with condition `*` every sample becomes the next one's previous, and an
out-of-threshold sample voids the intervals on both sides of it (EnOS's interpolation Ignore);
with a condition that holds only inside the threshold the previous sample is the last valid
one, and the next valid sample integrates across the gap with that power (LastValue).

Nothing is emitted without a previous sample, when t2 <= t1 (a duplicate or out-of-order
sample), when a sample lies outside the threshold, or when the previous value is not a number
(it went to the error lane when it arrived). A value that is not a finite number goes to the
error lane. The output keeps the record's attr and adds `attr.powerIntegrator = {method,
previousValue, previousTime, hours}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.attrs import LAST_RECORD_ATTR, POWER_ATTR
from streamcalc.library.common.durations import MS_PER_HOUR
from streamcalc.library.common.energy import Method
from streamcalc.library.common.intervals import IntervalText, parse_interval
from streamcalc.library.common.point_rules import (
    Output,
    PointRule,
    RuleIndex,
    UniqueOutputs,
    with_attr,
)
from streamcalc.library.common.values import is_finite_number
from streamcalc.records import Record


class PowerRule(PointRule):
    method: Method
    threshold: IntervalText | None = None


class PowerIntegratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[PowerRule], Field(min_length=1), UniqueOutputs]


class _Rule:
    __slots__ = ("average", "inside", "method", "output")

    def __init__(self, rule: PowerRule) -> None:
        self.output = Output(rule.outputPoint)
        self.method = rule.method
        self.average = rule.method == "average"
        self.inside: Callable[[float], bool] | None = (
            None if rule.threshold is None else parse_interval(rule.threshold).contains
        )


class PowerIntegrator:
    def __init__(self, config: PowerIntegratorConfig) -> None:
        self._index = RuleIndex((r.inputPoint, _Rule(r)) for r in config.rules)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        out: list[Record] = []
        for record, rules in self._index.matched(batch):
            power = record.value
            if not is_finite_number(power):
                ctx.reject(record, f"power {power!r} of {record.pointId} is not a finite number")
                continue
            previous = record.attr.get(LAST_RECORD_ATTR)
            if not isinstance(previous, dict):
                continue
            p1, t1 = previous.get("value"), previous.get("time")
            if not is_finite_number(p1) or type(t1) is not int or record.time <= t1:
                continue
            hours = (record.time - t1) / MS_PER_HOUR
            for rule in rules:
                inside = rule.inside
                if inside is not None and not (inside(p1) and inside(power)):
                    continue
                energy = (p1 + power) / 2 * hours if rule.average else p1 * hours
                detail = {"method": rule.method, "previousValue": p1, "previousTime": t1, "hours": hours}
                out.append(rule.output.emit(record, value=energy, attr=with_attr(record, POWER_ATTR, detail)))
        return out


POWER_INTEGRATOR = OperatorType("PowerIntegrator", PowerIntegratorConfig, PowerIntegrator)
