"""Test kit for the window aggregators: a recording StageContext over real keyed state in LMDB."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from streamcalc.keys import StateKey
from streamcalc.library.base import KeyedState
from streamcalc.library.windows.fixed_sliding import FixedWindowConfig, SlidingWindowConfig, WindowAggregator
from streamcalc.library.windows.panes import WindowKeyState, state_item
from streamcalc.records import Record, Value
from streamcalc.runtime.keyed_state import StageState
from streamcalc.state.lmdb import LmdbStateStore

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a whole day since the epoch
STAGE = "FixedTimeWindowAggregator_01"


def at(seconds: float) -> int:
    return BASE_MS + int(seconds * 1000)


def rec(seconds: float, value: Value, asset: str = "a1", point: str = "p", model: str = "m1") -> Record:
    return Record(
        orgId="o1",
        modelId=model,
        modelIdPath=f"/{model}",
        assetId=asset,
        pointId=point,
        time=at(seconds),
        value=value,
    )


class CountingState:
    """Delegates to the real StageState and counts the calls, so tests can hold an operator to
    one working set per batch."""

    def __init__(self, inner: StageState) -> None:
        self.inner = inner
        self.loads = 0
        self.saves = 0
        self.edits = 0

    def load(self, keys: Iterable[StateKey]) -> dict[StateKey, Any]:
        self.loads += 1
        return self.inner.load(keys)

    def save(self, changes: Mapping[StateKey, Any]) -> None:
        self.saves += 1
        self.inner.save(changes)

    def edit(self, keys: Iterable[StateKey]) -> Mapping[StateKey, Any]:
        self.edits += 1
        return self.inner.edit(keys)

    def scan(self) -> Iterator[tuple[StateKey, Any]]:
        return self.inner.scan()


@dataclass
class RecordingContext:
    """A StageContext that keeps what the operator rejected."""

    keyed: CountingState
    stage: str = STAGE
    now_ms: int = 0
    rejections: list[tuple[Record, str]] = field(default_factory=list)

    @property
    def state(self) -> KeyedState[Any]:
        return self.keyed

    def reject(self, record: Record, reason: str) -> None:
        self.rejections.append((record, reason))


class WindowHarness:
    """Runs batches through a window aggregator and commits each like the runner does. With
    `reload`, every batch starts from a fresh cache, so state goes through its encoding."""

    def __init__(
        self, store: LmdbStateStore, config: dict[str, Any], *, stage: str = STAGE, reload: bool = True
    ) -> None:
        model = SlidingWindowConfig if "slideSize" in config["rules"][0] else FixedWindowConfig
        self.op = WindowAggregator(model.model_validate(config))
        self.store = store
        self.stage = stage
        self.reload = reload
        self.keyed = CountingState(StageState(store, stage, WindowKeyState))
        self.rejections: list[tuple[Record, str]] = []
        self.outputs: list[Record] = []
        self.batches = 0

    def run(self, batch: list[Record], now_ms: int = 0) -> list[Record]:
        """One batch at processing time `now_ms`, committed."""
        if self.reload:
            self.keyed.inner.discard()
        ctx = RecordingContext(self.keyed, self.stage, now_ms)
        out = self.op.process(batch, ctx)
        expected = self.store.checkpoint()
        self.store.commit({self.stage: self.keyed.inner.drain()}, expected, expected.advance({}))
        self.rejections.extend(ctx.rejections)
        self.outputs.extend(out)
        self.batches += 1
        return out

    def state(self, asset: str = "a1", point: str = "p") -> WindowKeyState | None:
        self.keyed.inner.discard()
        value: WindowKeyState | None = self.keyed.inner.load([(asset, point)])[(asset, point)]
        return value

    def windows(self, asset: str = "a1", point: str = "p") -> list[dict[str, Any]]:
        """The key's live windows as Get Stage State lists them, read back from the store."""
        state = self.state(asset, point)
        assert state is not None
        windows: list[dict[str, Any]] = state_item(asset, point, state)["windows"]
        return windows


