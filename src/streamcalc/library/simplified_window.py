"""SimplifiedTimeWindowAggregator: a running sum per (asset, point) and window.

For every arriving record of a rule's input point the value is added to the key's current
window (epoch-aligned, UTC) and the running sum is emitted as the rule's output point, at
the window start. A record of a later window starts a new one; a record of an earlier,
already replaced window is late and goes to the error lane (never silently merged into the
wrong window). Outputs carry no `attr` (the window end is time + size; the input's attr
belongs to the input). State per key: the current window of each rule reading that point, in rule
order (a key's rules are fixed by its point and model, so the list lines up with them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.library.base import OperatorType, StageContext, StateKey
from streamcalc.library.point_rules import Output, RuleIndex, UniqueOutputs, check_rule_points
from streamcalc.library.points import PointRef
from streamcalc.library.registry import register_operator
from streamcalc.records import Record

WindowUnit = Literal["second", "minute", "hour", "day"]
UNIT_MS: dict[WindowUnit, int] = {"second": 1_000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


class SumRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputPoint: PointRef
    windowSize: int = Field(ge=1)
    windowUnit: WindowUnit
    outputPoint: PointRef

    @model_validator(mode="after")
    def _same_model(self) -> SumRule:
        check_rule_points(self.inputPoint, self.outputPoint)
        return self

    @property
    def window_ms(self) -> int:
        return self.windowSize * UNIT_MS[self.windowUnit]


class SimplifiedWindowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[SumRule], Field(min_length=1), UniqueOutputs]


class Window(msgspec.Struct, array_like=True, gc=False):
    output: str
    """The rule's outputPoint."""
    start: int
    end: int
    sum: int | float
    count: int


class SumState(msgspec.Struct, array_like=True, gc=False):
    """The current window of each rule reading the key's point. Untracked by the cyclic GC:
    a worker caches one per key, and no cycle can form through it."""

    windows: tuple[Window, ...]


class _Rule:
    __slots__ = ("output", "window_ms")

    def __init__(self, rule: SumRule) -> None:
        self.output = Output(rule.outputPoint)
        self.window_ms = rule.window_ms


class SimplifiedTimeWindowAggregator:
    def __init__(self, config: SimplifiedWindowConfig) -> None:
        self._index = RuleIndex((rule.inputPoint, _Rule(rule)) for rule in config.rules)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        rules_for = self._index.rules_for
        matched = [(r, rules) for r in batch if (rules := rules_for(r))]
        working: dict[StateKey, SumState | None] = ctx.state.load(
            {(r.assetId, r.pointId) for r, _ in matched}
        )
        changed: dict[StateKey, SumState | None] = {}
        out: list[Record] = []
        for record, rules in matched:
            value = record.value
            if type(value) is not float and type(value) is not int:
                ctx.reject(record, f"value {value!r} of {record.pointId} is not a number")
                continue
            key = (record.assetId, record.pointId)
            current = working[key]
            if (
                current is None
                or len(current.windows) != len(rules)
                or any(w.output != r.output.ref for w, r in zip(current.windows, rules, strict=False))
            ):
                current = working[key] = _aligned(current, rules)
            changed[key] = current
            for rule, window in zip(rules, current.windows, strict=True):
                t = record.time
                start = t - t % rule.window_ms
                if start > window.start:
                    window.start, window.end, window.sum, window.count = (
                        start,
                        start + rule.window_ms,
                        value,
                        1,
                    )
                elif start == window.start:
                    window.sum += value
                    window.count += 1
                else:
                    ctx.reject(record, f"late record for {rule.output.ref}: its window closed before {t}")
                    continue
                out.append(rule.output.emit(record, time=window.start, value=window.sum, dq=None, attr={}))
        ctx.state.save(changed)
        return out


def _aligned(state: SumState | None, rules: list[_Rule]) -> SumState:
    """One window per rule, in rule order: a window kept from before the rules changed (a
    re-released pipeline) stays with its output point; new rules start empty."""
    kept = {w.output: w for w in state.windows} if state is not None else {}
    return SumState(tuple(kept.get(r.output.ref) or Window(r.output.ref, -1, -1, 0, 0) for r in rules))


def state_item(asset_id: str, point_id: str, state: SumState) -> dict[str, Any]:
    """Get Stage State item (kind `window`): the open window of each rule with its partial sum."""
    windows = [
        {"outputPoint": w.output, "startTime": w.start, "endTime": w.end, "sum": w.sum, "count": w.count}
        for w in state.windows
        if w.count
    ]
    return {"assetId": asset_id, "pointId": point_id, "windows": windows}


SIMPLIFIED_TIME_WINDOW_AGGREGATOR = register_operator(
    OperatorType(
        "SimplifiedTimeWindowAggregator",
        SimplifiedWindowConfig,
        SimplifiedTimeWindowAggregator,
        state_kind="window",
        state_type=SumState,
        state_view=state_item,
    )
)
