"""Window aggregators against a plain reference, and split into batches at any points."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from window_testkit import BASE_MS, WindowHarness, accept, aggregate, configs, rec, values

from streamcalc.library.windows.panes import state_item
from streamcalc.records import Record
from streamcalc.state.lmdb import LmdbStateStore

Event = tuple[str, int, float | int]
"""(asset, seconds from BASE, value)"""

_stages = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmdbStateStore]:
    s = LmdbStateStore(tmp_path_factory.mktemp("windows") / "state")
    yield s
    s.close()


def new_harness(store: LmdbStateStore, config: dict[str, Any]) -> WindowHarness:
    return WindowHarness(store, config, stage=f"FixedTimeWindowAggregator_{next(_stages)}")


events = st.lists(st.tuples(st.sampled_from(["a1", "a2"]), st.integers(0, 900), values), max_size=60)


def memberships(
    config: dict[str, Any], evs: list[Event]
) -> tuple[dict[tuple[str, int], list[tuple[int, float | int]]], int, dict[str, int]]:
    """Per (asset, window start in ms): the (time, value) of the records it accepted, in
    arrival order; the number of records no window accepted; each asset's final event time."""
    rule = config["rules"][0]
    size = rule["windowSize"] * 1000
    slide = rule.get("slideSize", rule["windowSize"]) * 1000
    lateness = config["latencyMinutes"] * 60_000
    members: dict[tuple[str, int], list[tuple[int, float | int]]] = {}
    event_time: dict[str, int] = {}
    rejected = 0
    for ev in evs:
        rejected += not accept(members, event_time, ev, (size, slide, lateness))
    return members, rejected, event_time


def reference(
    config: dict[str, Any], evs: list[Event]
) -> tuple[dict[tuple[str, int], Any], int, dict[str, int]]:
    """Per (asset, window start in ms): the aggregate over the records it accepted; the number
    of records no window accepted; each asset's final event time."""
    members, rejected, event_time = memberships(config, evs)
    return (
        {k: aggregate(config["rules"][0]["aggregator"], v) for k, v in members.items()},
        rejected,
        event_time,
    )


def cal_detail(aggregator: str, members: list[tuple[int, float | int]]) -> dict[str, Any]:
    """The `calDetail` of a window holding these (time, value) records, in arrival order."""
    count = len(members)
    if aggregator == "avg":
        return {"sum": sum(v for _, v in members), "count": count, "lastValue": aggregate("last", members)}
    if aggregator in ("first", "last"):
        times = [t for t, _ in members]
        return {"count": count, "time": min(times) if aggregator == "first" else max(times)}
    return {"count": count}


def as_records(evs: list[Event]) -> list[Record]:
    return [rec(seconds, value, asset=asset) for asset, seconds, value in evs]


@settings(max_examples=300, deadline=None)
@given(config=configs(), evs=events)
def test_final_outputs_equal_the_reference_over_accepted_records(
    store: LmdbStateStore, config: dict[str, Any], evs: list[Event]
) -> None:
    """Values and `calDetail` both: windows spanning the same panes share one summary, and
    each still has to show its own records."""
    h = new_harness(store, config)
    h.run(as_records(evs))
    expected, rejected, event_time = reference(config, evs)
    members = memberships(config, evs)[0]
    aggregator = config["rules"][0]["aggregator"]
    size = config["rules"][0]["windowSize"] * 1000
    last: dict[tuple[str, int], Record] = {}
    for r in h.outputs:
        last[(r.assetId, r.time)] = r
    # every window whose end event time passed has been emitted, and its last output is final
    fired = {k for k in expected if k[1] + size <= event_time[k[0]]}
    assert fired <= set(last)
    data_trigger = config.get("earlyTrigger") == {"type": "data"}
    for key, r in last.items():
        mode = r.attr["windowAggregator"]["calMode"]
        assert (mode != "early") == (key in fired)
        if key in fired or data_trigger:  # a frequency trigger's early output is a snapshot
            assert r.value == expected[key], (key, r.attr)
            assert r.attr["windowAggregator"]["calDetail"] == cal_detail(aggregator, members[key])
            assert r.attr["windowAggregator"]["windowEnd"] == key[1] + size
    if "earlyTrigger" not in config:
        assert set(last) == fired
    if data_trigger:
        assert set(last) == set(expected)
    assert len(h.rejections) == rejected


@settings(max_examples=200, deadline=None)
@given(config=configs(), evs=events, cuts=st.lists(st.integers(0, 60), max_size=6))
def test_any_split_into_batches_gives_the_same_outputs_and_state(
    store: LmdbStateStore, config: dict[str, Any], evs: list[Event], cuts: list[int]
) -> None:
    records = as_records(evs)
    whole = new_harness(store, config)
    whole.run(records)
    split = new_harness(store, config)
    bounds = [0, *sorted(c for c in cuts if c < len(records)), len(records)]
    for lo, hi in itertools.pairwise(bounds):
        split.run(records[lo:hi])
    assert split.outputs == whole.outputs
    assert [(r.time, reason) for r, reason in split.rejections] == [
        (r.time, reason) for r, reason in whole.rejections
    ]
    assert list(store.scan(split.stage)) == list(store.scan(whole.stage))


@settings(max_examples=200, deadline=None)
@given(config=configs(), evs=events)
def test_each_output_names_the_value_emitted_before_for_its_window(
    store: LmdbStateStore, config: dict[str, Any], evs: list[Event]
) -> None:
    h = new_harness(store, config)
    h.run(as_records(evs))
    before: dict[tuple[str, int], Any] = {}
    for r in h.outputs:
        key = (r.assetId, r.time)
        assert r.attr["windowAggregator"]["lastOutput"] == before.get(key)
        before[key] = r.value


@settings(max_examples=200, deadline=None)
@given(config=configs(), evs=events)
def test_stage_state_shows_each_live_window_with_its_partial_aggregates(
    store: LmdbStateStore, config: dict[str, Any], evs: list[Event]
) -> None:
    h = new_harness(store, config)
    h.run(as_records(evs))
    members, _, event_time = memberships(config, evs)
    rule = config["rules"][0]
    size = rule["windowSize"] * 1000
    horizon = {a: t - config["latencyMinutes"] * 60_000 for a, t in event_time.items()}
    for asset in event_time:
        state = h.state(asset)
        assert state is not None
        shown = [
            (
                w["startTime"],
                w["count"],
                w["sum"],
                w["min"],
                w["max"],
                w["firstTime"],
                w["lastTime"],
                w["value"],
            )
            for w in state_item(asset, "p", state)["windows"]
        ]
        live = sorted((s, m) for (a, s), m in members.items() if a == asset and s + size > horizon[asset])
        assert shown == [
            (
                s,
                len(m),
                sum(v for _, v in m),
                min(v for _, v in m),
                max(v for _, v in m),
                min(t for t, _ in m),
                max(t for t, _ in m),
                aggregate(rule["aggregator"], m),
            )
            for s, m in live
        ]


def test_reference_itself_distinguishes_late_from_on_time() -> None:
    """Guards the oracle: with no lateness the 30 s record is dropped; with one minute it counts."""
    evs: list[Event] = [("a1", 0, 1), ("a1", 61, 2), ("a1", 30, 4)]
    rule = {"windowSize": 60, "aggregator": "sum"}
    strict, dropped, _ = reference({"latencyMinutes": 0, "rules": [rule]}, evs)
    lenient, none, _ = reference({"latencyMinutes": 1, "rules": [rule]}, evs)
    assert (strict[("a1", BASE_MS)], dropped) == (1, 1)
    assert (lenient[("a1", BASE_MS)], none) == (5, 0)
