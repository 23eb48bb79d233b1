"""What the PyFlink peer computes per key, in plain Python so a test can hold it against streamcalc.

The peer's KeyedProcessFunction keeps one of these states in a Flink `ValueState` and calls
`step` per record; `step` returns the new state and the output records (dicts, written as
JSON lines). The semantics are streamcalc's, restricted to the benchmark's configuration:
- W1 = SimplifiedTimeWindowAggregator, one rule: the running sum of the key's current
  epoch-aligned window, one output per record at the window start; a record of an earlier
  window than the current one is late and gives no output (streamcalc: error lane).
- W2 = FixedTimeWindowAggregator, one `avg` rule, lateness L, no early trigger: the key's
  event time is the largest time seen; a record that moves it to >= a window's end fires that
  window (`onTime`); a window is dropped once event time >= end + L; a record for a fired,
  not yet dropped window is added and the window re-emitted (`late`); a record for a dropped
  window gives no output. Outputs carry streamcalc's `attr.windowAggregator`.
This module must not import streamcalc: it runs inside the peer's own virtualenv.
"""

from __future__ import annotations

from typing import Any

Output = dict[str, Any]
SumState = tuple[int, float]
"""(window start, running sum)."""
AvgState = list[Any]
"""[event time, windows sorted by start]; a window is [start, end, count, sum, last,
last time, last emitted value or None]."""


class RunningSum:
    def __init__(self, window_ms: int, output_model: str, output_point: str) -> None:
        self.window_ms = window_ms
        self.model, self.point = output_model, output_point

    def step(self, state: SumState | None, record: dict[str, Any]) -> tuple[SumState, list[Output]]:
        t, value = record["time"], record["value"]
        start = t - t % self.window_ms
        if state is None or start > state[0]:
            state = (start, value)
        elif start == state[0]:
            state = (start, state[1] + value)
        else:
            return state, []
        return state, [_output(record, self.model, self.point, start, state[1])]


class TumblingAvg:
    def __init__(self, size_ms: int, latency_ms: int, output_model: str, output_point: str) -> None:
        self.size, self.latency = size_ms, latency_ms
        self.model, self.point = output_model, output_point

    def step(self, state: AvgState | None, record: dict[str, Any]) -> tuple[AvgState, list[Output]]:
        if state is None:
            state = [-1, []]
        t, value = record["time"], record["value"]
        old, windows = state
        new = state[0] = t if t > old else old
        out: list[Output] = []
        if new > old and windows:
            out.extend(self._emit(record, w, "onTime") for w in windows if old < w[1] <= new)
            windows[:] = [w for w in windows if w[1] > new - self.latency]
        start = t - t % self.size
        end = start + self.size
        if end > new - self.latency and start >= 0:
            w = _window(windows, start, end, value, t)
            if end <= new:
                out.append(self._emit(record, w, "late"))
        return state, out

    def _emit(self, record: dict[str, Any], w: list[Any], mode: str) -> Output:
        start, end, count, total, last, _, emitted = w
        value = total / count
        w[6] = value
        attr = {
            "windowAggregator": {
                "calMode": mode,
                "calType": "avg",
                "windowEnd": end,
                "lastOutput": emitted,
                "calDetail": {"sum": total, "count": count, "lastValue": last},
            }
        }
        return _output(record, self.model, self.point, start, value, attr)


def _window(windows: list[list[Any]], start: int, end: int, value: float, t: int) -> list[Any]:
    """The window starting at `start` with the record added; created in order if new."""
    i = len(windows)
    while i and windows[i - 1][0] > start:
        i -= 1
    if i and windows[i - 1][0] == start:
        w = windows[i - 1]
        w[2] += 1
        w[3] += value
        if t >= w[5]:
            w[4], w[5] = value, t
        return w
    w = [start, end, 1, value, value, t, None]
    windows.insert(i, w)
    return w


def _output(
    record: dict[str, Any],
    model: str,
    point: str,
    time: int,
    value: float,
    attr: dict[str, Any] | None = None,
) -> Output:
    out = {
        "orgId": record["orgId"],
        "modelId": model,
        "modelIdPath": record["modelIdPath"],
        "assetId": record["assetId"],
        "pointId": point,
        "time": time,
        "value": value,
    }
    if attr is not None:
        out["attr"] = attr
    return out
