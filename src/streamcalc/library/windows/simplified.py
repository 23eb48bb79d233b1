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

from collections.abc import Mapping
from typing import Annotated

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.keys import StateKey
from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.durations import UNIT_MS, WindowUnit
from streamcalc.library.common.point_rules import RuleIndex, StateKeys, UniqueOutputs, check_rule_points
from streamcalc.library.common.points import PointRef, split_ref
from streamcalc.records import Record

_replace = msgspec.structs.replace


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
    __slots__ = ("model_id", "point_id", "ref", "window_ms")

    def __init__(self, rule: SumRule) -> None:
        self.ref = rule.outputPoint
        self.model_id, self.point_id = split_ref(rule.outputPoint)
        self.window_ms = rule.window_ms


class SimplifiedTimeWindowAggregator:
    def __init__(self, config: SimplifiedWindowConfig) -> None:
        rules = [(rule.inputPoint, _Rule(rule)) for rule in config.rules]
        self._index = RuleIndex(rules)
        self._by_output = {r.ref: r for _, r in rules}
        self._keys = StateKeys(split_ref(rule.inputPoint)[1] for rule in config.rules)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        """The hot loop of `make bench`, column-wise: the records some rule reads, their
        interned state keys (see `StateKeys`) and the working set (`edit`: every key read
        is written back; a key's first state is saved). A key's state is recognised as aligned
        with its single rule by identity (see `_align`); the full check runs once per key and
        batch only when that fails or for several rules. Outputs are derived without
        validation."""
        records, rules_of = self._index.select(batch)
        if not records:
            return []
        keys = self._keys.of(records)
        working: Mapping[StateKey, SumState | None] = ctx.state.edit(keys)
        save = ctx.state.save
        by_output = self._by_output
        aligned: dict[StateKey, list[_Rule]] = {}  # keys aligned the slow way in this batch
        out: list[Record] = []
        append = out.append
        for record, rules, key in zip(records, rules_of, keys, strict=True):
            value = record.value
            # values.is_number, inlined: a call per record costs this loop a few per cent
            if type(value) is not float and type(value) is not int:
                ctx.reject(record, f"value {value!r} of {record.pointId} is not a number")
                continue
            state = working[key]
            if state is None or (
                (len(rules) != 1 or len(state.windows) != 1 or state.windows[0].output is not rules[0].ref)
                and aligned.get(key) is not rules
            ):
                if state is None:
                    state = SumState(())
                    save({key: state})
                _align(state, rules)
                aligned[key] = rules
            t = record.time
            # Outputs carry no dq and an empty attr: the input's own when it is empty, saving a
            # dict per output (attr dicts are never changed in place, as records fan out).
            base = record if not record.attr and record.dq is None else _replace(record, dq=None, attr={})
            for window in state.windows:  # one per rule, in rule order
                rule = by_output[window.output]
                start = t - t % rule.window_ms
                if start > window.start:
                    window.start = start
                    window.end = start + rule.window_ms
                    window.sum = value
                    window.count = 1
                elif start == window.start:
                    window.sum += value
                    window.count += 1
                else:
                    ctx.reject(record, f"late record for {rule.ref}: its window closed before {t}")
                    continue
                append(
                    _replace(base, modelId=rule.model_id, pointId=rule.point_id, time=start, value=window.sum)
                )
        return out


def _align(state: SumState, rules: list[_Rule]) -> None:
    """Give the key's state one window per rule, in rule order: a window kept from before the
    rules changed (a re-released pipeline, or a key seen under another model) stays with its
    output point; new rules start empty."""
    kept = {w.output: w for w in state.windows}
    windows = []
    for r in rules:
        w = kept.get(r.ref) or Window(r.ref, -1, -1, 0, 0)
        w.output = r.ref  # the rule's own object, by which `process` knows an aligned state
        windows.append(w)
    state.windows = tuple(windows)


class WindowItem(msgspec.Struct, gc=False):
    """An open window as Get Stage State shows it."""

    outputPoint: str
    startTime: int
    endTime: int
    sum: int | float
    count: int


class StateItem(msgspec.Struct, gc=False):
    """A key's Get Stage State item (kind `window`)."""

    assetId: str
    pointId: str
    windows: list[WindowItem]


def state_item(asset_id: str, point_id: str, state: SumState) -> StateItem:
    """Get Stage State item (kind `window`): the open window of each rule with its partial sum."""
    windows = [WindowItem(w.output, w.start, w.end, w.sum, w.count) for w in state.windows if w.count]
    return StateItem(asset_id, point_id, windows)


SIMPLIFIED_TIME_WINDOW_AGGREGATOR = OperatorType(
    "SimplifiedTimeWindowAggregator",
    SimplifiedWindowConfig,
    SimplifiedTimeWindowAggregator,
    state_kind="window",
    state_type=SumState,
    state_view=state_item,
)
