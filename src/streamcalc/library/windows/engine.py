"""The event-time window engine shared by the fixed and sliding window aggregators.

Semantics (the operator modules and docs/operators/*TimeWindowAggregator.md tell the same):
windows of a rule are `[s, s + size)` with `s` a multiple of the slide (the size for a fixed
window), counted from the epoch in UTC. Event time advances per key (assetId, pointId): it is
the largest `time` the key has accepted. With `L` the allowed lateness, a window is *open*
while event time < end, *fired* once event time >= end (the `onTime` output) and *expired*
once event time >= end + L, when it leaves the state. A record is added to each of its windows
that has not expired; a fired window it updates is re-emitted at once (`late`). A record
none of whose windows is left goes to the error lane. The only processing time read is the
batch's `ctx.now_ms`, under an idle timeout (`idle`). The state, kept in panes, is in
`panes`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from streamcalc.keys import StateKey
from streamcalc.library.base import KeyedState, StageContext
from streamcalc.library.common.attrs import WINDOW_ATTR
from streamcalc.library.common.point_rules import RuleIndex, StateKeys
from streamcalc.library.common.points import split_ref
from streamcalc.library.windows.idle import ArrivalIndex
from streamcalc.library.windows.panes import (
    PANE_START,
    SUMMARIES,
    Number,
    Pane,
    RulePanes,
    WindowKeyState,
)
from streamcalc.records import Record

CalMode = Literal["early", "onTime", "late"]
_replace = msgspec.structs.replace


class RuleSpec:
    """A validated rule in the shape the hot loop wants.

    Its `output` is the rule's output point as a string object of its own, the token by which
    `process` knows a state aligned to this very rule without comparing it: only `_align` and
    `empty` put that object into a state entry, and they give the entry this rule's aggregator,
    size and slide. Nothing else can hold the object: a state read from the store has strings
    the decoder made, and every other spec, of this engine or of one built for other rules
    with an equal output point, made its own copy (`_own_copy`).
    """

    __slots__ = ("aggregator", "attrs", "lead", "model_id", "output", "point_id", "size", "slide", "summary")

    def __init__(self, output_point: str, aggregator: str, size_ms: int, slide_ms: int) -> None:
        self.output = _own_copy(output_point)
        self.model_id, self.point_id = split_ref(output_point)
        self.aggregator = aggregator
        self.summary = SUMMARIES[aggregator]
        self.attrs: dict[str, dict[str, Any]] = {
            mode: {
                "calMode": mode,
                "calType": aggregator,
                "windowEnd": 0,
                "lastOutput": None,
                "calDetail": None,
            }
            for mode in ("early", "onTime", "late")
        }
        """Each mode's `windowAggregator` attr with its keys in output order, copied for each
        output: a copy costs less than building the dict."""
        self.size = size_ms
        self.slide = slide_ms
        self.lead = size_ms - slide_ms
        """How far the first window holding a pane starts before it."""

    def fits(self, rp: RulePanes) -> bool:
        return (
            rp.output == self.output
            and rp.aggregator == self.aggregator
            and rp.size == self.size
            and rp.slide == self.slide
        )

    def empty(self) -> RulePanes:
        return RulePanes(self.output, self.aggregator, self.size, self.slide, [], {})


class WindowEngine:
    """Runs one batch: one working set of state (`edit`), records in arrival order."""

    def __init__(
        self,
        rules: Sequence[tuple[str, RuleSpec]],
        latency_ms: int,
        early: Literal["data", "frequency"] | None,
        early_every_ms: int = 0,
        idle_ms: int = 0,
    ) -> None:
        self._index = RuleIndex(rules)
        self._keys = StateKeys(split_ref(ref)[1] for ref, _ in rules)
        self._by_output = {spec.output: spec for _, spec in rules}
        self._latency = latency_ms
        self._early_data = early == "data"
        self._every = early_every_ms if early == "frequency" else 0
        self._idle = ArrivalIndex(idle_ms) if idle_ms else None

    def due(self, now_ms: int, state: KeyedState[Any]) -> bool:
        return self._idle is not None and self._idle.due(now_ms, state)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        """The hot loop of `make bench`, column-wise over the records some rule reads and their
        interned state keys (`StateKeys`), and inlined per rule of a record: fire the windows
        event time passed and expire (`_advance`), add the record to its pane (re-emitting the
        fired windows it changes, `late`), then the early outputs the trigger asks for. A key's
        state is known aligned to a single rule by its entry's `output` token (see RuleSpec),
        else aligned: under several rules once per key and batch, `aligned` noting the index's
        rule list it was aligned to (a list the index never changes). Under an idle timeout the
        keys idle at the batch's processing time close first."""
        out: list[Record] = []
        idle = self._idle
        if idle is not None:
            self._close_idle(idle, ctx, out)
        records, specs_of = self._index.select(batch)
        if not records:
            return out
        keys = self._keys.of(records)
        working: Mapping[StateKey, WindowKeyState | None] = ctx.state.edit(keys)
        save = ctx.state.save
        latency, every, by_output, early_data = self._latency, self._every, self._by_output, self._early_data
        several = len(by_output) > 1
        isfinite = math.isfinite
        aligned: dict[StateKey, list[RuleSpec]] = {}  # keys aligned the slow way in this batch
        last: dict[StateKey, Record] = {}  # each key's last record, kept under an idle timeout
        for record, specs, key in zip(records, specs_of, keys, strict=True):
            value = record.value
            # values.is_finite_number, inlined: a call per record costs this loop a few per cent
            if not ((type(value) is float and isfinite(value)) or type(value) is int):
                ctx.reject(record, f"value {value!r} of {record.pointId} is not a finite number")
                continue
            if idle is not None:
                last[key] = record
            state = working[key]
            # With one rule, a state whose entry holds the rule's own `output` object is aligned;
            # with several, a key is aligned once per batch.
            if (state is None or several or state.rules[0].output is not specs[0].output) and (
                aligned.get(key) is not specs
            ):
                if state is None:
                    state = WindowKeyState(-1, latency, [])
                    save({key: state})
                _align(state, specs, latency)
                aligned[key] = specs
            assert state is not None
            old = state.event_time
            t = record.time
            new = state.event_time = t if t > old else old
            horizon = new - latency
            crossed = every != 0 and old >= 0 and new // every > old // every
            dropped: list[str] | None = None
            for rp in state.rules:  # one per rule, in rule order
                spec = by_output[rp.output]
                size, slide, panes = spec.size, spec.slide, rp.panes
                if new > old and panes:
                    _advance(record, spec, rp, old, new, horizon, out)
                p = t - t % slide
                if p + size <= horizon:  # too late for every window of the rule
                    dropped = [*(dropped or ()), rp.output]
                    continue
                if not panes or panes[-1].start < p:
                    panes.append(Pane(p, 1, value, value, value, value, t, value, t))
                else:
                    _add(panes, p, value, t)
                if p + slide <= new:
                    _emit_late(record, spec, rp, p, new, horizon, out)
                if early_data or crossed:
                    _emit_early(record, spec, rp, p, new, horizon, early_data, crossed, out)
            if dropped:
                ctx.reject(
                    record,
                    f"late record for {', '.join(dropped)}: every window holding time {t} "
                    f"closed (event time {new}, lateness {latency} ms)",
                )
        if idle is not None:
            idle.arrived(last, working, ctx.now_ms)
        return out

    def _close_idle(self, idle: ArrivalIndex, ctx: StageContext, out: list[Record]) -> None:
        keys = idle.take_idle(ctx.now_ms, ctx.state)
        if keys:
            states = ctx.state.edit(keys)
            for key in keys:
                if (state := states[key]) is not None:  # None: deleted behind the worker's back
                    self.close(key, state, out)

    def close(self, key: StateKey, state: WindowKeyState, out: list[Record]) -> None:
        """Complete every window of a key that went idle: its event time moves to the end of
        its newest window plus the lateness, so the windows not yet fired fire (`onTime`) and
        all leave the state; a record for them after this is late by the usual rules. Windows
        of a rule no longer configured (the state predates a new release) go without output,
        as the key's next record would drop them when aligning its state."""
        latency, by_output = self._latency, self._by_output
        old = new = state.event_time
        for rp in state.rules:
            spec = by_output.get(rp.output)
            if spec is None or not spec.fits(rp):
                rp.panes.clear()
                rp.emitted.clear()
            elif rp.panes:
                new = max(new, rp.panes[-1].start + rp.size + latency)
        if new == old:
            return
        state.event_time = new
        template = Record(
            orgId=state.org_id,
            modelId="",  # each output takes its rule's model
            modelIdPath=state.model_id_path,
            assetId=key[0],
            pointId=key[1],
            time=new,
            value=None,
        )
        for rp in state.rules:
            if rp.panes:
                _advance(template, by_output[rp.output], rp, old, new, new - latency, out)


