"""FixedTimeWindowAggregator / SlidingTimeWindowAggregator: table-driven behaviour and validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from window_testkit import BASE_MS, STAGE, WindowHarness, at, fixed_config, rec, sliding_config, summary

from streamcalc.library.registry import get_operator
from streamcalc.library.windows.engine import RuleSpec
from streamcalc.library.windows.fixed_sliding import (
    FIXED_TIME_WINDOW_AGGREGATOR,
    SLIDING_TIME_WINDOW_AGGREGATOR,
    FixedWindowConfig,
    SlidingWindowConfig,
)
from streamcalc.library.windows.panes import state_item
from streamcalc.records import Record
from streamcalc.state.lmdb import LmdbStateStore

ISSUE_CONFIG: dict[str, Any] = {
    "latencyMinutes": 0,
    "rules": [
        {
            "inputPoint": "m1::p",
            "windowSize": 1,
            "windowUnit": "minute",
            "aggregator": "avg",
            "outputPoint": "m1::p_avg",
        }
    ],
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStateStore]:
    s = LmdbStateStore(tmp_path / "state")
    yield s
    s.close()


def test_the_issue_config_emits_the_minute_average_at_the_window_start(store: LmdbStateStore) -> None:
    h = WindowHarness(store, ISSUE_CONFIG)
    out = h.run([rec(0, 1), rec(30, 2), rec(60, 4)])
    assert len(out) == 1
    r = out[0]
    assert (r.modelId, r.pointId, r.assetId, r.time, r.value) == ("m1", "p_avg", "a1", BASE_MS, 1.5)
    assert r.attr == {
        "windowAggregator": {
            "calMode": "onTime",
            "calType": "avg",
            "windowEnd": at(60),
            "lastOutput": None,
            "calDetail": {"sum": 3, "count": 2, "lastValue": 2},
        }
    }
    state = h.state()
    assert state is not None and state.event_time == at(60)
    assert [(w["startTime"], w["count"], w["sum"]) for w in h.windows()] == [(at(60), 1, 4)]


# Window [0 s, 60 s): values 3 7 4 2 9 at 10 5 20 5 20 s; the 70 s record fires it.
AGGREGATES = [
    ("max", 9, {"count": 5}),
    ("min", 2, {"count": 5}),
    ("sum", 25, {"count": 5}),
    ("count", 5, {"count": 5}),
    ("avg", 5.0, {"sum": 25, "count": 5, "lastValue": 9}),
    ("first", 7, {"count": 5, "time": at(5)}),  # earliest time; tie: first to arrive
    ("last", 9, {"count": 5, "time": at(20)}),  # latest time; tie: last to arrive
]


@pytest.mark.parametrize(("aggregator", "value", "detail"), AGGREGATES)
def test_each_aggregator(store: LmdbStateStore, aggregator: str, value: Any, detail: dict[str, Any]) -> None:
    h = WindowHarness(store, fixed_config(aggregator))
    out = h.run([rec(10, 3), rec(5, 7), rec(20, 4), rec(5, 2), rec(20, 9), rec(70, 0)])
    assert summary(out) == [("onTime", f"p_{aggregator}", 0, value)]
    assert type(out[0].value) is type(value)
    assert out[0].attr["windowAggregator"]["calDetail"] == detail
    assert out[0].attr["windowAggregator"]["calType"] == aggregator


LATENESS = [
    pytest.param(
        0,
        [("onTime", "p_sum", 0, 1), ("onTime", "p_sum", 60, 2)],
        [30, 40],
        id="no-lateness-drops-late-data",
    ),
    pytest.param(
        2,
        [("onTime", "p_sum", 0, 1), ("late", "p_sum", 0, 4), ("onTime", "p_sum", 60, 2)],
        [40],
        id="within-lateness-updates-and-re-emits",
    ),
]


@pytest.mark.parametrize(("latency", "expected", "rejected_at"), LATENESS)
def test_lateness(store: LmdbStateStore, latency: int, expected: list[Any], rejected_at: list[int]) -> None:
    h = WindowHarness(store, fixed_config(latency=latency))
    # 61 s fires [0, 60); 30 s is late; 181 s fires [60, 120) and completes [0, 60) for a 2 min
    # lateness (60 + 120 <= 181); 40 s is then too late either way.
    for batch in ([rec(0, 1), rec(61, 2)], [rec(30, 3)], [rec(181, 5), rec(40, 6)]):
        h.run(batch)
    assert summary(h.outputs) == expected
    assert [(r.time - BASE_MS) // 1000 for r, _ in h.rejections] == rejected_at
    assert all("late record for m1::p_sum" in reason for _, reason in h.rejections)
    if latency:
        assert h.outputs[1].attr["windowAggregator"]["lastOutput"] == 1


def test_a_late_record_for_a_window_with_no_state_yet_is_emitted_as_late(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config(latency=5))
    h.run([rec(125, 1), rec(10, 4)])
    assert summary(h.outputs) == [("late", "p_sum", 0, 4)]


def test_state_keeps_only_live_windows(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config(latency=2))
    h.run([rec(s, 1) for s in range(0, 600, 10)])
    # event time 590 s, lateness 120 s: a window lives while its end > 470 s
    assert [(w["startTime"] - BASE_MS) // 1000 for w in h.windows()] == [420, 480, 540]
    h.run([rec(900, 1)])
    assert [(w["startTime"] - BASE_MS) // 1000 for w in h.windows()] == [900]


EARLY = [
    pytest.param(
        {"type": "data"},
        [rec(10, 1), rec(20, 2), rec(70, 4)],
        [
            ("early", "p_sum", 0, 1),
            ("early", "p_sum", 0, 3),
            ("onTime", "p_sum", 0, 3),
            ("early", "p_sum", 60, 4),
        ],
        id="on-every-record",
    ),
    pytest.param(
        {"type": "frequency", "minutes": 5},
        # 10 minute windows: 6 min crosses 5 min, 9 min crosses nothing, 11 min crosses 10 min
        [rec(60, 1), rec(240, 2), rec(360, 4), rec(540, 8), rec(660, 16)],
        [
            ("early", "p_sum", 0, 7),
            ("onTime", "p_sum", 0, 15),
            ("early", "p_sum", 600, 16),
        ],
        id="when-event-time-crosses-n-minutes",
    ),
]


@pytest.mark.parametrize(("early", "batch", "expected"), EARLY)
def test_early_output(
    store: LmdbStateStore, early: dict[str, Any], batch: list[Record], expected: list[Any]
) -> None:
    size = 10 if early["type"] == "frequency" else 1
    h = WindowHarness(store, fixed_config(size=size, early=early))
    h.run(batch)
    assert summary(h.outputs) == expected


def test_sliding_windows_count_each_record_in_every_window_holding_it(store: LmdbStateStore) -> None:
    h = WindowHarness(store, sliding_config())
    h.run([rec(30, 1), rec(90, 1), rec(150, 1), rec(400, 1)])
    assert summary(h.outputs) == [
        ("onTime", "p_3m", -120, 1),
        ("onTime", "p_3m", -60, 2),
        ("onTime", "p_3m", 0, 3),
        ("onTime", "p_3m", 60, 2),
        ("onTime", "p_3m", 120, 1),
    ]
    assert [((w["startTime"] - BASE_MS) // 1000, w["endTime"] - w["startTime"]) for w in h.windows()] == [
        (240, 180_000),
        (300, 180_000),
        (360, 180_000),
    ]


def test_a_sliding_rule_keeps_one_pane_per_slide_that_a_live_window_spans(store: LmdbStateStore) -> None:
    h = WindowHarness(store, sliding_config(latency=1))
    h.run([rec(s, 1) for s in range(0, 1200, 20)])
    # event time 1180 s, lateness 60 s: a window lives while its end > 1120 s, so from start 960 s
    state = h.state()
    assert state is not None
    assert [((p.start - BASE_MS) // 1000, p.count) for p in state.rules[0].panes] == [
        (960, 3),
        (1020, 3),
        (1080, 3),
        (1140, 3),
    ]
    assert [((w["startTime"] - BASE_MS) // 1000, w["count"]) for w in h.windows()] == [
        (960, 9),
        (1020, 9),
        (1080, 6),
        (1140, 3),
    ]


def test_a_sliding_record_counts_in_its_windows_that_are_still_live(store: LmdbStateStore) -> None:
    h = WindowHarness(store, sliding_config(aggregator="sum"))
    # event time 250 s: [0, 180) has completed, [60, 240) too, [120, 300) is open.
    h.run([rec(10, 1), rec(250, 2), rec(130, 4)])
    assert summary(h.outputs) == [
        ("onTime", "p_3m", -120, 1),
        ("onTime", "p_3m", -60, 1),
        ("onTime", "p_3m", 0, 1),
    ]
    assert h.rejections == []
    h.run([rec(40, 8)])
    assert len(h.rejections) == 1
    assert h.rejections[0][1].startswith("late record for m1::p_3m: every window holding time")


@pytest.mark.parametrize("value", ["n/a", True, None, float("nan"), float("inf")])
def test_values_that_are_not_finite_numbers_go_to_the_error_lane(store: LmdbStateStore, value: Any) -> None:
    h = WindowHarness(store, fixed_config())
    out = h.run([rec(0, value), rec(70, 1)])
    assert out == []
    assert [(r.value is value or r.value != r.value, reason) for r, reason in h.rejections] == [
        (True, f"value {value!r} of p is not a finite number")
    ]
    state = h.state()
    assert state is not None and state.event_time == at(70)


def test_records_of_other_points_and_models_pass_by_without_state(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config())
    assert h.run([rec(0, 1, point="q"), rec(0, 1, model="m2"), rec(70, 1, model="m2")]) == []
    assert (h.keyed.edits, h.keyed.loads) == (0, 0)
    assert list(store.scan(h.stage)) == []


def test_one_live_working_set_per_batch(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config(early={"type": "data"}))
    h.run([rec(s, 1, asset=f"a{s % 7}") for s in range(0, 300, 3)])
    h.run([rec(s, 1, asset=f"a{s % 5}") for s in range(300, 600, 3)])
    assert (h.keyed.edits, h.keyed.loads) == (2, 0)
    assert h.keyed.saves == 7  # once per key, its first state: a0 to a6 in the first batch


def test_several_rules_on_one_point_share_the_event_time(store: LmdbStateStore) -> None:
    config = fixed_config("avg")
    config["rules"].append({**config["rules"][0], "aggregator": "max", "outputPoint": "m1::p_max"})
    h = WindowHarness(store, config)
    h.run([rec(0, 2), rec(10, 6), rec(60, 1)])
    assert summary(h.outputs) == [("onTime", "p_avg", 0, 4.0), ("onTime", "p_max", 0, 6)]


def test_state_written_under_other_rules_is_realigned(store: LmdbStateStore) -> None:
    WindowHarness(store, fixed_config("sum")).run([rec(0, 2)])
    config = fixed_config("sum")
    config["rules"].insert(0, {**config["rules"][0], "aggregator": "max", "outputPoint": "m1::p_max"})
    h = WindowHarness(store, config)
    h.run([rec(10, 5), rec(60, 0)])
    assert summary(h.outputs) == [("onTime", "p_max", 0, 5), ("onTime", "p_sum", 0, 7)]


def test_state_item_lists_every_live_window_with_its_partials(store: LmdbStateStore) -> None:
    h = WindowHarness(store, fixed_config("avg", latency=1))
    h.run([rec(10, 2), rec(70, 4), rec(20, 3)])
    state = h.state()
    assert state is not None
    first = {
        "outputPoint": "m1::p_avg",
        "startTime": at(0),
        "endTime": at(60),
        "aggregator": "avg",
        "value": 2.5,
        "count": 2,
        "sum": 5,
        "min": 2,
        "max": 3,
        "first": 2,
        "firstTime": at(10),
        "last": 3,
        "lastTime": at(20),
        "lastOutput": 2.5,
    }
    assert state_item("a1", "p", state) == {
        "assetId": "a1",
        "pointId": "p",
        "eventTime": at(70),
        "windows": [
            first,
            {
                **first,
                "startTime": at(60),
                "endTime": at(120),
                "value": 4.0,
                "count": 1,
                "sum": 4,
                "min": 4,
                "max": 4,
                "first": 4,
                "firstTime": at(70),
                "last": 4,
                "lastTime": at(70),
                "lastOutput": None,
            },
        ],
    }


def test_both_operators_are_registered_with_the_window_state_kind() -> None:
    for op in (FIXED_TIME_WINDOW_AGGREGATOR, SLIDING_TIME_WINDOW_AGGREGATOR):
        assert get_operator(op.name) is op
        assert op.state_kind == "window" and op.state_view is state_item


BAD_CONFIGS = [
    pytest.param(FixedWindowConfig, {**ISSUE_CONFIG, "latencyMinutes": 61}, id="latency-over-60"),
    pytest.param(FixedWindowConfig, {**ISSUE_CONFIG, "latencyMinutes": -1}, id="negative-latency"),
    pytest.param(
        FixedWindowConfig, {**ISSUE_CONFIG, "earlyTrigger": {"type": "frequency"}}, id="frequency-without-n"
    ),
    pytest.param(FixedWindowConfig, {**ISSUE_CONFIG, "earlyTrigger": {"type": "wall"}}, id="unknown-trigger"),
    pytest.param(
        FixedWindowConfig,
        {"rules": [{**ISSUE_CONFIG["rules"][0], "aggregator": "median"}]},
        id="unknown-aggregator",
    ),
    pytest.param(
        FixedWindowConfig,
        {"rules": [{**ISSUE_CONFIG["rules"][0], "outputPoint": "m2::p_avg"}]},
        id="output-of-another-model",
    ),
    pytest.param(FixedWindowConfig, {"rules": [ISSUE_CONFIG["rules"][0]] * 2}, id="two-rules-one-output"),
    pytest.param(
        SlidingWindowConfig,
        {"rules": [{**sliding_config()["rules"][0], "slideSize": 2}]},
        id="size-not-a-multiple-of-the-slide",
    ),
    pytest.param(SlidingWindowConfig, ISSUE_CONFIG, id="sliding-without-slide"),
]


@pytest.mark.parametrize(("model", "config"), BAD_CONFIGS)
def test_invalid_configs_are_refused(model: type[FixedWindowConfig], config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(config)


def test_valid_configs_are_accepted() -> None:
    assert FixedWindowConfig.model_validate(ISSUE_CONFIG).latencyMinutes == 0
    assert SlidingWindowConfig.model_validate(sliding_config(latency=60)).rules[0].slide_ms == 60_000
    config = FixedWindowConfig.model_validate(
        {**ISSUE_CONFIG, "earlyTrigger": {"type": "frequency", "minutes": 5}}
    )
    assert config.earlyTrigger is not None and config.earlyTrigger.type == "frequency"


def test_a_key_seen_under_two_models_is_realigned_not_mixed_up(store: LmdbStateStore) -> None:
    config = fixed_config("sum")
    config["rules"].append({**config["rules"][0], "inputPoint": "m2::p", "outputPoint": "m2::p_m2"})
    h = WindowHarness(store, config)
    h.run([rec(0, 1), rec(10, 2, model="m2"), rec(70, 4, model="m2")])
    assert summary(h.outputs) == [("onTime", "p_m2", 0, 2)]
    state = h.state()
    assert state is not None and [rw.output for rw in state.rules] == ["m2::p_m2"]


@pytest.mark.parametrize(
    "other", [{"aggregator": "max"}, {"windowSize": 2}, {"slideSize": 30, "slideUnit": "second"}]
)
def test_a_cached_state_aligned_to_other_rules_of_the_same_output_is_realigned(
    tmp_path: Path, other: dict[str, Any]
) -> None:
    """A state entry is known aligned to a rule by identity with the rule's own copy of its
    output point. A state still cached from an engine with other rules for the same output
    point (equal strings, other aggregator, size or slide) must not pass for aligned: it gives
    what the same state read back from the store gives, which is compared in full."""
    first = fixed_config("sum")
    then = fixed_config("sum")
    then["rules"][0] |= other
    before, after = [rec(0, 2), rec(10, 3)], [rec(20, 7), rec(50, 4), rec(130, 1)]

    cached = LmdbStateStore(tmp_path / "cached")
    a = WindowHarness(cached, first, reload=False)
    a.run(before)
    b = WindowHarness(cached, then, reload=False)
    b.keyed = a.keyed  # the same cache, holding the state aligned by a's rule
    spec_a, spec_b = (h.op._engine._by_output["m1::p_sum"] for h in (a, b))
    assert spec_a.output == spec_b.output and spec_a.output is not spec_b.output
    state = a.keyed.inner.load([("a1", "p")])[("a1", "p")]
    assert state is not None and state.rules[0].output is spec_a.output
    got = b.run(after)

    stored = LmdbStateStore(tmp_path / "stored")
    WindowHarness(stored, first).run(before)
    expected = WindowHarness(stored, then).run(after)  # state decoded from the store

    assert summary(got) == summary(expected)
    assert list(cached.scan(STAGE)) == list(stored.scan(STAGE))
    cached.close()
    stored.close()


@given(st.sampled_from(["m::p", "a::b", "model::point_out"]))
def test_every_rule_spec_holds_an_output_token_of_its_own(ref: str) -> None:
    one, two = RuleSpec(ref, "sum", 60_000, 60_000), RuleSpec(ref, "max", 60_000, 60_000)
    assert one.output == two.output == ref
    assert one.output is not two.output
    assert one.output is not ref and two.output is not ref
