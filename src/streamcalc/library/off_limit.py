"""OffLimitTagger: tag each record an outlier or not against a fixed interval, and emit it
renamed to the rule's output point (stateless).

A rule's `interval` is one string in the notation EnOS offers, such as `[2,10)` or `(-inf,5]`
(`common.intervals` has it all).

The record's value is tested with the interval's own ends; `attr.isOutlier` is True when it
lies outside. `attr.outlierAttr` carries the rule: `{minValue, maxValue, enableMinJudger,
enableMaxJudger, minIncluding, maxIncluding}`; an infinite end has value None and its judger
disabled (the `*Including` keys appear in EnOS's output example, beside the documented four).
Everything else of the record, including `quality`, is kept. A value that is not a number
(a string, a bool, null) goes to the error lane, once per record.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.attrs import OUTLIER_ATTR, OUTLIER_PARAMS_ATTR
from streamcalc.library.common.intervals import Interval, IntervalText, parse_interval
from streamcalc.library.common.point_rules import Output, PointRule, RuleIndex, UniqueOutputs
from streamcalc.library.common.values import is_number
from streamcalc.records import Record


class OffLimitRule(PointRule):
    interval: IntervalText


class OffLimitTaggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[OffLimitRule], Field(min_length=1), UniqueOutputs]


def _params(interval: Interval) -> dict[str, Any]:
    """`attr.outlierAttr`: the rule's interval as EnOS shows it."""
    return {
        "minValue": interval.min,
        "maxValue": interval.max,
        "enableMinJudger": interval.min is not None,
        "enableMaxJudger": interval.max is not None,
        "minIncluding": interval.min_including,
        "maxIncluding": interval.max_including,
    }


class _Rule:
    __slots__ = ("interval", "output", "params")

    def __init__(self, rule: OffLimitRule) -> None:
        self.output = Output(rule.outputPoint)
        self.interval = parse_interval(rule.interval)
        self.params = _params(self.interval)


class OffLimitTagger:
    def __init__(self, config: OffLimitTaggerConfig) -> None:
        self._index = RuleIndex((r.inputPoint, _Rule(r)) for r in config.rules)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        out: list[Record] = []
        for record, rules in self._index.matched(batch):
            value = record.value
            if not is_number(value):
                ctx.reject(record, f"value {value!r} of {record.pointId} is not a number")
                continue
            for rule in rules:
                attr = dict(record.attr)
                attr[OUTLIER_ATTR] = not rule.interval.contains(value)
                attr[OUTLIER_PARAMS_ATTR] = dict(rule.params)
                out.append(rule.output.emit(record, attr=attr))
        return out


OFF_LIMIT_TAGGER = OperatorType("OffLimitTagger", OffLimitTaggerConfig, OffLimitTagger)
