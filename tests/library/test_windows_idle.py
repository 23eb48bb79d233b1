"""Idle close of the window aggregators: a key that stops sending has its windows completed
after `idleTimeoutMinutes` of processing time (the batch's `now_ms`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from window_testkit import (
    BASE_MS,
    WindowHarness,
    accept,
    aggregate,
    at,
    configs,
    fixed_config,
    rec,
    sliding_config,
    summary,
    values,
)

from streamcalc.library.windows.fixed_sliding import FixedWindowConfig, SlidingWindowConfig
from streamcalc.library.windows.panes import state_item
from streamcalc.records import Record
from streamcalc.state.lmdb import LmdbStateStore

_stages = itertools.count()
NOW = 1_800_000_000_000  # processing time, far from the event times on purpose
MIN = 60_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStateStore]:
    s = LmdbStateStore(tmp_path / "state")
    yield s
    s.close()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmdbStateStore]:
    """For hypothesis examples, each under a stage name of its own."""
    s = LmdbStateStore(tmp_path_factory.mktemp("idle") / "state")
    yield s
    s.close()


def closes(out: list[Record]) -> list[tuple[str, str, str, int, Any]]:
    """(asset, calMode, output point, window start in s, value) per output."""
    return [
        (r.assetId, *mode_point_start_value)
        for r, mode_point_start_value in zip(out, summary(out), strict=True)
    ]


def test_an_idle_key_fires_its_open_window_and_completes_it(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", idle=5))
    meter = Record(
        orgId="o7", modelId="m1", modelIdPath="/site/m1", assetId="a1", pointId="p", time=at(10), value=2
    )
    assert h.run([rec(0, 1), meter], NOW) == []
    assert h.run([], NOW + 5 * MIN - 1) == []
    assert not h.op.due(NOW + 5 * MIN - 1, h.keyed)
    assert h.op.due(NOW + 5 * MIN, h.keyed)

    (out,) = h.run([], NOW + 5 * MIN)

    assert (out.orgId, out.modelId, out.modelIdPath, out.assetId, out.pointId) == (
        "o7",
        "m1",
        "/site/m1",
        "a1",
        "p_sum",
    )
    assert (out.time, out.value) == (BASE_MS, 3)
    assert out.attr["windowAggregator"] == {
        "calMode": "onTime",
        "calType": "sum",
        "windowEnd": at(60),
        "lastOutput": None,
        "calDetail": {"count": 2},
    }
    state = h.state()
    assert state is not None and state.event_time == at(60) and h.windows() == []
    assert not h.op.due(NOW + 60 * MIN, h.keyed)  # closed keys leave the index

    # the window is complete: a record for it is late; a later one opens the next window
    assert h.run([rec(30, 5), rec(70, 1)], NOW + 6 * MIN) == []
    ((_, reason),) = h.rejections
    assert reason == (
        f"late record for m1::p_sum: every window holding time {at(30)} closed "
        f"(event time {at(60)}, lateness 0 ms)"
    )
    assert closes(h.run([], NOW + 11 * MIN)) == [("a1", "onTime", "p_sum", 60, 1)]


def test_with_lateness_only_unfired_windows_fire_and_all_complete(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", latency=2, idle=1))
    assert closes(h.run([rec(0, 1), rec(70, 2)], NOW)) == [("a1", "onTime", "p_sum", 0, 1)]

    assert closes(h.run([], NOW + MIN)) == [("a1", "onTime", "p_sum", 60, 2)]  # [0, 60) fired already

    state = h.state()
    assert state is not None and state.event_time == at(120) + 2 * MIN and h.windows() == []
    h.run([rec(100, 1)], NOW + 2 * MIN)
    assert len(h.rejections) == 1  # within the old lateness, but the window is complete


def test_an_idle_sliding_key_fires_every_window_holding_its_records(store: LmdbStateStore) -> None:
    config = {**sliding_config("sum"), "idleTimeoutMinutes": 1}
    h = WindowHarness(store, config)
    # 3-minute windows every minute: 30 s is in those from -120 s, -60 s and 0 s; 90 s fires the first
    assert closes(h.run([rec(30, 1), rec(90, 2)], NOW)) == [("a1", "onTime", "p_3m", -120, 1)]

    out = h.run([], NOW + MIN)

    assert closes(out) == [
        ("a1", "onTime", "p_3m", -60, 3),
        ("a1", "onTime", "p_3m", 0, 3),
        ("a1", "onTime", "p_3m", 60, 2),
    ]
    assert h.windows() == []


def test_only_keys_without_records_for_the_timeout_close(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", idle=5))
    h.run([rec(0, 1, asset="a1"), rec(0, 1, asset="a2")], NOW)
    h.run([rec(20, 1, asset="a2")], NOW + 3 * MIN)

    assert closes(h.run([], NOW + 5 * MIN)) == [("a1", "onTime", "p_sum", 0, 1)]
    assert h.run([], NOW + 8 * MIN - 1) == []
    assert closes(h.run([], NOW + 8 * MIN)) == [("a2", "onTime", "p_sum", 0, 2)]


def test_a_batch_closes_idle_keys_before_its_records(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", idle=5))
    h.run([rec(0, 1)], NOW)

    out = h.run([rec(30, 4), rec(70, 1, asset="a2")], NOW + 5 * MIN)

    assert closes(out) == [("a1", "onTime", "p_sum", 0, 1)]
    assert len(h.rejections) == 1  # a1's record came after its window closed by idleness


def test_keys_idle_at_once_close_in_key_order_whatever_their_arrival(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", idle=1))
    h.run([rec(0, 1, asset="a3"), rec(0, 2, asset="a1"), rec(0, 3, asset="a2")], NOW)

    assert [r.assetId for r in h.run([], NOW + MIN)] == ["a1", "a2", "a3"]


def test_a_restarted_operator_rebuilds_its_index_from_state(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", idle=5))
    h.run([rec(0, 1, asset="a1")], NOW)
    h.run([rec(0, 2, asset="a2")], NOW + MIN)

    restarted = WindowHarness(store, fixed_config("sum", idle=5))

    assert not restarted.op.due(NOW + 5 * MIN - 1, restarted.keyed)
    assert closes(restarted.run([], NOW + 5 * MIN)) == [("a1", "onTime", "p_sum", 0, 1)]
    assert closes(restarted.run([], NOW + 6 * MIN)) == [("a2", "onTime", "p_sum", 0, 2)]


def test_windows_opened_without_a_timeout_close_by_idleness_after_their_next_record(
    store: LmdbStateStore,
) -> None:
    WindowHarness(store, fixed_config("sum")).run([rec(0, 1)], NOW)  # no arrival time kept
    h = WindowHarness(store, fixed_config("sum", idle=1))

    assert not h.op.due(NOW + 60 * MIN, h.keyed)
    h.run([rec(10, 1)], NOW + 60 * MIN)
    assert closes(h.run([], NOW + 61 * MIN)) == [("a1", "onTime", "p_sum", 0, 2)]


def test_windows_of_a_rule_no_longer_configured_close_without_output(store: LmdbStateStore) -> None:
    WindowHarness(store, fixed_config("sum", idle=5)).run([rec(0, 1)], NOW)
    released = WindowHarness(store, fixed_config("max", idle=5))  # p_sum is gone, p_max is new

    assert released.run([], NOW + 5 * MIN) == []
    assert released.windows() == []
    assert closes(released.run([rec(70, 4)], NOW + 6 * MIN)) == []
    assert closes(released.run([], NOW + 11 * MIN)) == [("a1", "onTime", "p_max", 60, 4)]


def test_processing_time_set_back_still_finds_every_idle_key(store: LmdbStateStore) -> None:
    """A wall clock set back (across a restart, say): the index is ordered again."""
    h = WindowHarness(store, fixed_config("sum", idle=5))
    h.run([rec(0, 1, asset="a1")], NOW)
    h.run([rec(0, 1, asset="a2")], NOW - 10 * MIN)

    assert closes(h.run([], NOW - 5 * MIN)) == [("a2", "onTime", "p_sum", 0, 1)]
    assert closes(h.run([], NOW + 5 * MIN)) == [("a1", "onTime", "p_sum", 0, 1)]


def test_the_state_item_shows_the_arrival_time_kept_for_idleness(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("sum", idle=5))
    h.run([rec(0, 1)], NOW)
    state = h.state()
    assert state is not None
    assert state_item("a1", "p", state)["arrivalTime"] == NOW

    plain = WindowHarness(store, fixed_config("sum"), stage="other")
    plain.run([rec(0, 1)], NOW)
    plain_state = plain.state()
    assert plain_state is not None and "arrivalTime" not in state_item("a1", "p", plain_state)


@pytest.mark.parametrize("minutes", [0, -1, 7 * 24 * 60 + 1, 1.5])
@pytest.mark.parametrize("model", [FixedWindowConfig, SlidingWindowConfig])
def test_invalid_idle_timeouts_are_refused(model: type[FixedWindowConfig], minutes: Any) -> None:
    rule = fixed_config()["rules"][0]
    if model is SlidingWindowConfig:
        rule = {**rule, "slideSize": 1, "slideUnit": "minute"}
    with pytest.raises(ValidationError, match="idleTimeoutMinutes"):
        model.model_validate({"idleTimeoutMinutes": minutes, "rules": [rule]})


IDLE_MINUTES = 2
Arrival = tuple[int, str, int, float | int]
"""(processing-time minutes since the previous record, asset, seconds from BASE, value)"""
arrivals = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["a1", "a2", "a3"]), st.integers(0, 900), values),
    max_size=40,
)


def idle_reference(config: dict[str, Any], evs: list[Arrival]) -> tuple[dict[tuple[str, int], Any], int]:
    """Per (asset, window start in ms) the aggregate of the records it accepted, and the number
    of records no window accepted, when before each record every asset idle for the timeout
    that holds a live window moves its event time to its newest such window's end + lateness."""
    rule = config["rules"][0]
    size = rule["windowSize"] * 1000
    slide = rule.get("slideSize", rule["windowSize"]) * 1000
    lateness = config["latencyMinutes"] * MIN
    members: dict[tuple[str, int], list[tuple[int, float | int]]] = {}
    event_time: dict[str, int] = {}
    arrival: dict[str, int] = {}
    now, rejected = NOW, 0
    for gap, asset, seconds, value in evs:
        now += gap * MIN
        for a, seen in arrival.items():
            live = [s for (b, s) in members if b == a and s + size + lateness > event_time[a]]
            if live and seen + IDLE_MINUTES * MIN <= now:
                event_time[a] = max(event_time[a], max(live) + size + lateness)
        rejected += not accept(members, event_time, (asset, seconds, value), (size, slide, lateness))
        arrival[asset] = now
    return {k: aggregate(rule["aggregator"], v) for k, v in members.items()}, rejected


@settings(max_examples=300, deadline=None)
@given(config=configs(), evs=arrivals)
def test_idle_closes_agree_with_the_reference_and_every_window_ends_emitted(
    shared_store: LmdbStateStore, config: dict[str, Any], evs: list[Arrival]
) -> None:
    config = {**config, "idleTimeoutMinutes": IDLE_MINUTES}
    h = WindowHarness(shared_store, config, stage=f"idle_{next(_stages)}")
    now = NOW
    batch: list[Record] = []
    for gap, asset, seconds, value in evs:  # records without a gap share a batch
        if gap and batch:
            h.run(batch, now)
            batch = []
        now += gap * MIN
        batch.append(rec(seconds, value, asset=asset))
    h.run(batch, now)
    h.run([], now + 24 * 60 * MIN)  # every asset idle: nothing stays open

    expected, rejected = idle_reference(config, evs)
    final = {(r.assetId, r.time): r for r in h.outputs}
    assert set(final) == set(expected)
    for key, r in final.items():
        assert r.attr["windowAggregator"]["calMode"] != "early"
        assert r.value == expected[key], (key, r.attr)
    assert len(h.rejections) == rejected
    assert all(not s.has_windows() for _, s in h.keyed.inner.scan())
