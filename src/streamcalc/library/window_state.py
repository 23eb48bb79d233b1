"""The event-time window core shared by the fixed and sliding window aggregators.

Semantics (the operator modules and docs/operators/*TimeWindowAggregator.md tell the same):
windows of a rule are `[s, s + size)` with `s` a multiple of the slide (the size for a fixed
window), counted from the epoch in UTC. Event time advances per key (assetId, pointId): it is
the largest `time` the key has accepted. With `L` the allowed lateness, a window is *open*
while event time < end, *fired* once event time >= end (the `onTime` output) and *expired*
once event time >= end + L, when it leaves the state. A record is added to each of its windows
that has not expired; a fired window it updates is re-emitted at once (`late`). A record
none of whose windows is left goes to the error lane. Nothing here reads a clock.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, Literal

import msgspec

from streamcalc.library.base import StageContext, StateKey
from streamcalc.library.point_rules import Output, RuleIndex
from streamcalc.records import Record

Aggregator = Literal["max", "min", "avg", "count", "sum", "first", "last"]
CalMode = Literal["early", "onTime", "late"]
Number = int | float


class OpenWindow(msgspec.Struct, array_like=True, gc=False):
    """One window's partial aggregates; every aggregator's, so a view can show them all."""

    start: int
    end: int
    count: int
    sum: Number
    min: Number
    max: Number
    first: Number
    first_time: int
    """Event time of `first`: the earliest record (ties: the one that arrived first)."""
    last: Number
    last_time: int
    """Event time of `last`: the latest record (ties: the one that arrived last)."""
    emitted: Number | None = None
    """The value last emitted for this window (None before any output)."""


class RuleWindows(msgspec.Struct, array_like=True, gc=False):
    """The live windows of one rule reading the key, sorted by start."""

    output: str
    aggregator: str
    size: int
    slide: int
    windows: list[OpenWindow]


class WindowKeyState(msgspec.Struct, array_like=True, gc=False):
    """A key's event time and the live windows of each rule reading its point, in rule order.
    Untracked by the cyclic GC: a worker caches one per key and no cycle can form through it."""

    event_time: int
    rules: list[RuleWindows]


RESULTS: dict[str, Callable[[OpenWindow], Number]] = {
    "max": lambda w: w.max,
    "min": lambda w: w.min,
    "avg": lambda w: w.sum / w.count,
    "count": lambda w: w.count,
    "sum": lambda w: w.sum,
    "first": lambda w: w.first,
    "last": lambda w: w.last,
}


def cal_detail(aggregator: str, w: OpenWindow) -> dict[str, Any]:
    """`calDetail` of an output (EnOS: for avg the sum, the count and the last value)."""
    if aggregator == "avg":
        return {"sum": w.sum, "count": w.count, "lastValue": w.last}
    if aggregator == "first":
        return {"count": w.count, "time": w.first_time}
    if aggregator == "last":
        return {"count": w.count, "time": w.last_time}
    return {"count": w.count}


class RuleSpec:
    """A validated rule in the shape the hot loop wants."""

    __slots__ = ("aggregator", "emitter", "output", "result", "size", "slide")

    def __init__(self, output_point: str, aggregator: str, size_ms: int, slide_ms: int) -> None:
        self.emitter = Output(output_point)
        self.output = output_point
        self.aggregator = aggregator
        self.result = RESULTS[aggregator]
        self.size = size_ms
        self.slide = slide_ms

    def fits(self, rw: RuleWindows) -> bool:
        return (rw.output, rw.aggregator, rw.size, rw.slide) == (
            self.output,
            self.aggregator,
            self.size,
            self.slide,
        )

    def empty(self) -> RuleWindows:
        return RuleWindows(self.output, self.aggregator, self.size, self.slide, [])


_START = attrgetter("start")
_END = attrgetter("end")


class WindowEngine:
    """Runs one batch: one state load, records in arrival order, one save."""

    def __init__(
        self,
        rules: Sequence[tuple[str, RuleSpec]],
        latency_ms: int,
        early: Literal["data", "frequency"] | None,
        early_every_ms: int = 0,
    ) -> None:
        self._index = RuleIndex(rules)
        self._latency = latency_ms
        self._early_data = early == "data"
        self._every = early_every_ms if early == "frequency" else 0

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        rules_for = self._index.rules_for
        matched = [(r, rules) for r in batch if (rules := rules_for(r))]
        if not matched:
            return []
        working: dict[StateKey, WindowKeyState | None] = ctx.state.load(
            {(r.assetId, r.pointId) for r, _ in matched}
        )
        changed: dict[StateKey, WindowKeyState | None] = {}
        aligned: dict[StateKey, list[RuleSpec]] = {}
        out: list[Record] = []
        for record, rules in matched:
            value = record.value
            if type(value) is not int and not (type(value) is float and math.isfinite(value)):
                ctx.reject(record, f"value {value!r} of {record.pointId} is not a finite number")
                continue
            assert isinstance(value, int | float)
            key = (record.assetId, record.pointId)
            state = working[key]
            if aligned.get(key) is not rules:  # once per key and batch, unless its rules differ
                state = working[key] = changed[key] = _aligned(state, rules)
                aligned[key] = rules
            assert state is not None
            dropped = self._apply(record, value, rules, state, out)
            if dropped:
                ctx.reject(
                    record,
                    f"late record for {', '.join(dropped)}: every window holding time {record.time} "
                    f"closed (event time {state.event_time}, lateness {self._latency} ms)",
                )
        ctx.state.save(changed)
        return out

    def _apply(
        self, record: Record, value: Number, rules: list[RuleSpec], state: WindowKeyState, out: list[Record]
    ) -> list[str]:
        """Advance the key's event time, fire and expire windows, add the record; returns the
        outputs for which the record came too late."""
        old = state.event_time
        t = record.time
        new = state.event_time = t if t > old else old
        every = self._every
        crossed = every and old >= 0 and new // every > old // every
        dropped: list[str] = []
        for rule, rw in zip(rules, state.rules, strict=True):
            windows = rw.windows
            if new > old and windows:
                self._advance(record, rule, windows, old, new, out)
            if not self._add(record, value, rule, windows, new, out):
                dropped.append(rule.output)
            if crossed:
                out.extend(_emit(record, rule, w, "early") for w in windows if w.end > new)
        return dropped

    def _advance(
        self, record: Record, rule: RuleSpec, windows: list[OpenWindow], old: int, new: int, out: list[Record]
    ) -> None:
        i = bisect_right(windows, old, key=_END)
        n = len(windows)
        while i < n and windows[i].end <= new:
            out.append(_emit(record, rule, windows[i], "onTime"))
            i += 1
        expired = bisect_right(windows, new - self._latency, key=_END)
        if expired:
            del windows[:expired]

    def _add(
        self,
        record: Record,
        value: Number,
        rule: RuleSpec,
        windows: list[OpenWindow],
        new: int,
        out: list[Record],
    ) -> bool:
        t, size, slide = record.time, rule.size, rule.slide
        horizon = new - self._latency
        start = t - t % slide - size + slide  # the earliest window holding t
        accepted = False
        while start <= t:
            end = start + size
            if end > horizon and start >= 0:
                w = _window(windows, start, end, value, t)
                accepted = True
                if end <= new:
                    out.append(_emit(record, rule, w, "late"))
                elif self._early_data:
                    out.append(_emit(record, rule, w, "early"))
            start += slide
        return accepted


def _aligned(state: WindowKeyState | None, rules: list[RuleSpec]) -> WindowKeyState:
    """The key's state with one entry per rule in rule order; entries of rules that changed
    since the state was written (another pipeline version) start empty."""
    if state is None:
        return WindowKeyState(-1, [r.empty() for r in rules])
    if len(state.rules) == len(rules) and all(r.fits(rw) for r, rw in zip(rules, state.rules, strict=True)):
        return state
    kept = {rw.output: rw for rw in state.rules}
    fresh = []
    for r in rules:
        rw = kept.get(r.output)
        fresh.append(rw if rw is not None and r.fits(rw) else r.empty())
    return WindowKeyState(state.event_time, fresh)


def _window(windows: list[OpenWindow], start: int, end: int, value: Number, t: int) -> OpenWindow:
    """The window starting at `start` with the record added; created if new."""
    if not windows or windows[-1].start < start:
        w = OpenWindow(start, end, 1, value, value, value, value, t, value, t)
        windows.append(w)
        return w
    i = len(windows) - 1 if windows[-1].start == start else bisect_left(windows, start, key=_START)
    if windows[i].start != start:
        w = OpenWindow(start, end, 1, value, value, value, value, t, value, t)
        windows.insert(i, w)
        return w
    w = windows[i]
    w.count += 1
    w.sum += value
    if value < w.min:
        w.min = value
    if value > w.max:
        w.max = value
    if t < w.first_time:
        w.first, w.first_time = value, t
    if t >= w.last_time:
        w.last, w.last_time = value, t
    return w


def _emit(record: Record, rule: RuleSpec, w: OpenWindow, mode: CalMode) -> Record:
    value = rule.result(w)
    attr = {
        "windowAggregator": {
            "calMode": mode,
            "calType": rule.aggregator,
            "windowEnd": w.end,
            "lastOutput": w.emitted,
            "calDetail": cal_detail(rule.aggregator, w),
        }
    }
    w.emitted = value
    return rule.emitter.emit(record, time=w.start, value=value, quality=None, dq=None, attr=attr)


def state_item(asset_id: str, point_id: str, state: WindowKeyState) -> dict[str, Any]:
    """Get Stage State item (kind `window`): the key's event time and its live windows."""
    windows = [
        {
            "outputPoint": rw.output,
            "startTime": w.start,
            "endTime": w.end,
            "aggregator": rw.aggregator,
            "value": RESULTS[rw.aggregator](w),
            "count": w.count,
            "sum": w.sum,
            "min": w.min,
            "max": w.max,
            "first": w.first,
            "firstTime": w.first_time,
            "last": w.last,
            "lastTime": w.last_time,
            "lastOutput": w.emitted,
        }
        for rw in state.rules
        for w in rw.windows
    ]
    return {"assetId": asset_id, "pointId": point_id, "eventTime": state.event_time, "windows": windows}
