"""The state of the fixed and sliding window aggregators, and the Get Stage State view of it.

State is kept in panes, not windows: a pane holds the partial aggregates of one slide
`[p, p + slide)`, and a window's aggregate is merged from the panes it spans when it is
emitted or shown. A record then updates one pane instead of size/slide windows, and for a
fixed rule a pane is the window. A window exists once one of its panes has a record:
liveness only shrinks, so every record in the panes of a live window arrived while it was
live. `engine` runs batches over this state.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, Literal

import msgspec

Aggregator = Literal["max", "min", "avg", "count", "sum", "first", "last"]
Number = int | float
PANE_START = attrgetter("start")
"""The key that sorts and bisects a rule's panes by start."""


class Pane(msgspec.Struct, array_like=True, gc=False):
    """The partial aggregates of the records in one slide `[start, start + slide)`."""

    start: int
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


class RulePanes(msgspec.Struct, array_like=True, gc=False):
    """One rule reading the key: its panes with records, sorted by start, each kept while a
    window spanning it is live, and the value last emitted for each live window."""

    output: str
    aggregator: str
    size: int
    slide: int
    panes: list[Pane]
    emitted: dict[int, Number]
    """Window start -> the value last emitted for that window (the next output's `lastOutput`)."""


class WindowKeyState(msgspec.Struct, array_like=True, gc=False):
    """A key's event time, the lateness its windows are kept for, and the panes of each rule
    reading its point, in rule order. Untracked by the cyclic GC: a worker caches one per key
    and no cycle can form through it."""

    event_time: int
    lateness: int
    rules: list[RulePanes]
    arrival: int = 0
    """Processing time of the key's last record; kept only under an idle timeout (0: not kept)."""
    org_id: str = ""
    model_id_path: str = ""
    """Those of the key's last record (kept with `arrival`): what an idle close stamps its
    outputs with, there being no record to copy them from."""

    def has_windows(self) -> bool:
        return any(rp.panes for rp in self.rules)


def merged(panes: Sequence[Pane], i: int, j: int) -> Pane:
    """The aggregates of panes[i:j] as one (consecutive panes cover ascending times)."""
    head, tail = panes[i], panes[j - 1]
    count, total, low, high = head.count, head.sum, head.min, head.max
    for p in panes[i + 1 : j]:
        count += p.count
        total += p.sum
        if p.min < low:
            low = p.min
        if p.max > high:
            high = p.max
    return Pane(head.start, count, total, low, high, head.first, head.first_time, tail.last, tail.last_time)


# The value and `calDetail` (EnOS: for avg the sum, the count and the last value) of the window
# spanning panes[i:n], one function per aggregator: `merged` with only what the aggregator
# needs, as each output of the hot loop merges its panes.
Summary = Callable[[list[Pane], int, int], tuple[Number, dict[str, Any]]]


def _sum(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    w = ps[i]
    total, count = w.sum, w.count
    i += 1
    while i < n:  # an index loop: slicing or range() would cost more than the few panes
        w = ps[i]
        total += w.sum
        count += w.count
        i += 1
    return total, {"count": count}


def _avg(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    total, detail = _sum(ps, i, n)
    count = detail["count"]
    return total / count, {"sum": total, "count": count, "lastValue": ps[n - 1].last}


def _count(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    count = 0
    while i < n:
        count += ps[i].count
        i += 1
    return count, {"count": count}


def _min(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    w = ps[i]
    low, count = w.min, w.count
    i += 1
    while i < n:
        w = ps[i]
        count += w.count
        if w.min < low:
            low = w.min
        i += 1
    return low, {"count": count}


def _max(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    w = ps[i]
    high, count = w.max, w.count
    i += 1
    while i < n:
        w = ps[i]
        count += w.count
        if w.max > high:
            high = w.max
        i += 1
    return high, {"count": count}


def _first(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    w = ps[i]
    return w.first, {"count": _count(ps, i, n)[0], "time": w.first_time}


def _last(ps: list[Pane], i: int, n: int) -> tuple[Number, dict[str, Any]]:
    w = ps[n - 1]
    return w.last, {"count": _count(ps, i, n)[0], "time": w.last_time}


SUMMARIES: dict[str, Summary] = {
    "max": _max,
    "min": _min,
    "avg": _avg,
    "count": _count,
    "sum": _sum,
    "first": _first,
    "last": _last,
}


def _live_windows(rp: RulePanes, horizon: int) -> list[tuple[int, int, int]]:
    """(start, i, j) of each live window of a rule that holds records, by start: it spans
    panes[i:j]."""
    size, slide, panes = rp.size, rp.slide, rp.panes
    starts = sorted(
        {
            s
            for p in panes
            for s in range(p.start - size + slide, p.start + 1, slide)
            if s >= 0 and s + size > horizon
        }
    )
    return [
        (s, bisect_left(panes, s, key=PANE_START), bisect_left(panes, s + size, key=PANE_START))
        for s in starts
    ]


def state_item(asset_id: str, point_id: str, state: WindowKeyState) -> dict[str, Any]:
    """Get Stage State item (kind `window`): the key's event time and its live windows, and
    under an idle timeout the processing time of its last record."""
    horizon = state.event_time - state.lateness
    windows = []
    for rp in state.rules:
        for s, i, j in _live_windows(rp, horizon):
            w = merged(rp.panes, i, j)
            windows.append(
                {
                    "outputPoint": rp.output,
                    "startTime": s,
                    "endTime": s + rp.size,
                    "aggregator": rp.aggregator,
                    "value": SUMMARIES[rp.aggregator](rp.panes, i, j)[0],
                    "count": w.count,
                    "sum": w.sum,
                    "min": w.min,
                    "max": w.max,
                    "first": w.first,
                    "firstTime": w.first_time,
                    "last": w.last,
                    "lastTime": w.last_time,
                    "lastOutput": rp.emitted.get(s),
                }
            )
    item = {"assetId": asset_id, "pointId": point_id, "eventTime": state.event_time, "windows": windows}
    if state.arrival:
        item["arrivalTime"] = state.arrival
    return item