def _advance(
    record: Record, spec: RuleSpec, rp: RulePanes, old: int, new: int, horizon: int, out: list[Record]
) -> None:
    """Event time moved from `old` to `new`: the windows ending in (old, new] fire, from the
    first to end after `old`, and the panes and emitted values of expired windows go."""
    size, panes = spec.size, rp.panes
    s = old - old % spec.slide - spec.lead
    _emit_windows(record, spec, rp, s if s > 0 else 0, new - size, len(panes), "onTime", horizon, out)
    cutoff = horizon - size  # windows starting at or before it have expired
    if panes[0].start <= cutoff:
        n = 1
        while n < len(panes) and panes[n].start <= cutoff:
            n += 1
        del panes[:n]
    emitted = rp.emitted
    if emitted:
        for s in list(emitted):
            if s <= cutoff:
                del emitted[s]


def _add(panes: list[Pane], p: int, value: Number, t: int) -> None:
    """Add a record at time `t` to the pane starting at `p`, which is not after the last."""
    i = len(panes) - 1 if panes[-1].start == p else bisect_left(panes, p, key=PANE_START)
    if panes[i].start != p:
        panes.insert(i, Pane(p, 1, value, value, value, value, t, value, t))
        return
    w = panes[i]
    w.count += 1
    w.sum += value
    if value < w.min:
        w.min = value
    if value > w.max:
        w.max = value
    if t >= w.last_time:
        w.last, w.last_time = value, t
    if t < w.first_time:
        w.first, w.first_time = value, t