def summary(out: list[Record]) -> list[tuple[str, str, int, Value]]:
    """(calMode, output point, window start in s from BASE, value) per output."""
    return [
        (r.attr["windowAggregator"]["calMode"], r.pointId, (r.time - BASE_MS) // 1000, r.value) for r in out
    ]


def fixed_config(
    aggregator: str = "sum",
    size: int = 1,
    unit: str = "minute",
    latency: int = 0,
    early: dict[str, Any] | None = None,
    idle: int | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "latencyMinutes": latency,
        "rules": [
            {
                "inputPoint": "m1::p",
                "windowSize": size,
                "windowUnit": unit,
                "aggregator": aggregator,
                "outputPoint": f"m1::p_{aggregator}",
            }
        ],
    }
    if early is not None:
        config["earlyTrigger"] = early
    if idle is not None:
        config["idleTimeoutMinutes"] = idle
    return config


def sliding_config(aggregator: str = "count", latency: int = 0) -> dict[str, Any]:
    return {
        "latencyMinutes": latency,
        "rules": [
            {
                "inputPoint": "m1::p",
                "windowSize": 3,
                "windowUnit": "minute",
                "slideSize": 1,
                "slideUnit": "minute",
                "aggregator": aggregator,
                "outputPoint": "m1::p_3m",
            }
        ],
    }


values = st.one_of(st.integers(-5, 5), st.integers(-20, 20).map(lambda n: n / 4))


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.sampled_from([10, 30, 60, 120]))
    slides = [s for s in (size, size // 2, size // 3) if s and size % s == 0]
    slide = draw(st.sampled_from(slides))
    rule: dict[str, Any] = {
        "inputPoint": "m1::p",
        "windowSize": size,
        "windowUnit": "second",
        "aggregator": draw(st.sampled_from(["max", "min", "avg", "count", "sum", "first", "last"])),
        "outputPoint": "m1::p_out",
    }
    if slide != size:
        rule |= {"slideSize": slide, "slideUnit": "second"}
    config: dict[str, Any] = {"latencyMinutes": draw(st.integers(0, 3)), "rules": [rule]}
    early = draw(st.sampled_from([None, {"type": "data"}, {"type": "frequency", "minutes": 1}]))
    if early is not None:
        config["earlyTrigger"] = early
    return config


def aggregate(aggregator: str, members: list[tuple[int, float | int]]) -> Any:
    vals = [v for _, v in members]
    if aggregator == "avg":
        total: float | int = 0
        for v in vals:
            total += v
        return total / len(vals)
    if aggregator == "first":
        return min(members, key=lambda m: m[0])[1]  # min keeps the first of equal times
    if aggregator == "last":
        return max(reversed(members), key=lambda m: m[0])[1]  # ...so reversed keeps the last
    if aggregator == "count":
        return len(vals)
    if aggregator == "sum":
        return sum(vals, 0)
    return max(vals) if aggregator == "max" else min(vals)


def accept(
    members: dict[tuple[str, int], list[tuple[int, float | int]]],
    event_time: dict[str, int],
    record: tuple[str, int, float | int],
    windows: tuple[int, int, int],
) -> bool:
    """The reference models' rule for one record (asset, seconds from BASE, value) under
    `windows` (size, slide, lateness in ms): it moves its key's event time, then joins every
    window holding it that is not complete, in `members` per (asset, window start). False
    when it joins none (a late record)."""
    asset, seconds, value = record
    size, slide, lateness = windows
    t = BASE_MS + seconds * 1000
    now = event_time[asset] = max(event_time.get(asset, -1), t)
    starts = [s for s in range(t - t % slide - size + slide, t + 1, slide) if s + size + lateness > now]
    for s in starts:
        members.setdefault((asset, s), []).append((t, value))
    return bool(starts)
