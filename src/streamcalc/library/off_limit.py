"""OffLimitTagger: tag each record an outlier or not against a fixed interval, and emit it
renamed to the rule's output point (stateless).

A rule's `interval` is one string in the notation EnOS offers as "OpenClose" + "Min-Max":
`(x,y)`, `(x,y]`, `[x,y)`, `[x,y]`, `(-inf,y)`, `(-inf,y]`, `(x,+inf)`, `[x,+inf)` and
`(-inf,+inf)`. Infinity may be written `inf`, `infinity` or `∞` (any case), with an optional
`+` on the upper end and a required `-` on the lower end; an infinite end must be open. Bounds
are plain decimals (`2`, `-0.99`, `1e3`); an integer bound stays an int. Spaces around the
parts are ignored. The interval must not be empty: x < y, or x == y with both ends closed.

The record's value is tested with the interval's own ends; `attr.isOutlier` is True when it
lies outside. `attr.outlierAttr` carries the rule: `{minValue, maxValue, enableMinJudger,
enableMaxJudger, minIncluding, maxIncluding}`; an infinite end has value None and its judger
disabled (the `*Including` keys appear in EnOS's output example, beside the documented four).
Everything else of the record, including `quality`, is kept. A value that is not a number
(a string, a bool, null) goes to the error lane, once per record.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.point_rules import Output, PointRule, RuleIndex, UniqueOutputs
from streamcalc.library.common.values import is_number
from streamcalc.records import Record

OUTLIER_ATTR = "isOutlier"
OUTLIER_PARAMS_ATTR = "outlierAttr"

_INFINITY = re.compile(r"(?:inf|infinity|∞)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Interval:
    """A parsed interval; None bounds are infinite (and open)."""

    min: int | float | None
    max: int | float | None
    min_including: bool
    max_including: bool

    def contains(self, x: int | float) -> bool:
        lo, hi = self.min, self.max
        if lo is not None and (x < lo or (x == lo and not self.min_including)):
            return False
        return not (hi is not None and (x > hi or (x == hi and not self.max_including)))

    def params(self) -> dict[str, Any]:
        return {
            "minValue": self.min,
            "maxValue": self.max,
            "enableMinJudger": self.min is not None,
            "enableMaxJudger": self.max is not None,
            "minIncluding": self.min_including,
            "maxIncluding": self.max_including,
        }


def parse_interval(text: str) -> Interval:
    """`"[2,10)"` -> Interval; raises ValueError naming what is wrong."""
    s = text.strip()
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        raise ValueError(f"expected an interval such as '[2,10)' or '(-inf,5]', got {text!r}")
    parts = s[1:-1].split(",")
    if len(parts) != 2:
        raise ValueError(f"expected exactly one comma between the bounds, got {text!r}")
    lo = _bound(parts[0].strip(), True, text)
    hi = _bound(parts[1].strip(), False, text)
    min_including, max_including = s[0] == "[", s[-1] == "]"
    if (lo is None and min_including) or (hi is None and max_including):
        raise ValueError(f"an infinite end must be open, got {text!r}")
    empty = (
        lo is not None
        and hi is not None
        and (lo > hi or (lo == hi and not (min_including and max_including)))
    )
    if empty:
        raise ValueError(f"the interval {text!r} is empty")
    return Interval(lo, hi, min_including, max_including)


def _bound(part: str, lower: bool, text: str) -> int | float | None:
    """A finite bound, or None for infinity: `-inf` on the lower end, `inf`/`+inf` on the upper."""
    unsigned = part[1:] if part[:1] in "+-" else part
    if _INFINITY.fullmatch(unsigned):
        if part.startswith("-") != lower:
            end, allowed = ("lower", "-inf") if lower else ("upper", "+inf")
            raise ValueError(f"the {end} bound of {text!r} can only be {allowed} when infinite")
        return None
    if not _NUMBER.fullmatch(part):
        raise ValueError(f"bound {part!r} of {text!r} is not a number")
    value = int(part) if _INTEGER.fullmatch(part) else float(part)
    if not math.isfinite(value):
        raise ValueError(f"bound {part!r} of {text!r} is too large")
    return value


class OffLimitRule(PointRule):
    interval: str

    @field_validator("interval")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_interval(v)
        return v


class OffLimitTaggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[OffLimitRule], Field(min_length=1), UniqueOutputs]


class _Rule:
    __slots__ = ("interval", "output", "params")

    def __init__(self, rule: OffLimitRule) -> None:
        self.output = Output(rule.outputPoint)
        self.interval = parse_interval(rule.interval)
        self.params = self.interval.params()


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