def _emit_windows(
    record: Record,
    spec: RuleSpec,
    rp: RulePanes,
    s: int,
    stop: int,
    n: int,
    mode: CalMode,
    horizon: int,
    out: list[Record],
) -> None:
    """Emit the windows starting in [s, stop] that hold records, oldest first, each spanning
    the panes from its start to panes[n - 1]: callers pass windows ending after that pane
    starts, so a window holds records iff it starts at or before it. The windows spanning the
    same panes (those starting after one pane up to the next) share one summary and its
    `calDetail` dict, as records are never changed once emitted (fan-out shares them too). A
    window's value is kept for its next `lastOutput` while it is live."""
    panes = rp.panes
    last = panes[n - 1].start
    if stop > last:
        stop = last
    if s > stop:
        return
    i = n - 1
    while i and panes[i - 1].start >= s:  # these windows span the last size/slide panes at most
        i -= 1
    size, slide, summary, emitted = spec.size, spec.slide, spec.summary, rp.emitted
    template = spec.attrs[mode]
    while True:
        value, detail = summary(panes, i, n)
        bound = panes[i].start  # the last window spanning panes[i:n]
        if bound > stop:
            bound = stop
        while True:
            end = s + size
            wa = template.copy()
            wa["windowEnd"] = end
            if emitted:
                wa["lastOutput"] = emitted.get(s)
            wa["calDetail"] = detail
            if end > horizon:
                emitted[s] = value
            out.append(
                _replace(
                    record,
                    modelId=spec.model_id,
                    pointId=spec.point_id,
                    time=s,
                    value=value,
                    quality=None,
                    dq=None,
                    attr={WINDOW_ATTR: wa},
                )
            )
            s += slide
            if s > bound:
                break
        if s > stop:
            return
        i += 1


def _emit_early(
    record: Record,
    spec: RuleSpec,
    rp: RulePanes,
    p: int,
    new: int,
    horizon: int,
    data: bool,
    crossed: bool,
    out: list[Record],
) -> None:
    """The early outputs of a record added to the pane at `p`: under the data trigger its open
    windows, when event time `new` crossed a multiple of the frequency every open window."""
    lead, n = spec.lead, len(rp.panes)
    first_open = new - new % spec.slide - lead  # the first window to end after new
    if first_open < 0:
        first_open = 0
    if data:
        s = p - lead
        _emit_windows(record, spec, rp, s if s > first_open else first_open, p, n, "early", horizon, out)
    if crossed:
        _emit_windows(record, spec, rp, first_open, new, n, "early", horizon, out)


def _emit_late(
    record: Record, spec: RuleSpec, rp: RulePanes, p: int, new: int, horizon: int, out: list[Record]
) -> None:
    """Re-emit the live windows holding the pane at `p` that event time `new` has fired."""
    size, slide, lead, panes = spec.size, spec.slide, spec.lead, rp.panes
    s = max(p - lead, horizon - horizon % slide - lead, 0)
    while s <= p and s + size <= new:
        _emit_windows(
            record, spec, rp, s, s, bisect_left(panes, s + size, key=PANE_START), "late", horizon, out
        )
        s += slide


def _own_copy(text: str) -> str:
    """A string equal to `text` that no other object is: CPython decodes a fresh object for
    every string of two characters or more (it shares only the empty and one-character ones)."""
    if len(text) < 2:
        raise ValueError(f"an output point of two characters or more, not {text!r}")
    return text.encode().decode()


def _align(state: WindowKeyState, rules: list[RuleSpec], latency: int) -> None:
    """Give the key's state one entry per rule in rule order; entries of rules that changed
    since the state was written (another pipeline version) start empty. Each entry's `output`
    is then its rule's token (see RuleSpec), by which `process` knows an aligned state."""
    state.lateness = latency
    kept = {rp.output: rp for rp in state.rules}
    fresh = []
    for r in rules:
        rp = kept.get(r.output)
        if rp is None or not r.fits(rp):
            rp = r.empty()
        rp.output = r.output
        fresh.append(rp)
    state.rules = fresh
