"""SimplifiedTimeWindowAggregator: the documented table, several rules and models on one point,
and the running sums against a plain reference under any split into batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from window_testkit import BASE_MS, CountingState, RecordingContext, rec

from streamcalc.library.windows.simplified import (
    SimplifiedTimeWindowAggregator,
    SimplifiedWindowConfig,
    SumState,
    state_item,
)
from streamcalc.records import Record
from streamcalc.runtime.keyed_state import StageState
from streamcalc.state.lmdb import LmdbStateStore

_stages = itertools.count()


class SumHarness:
    """Runs batches through the operator and commits each like the runner; every batch starts
    from a fresh cache, so state goes through its encoding in between."""

    def __init__(self, store: LmdbStateStore, rules: list[dict[str, Any]]) -> None:
        self.op = SimplifiedTimeWindowAggregator(SimplifiedWindowConfig.model_validate({"rules": rules}))
        self.store = store
        self.stage = f"SimplifiedTimeWindowAggregator_{next(_stages)}"
        self.keyed = CountingState(StageState(store, self.stage, SumState))
        self.outputs: list[Record] = []
        self.rejections: list[tuple[Record, str]] = []

    def run(self, batch: list[Record]) -> list[Record]:
        self.keyed.inner.discard()
        ctx = RecordingContext(self.keyed, self.stage)
        out = self.op.process(batch, ctx)
        cp = self.store.checkpoint()
        self.store.commit({self.stage: self.keyed.inner.drain()}, cp, cp.advance({}))
        self.outputs.extend(out)
        self.rejections.extend(ctx.rejections)
        return out

    def item(self, asset: str = "a1", point: str = "p") -> dict[str, Any]:
        """The key's Get Stage State item, as the API answers it (JSON)."""
        self.keyed.inner.discard()
        state = self.keyed.inner.load([(asset, point)])[(asset, point)]
        assert state is not None
        item: dict[str, Any] = msgspec.to_builtins(state_item(asset, point, state))
        return item


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStateStore]:
    s = LmdbStateStore(tmp_path / "state")
    yield s
    s.close()


def rule(size: int, unit: str = "minute", output: str = "m1::p_sum", point: str = "m1::p") -> dict[str, Any]:
    return {"inputPoint": point, "windowSize": size, "windowUnit": unit, "outputPoint": output}


def sums(out: list[Record]) -> list[tuple[str, int, Any]]:
    """(output point, window start in s from BASE, running sum) per output."""
    return [(r.pointId, (r.time - BASE_MS) // 1000, r.value) for r in out]


def test_the_documented_table_later_same_and_earlier_windows(store: LmdbStateStore) -> None:
    h = SumHarness(store, [rule(1)])
    out = h.run([rec(0, 1), rec(30, 2), rec(61, 4), rec(20, 8), rec(90, 0.5)])
    assert sums(out) == [("p_sum", 0, 1), ("p_sum", 0, 3), ("p_sum", 60, 4), ("p_sum", 60, 4.5)]
    assert [(r.time, reason) for r, reason in h.rejections] == [
        (BASE_MS + 20_000, f"late record for m1::p_sum: its window closed before {BASE_MS + 20_000}")
    ]
    assert (out[0].attr, out[0].dq, out[0].modelIdPath) == ({}, None, "/m1")
    assert h.item()["windows"] == [
        {
            "outputPoint": "m1::p_sum",
            "startTime": BASE_MS + 60_000,
            "endTime": BASE_MS + 120_000,
            "sum": 4.5,
            "count": 2,
        }
    ]


def test_outputs_carry_an_empty_attr_and_leave_the_inputs_alone(store: LmdbStateStore) -> None:
    h = SumHarness(store, [rule(1), rule(1, "hour", "m1::p_hour")])
    tagged = msgspec.structs.replace(rec(0, 1), attr={"source": "meter"})
    out = h.run([tagged, rec(10, 2)])
    assert [r.attr for r in out] == [{}, {}, {}, {}]
    assert tagged.attr == {"source": "meter"}


def test_two_rules_on_one_point_keep_their_own_windows_in_rule_order(store: LmdbStateStore) -> None:
    h = SumHarness(store, [rule(1, "day", "m1::p_day"), rule(15, "minute", "m1::p_15m")])
    h.run([rec(0, 1), rec(600, 2)])
    out = h.run([rec(1000, 4)])  # a new 15-minute window; the same day
    assert sums(h.outputs) == [
        ("p_day", 0, 1),
        ("p_15m", 0, 1),
        ("p_day", 0, 3),
        ("p_15m", 0, 3),
        ("p_day", 0, 7),
        ("p_15m", 900, 4),
    ]
    assert [w["outputPoint"] for w in h.item()["windows"]] == ["m1::p_day", "m1::p_15m"]
    assert len(out) == 2


def test_a_key_seen_under_two_models_is_realigned_to_each_records_rules(store: LmdbStateStore) -> None:
    h = SumHarness(store, [rule(1), rule(1, output="m2::p_m2", point="m2::p")])
    out = h.run([rec(0, 1), rec(10, 2, model="m2"), rec(20, 4), rec(30, 8, model="m2")])
    # each switch keeps only the windows of the record's own rules, as a re-released pipeline would
    assert sums(out) == [("p_sum", 0, 1), ("p_m2", 0, 2), ("p_sum", 0, 4), ("p_m2", 0, 8)]
    assert [w["outputPoint"] for w in h.item()["windows"]] == ["m2::p_m2"]


@pytest.mark.parametrize("value", ["n/a", True, None])
def test_values_that_are_not_numbers_go_to_the_error_lane_once(store: LmdbStateStore, value: Any) -> None:
    h = SumHarness(store, [rule(1), rule(1, "hour", "m1::p_hour")])
    assert h.run([rec(0, value)]) == []
    assert [reason for _, reason in h.rejections] == [f"value {value!r} of p is not a number"]
    assert (h.keyed.edits, h.keyed.loads, h.keyed.saves) == (1, 0, 0)
    assert list(store.scan(h.stage)) == []


def test_one_live_working_set_per_batch_carries_the_sums_across_batches(store: LmdbStateStore) -> None:
    h = SumHarness(store, [rule(1)])
    h.run([rec(0, 1, asset="a1"), rec(1, 2, asset="a2"), rec(2, 4, asset="a1")])
    h.run([rec(3, 8, asset="a1"), rec(61, 16, asset="a2")])
    assert (h.keyed.edits, h.keyed.loads) == (2, 0)
    assert h.keyed.saves == 2  # once per key, its first state
    assert [(r.assetId, r.value) for r in h.outputs] == [
        ("a1", 1),
        ("a2", 2),
        ("a1", 5),
        ("a1", 13),
        ("a2", 16),
    ]
    assert [(w["sum"], w["count"]) for w in h.item("a1")["windows"]] == [(13, 3)]


PATHS = {"m1": "/m1", "m2": "/m1/m2", "m3": "/m3"}
"""m2 derives from m1, so its records also match m1's rules; m3 matches no rule."""

Rule = tuple[str, str, int]
"""(input point id, modelId, window size in s)"""
Event = tuple[str, str, str, int, Any]
"""(asset, point id, modelId, seconds from BASE, value)"""

rule_sets = st.lists(
    st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["m1", "m2"]), st.sampled_from([10, 30, 60, 120])),
    min_size=1,
    max_size=4,
)
events = st.lists(
    st.tuples(
        st.sampled_from(["a1", "a2"]),
        st.sampled_from(["p", "q"]),
        st.sampled_from(["m1", "m1", "m2", "m3"]),
        st.integers(0, 600),
        st.one_of(
            st.integers(-5, 5), st.integers(-20, 20).map(lambda n: n / 4), st.sampled_from(["x", None, True])
        ),
    ),
    max_size=50,
)


Windows = dict[tuple[str, str], dict[int, tuple[int, Any]]]
"""(asset, point) -> rule index -> (window start in ms, sum)"""


def reference(
    rules: list[Rule], evs: list[Event]
) -> tuple[list[tuple[str, str, str, int, Any]], int, Windows]:
    """(asset, output modelId, output point, window start in ms, running sum) per output, the
    rejection count and the windows left. A key keeps only the windows of the rules its latest
    record matched."""
    windows: Windows = {}
    out, rejected = [], 0
    for asset, point, model, seconds, value in evs:
        mine = [
            (i, m, size)
            for i, (p, m, size) in enumerate(rules)
            if p == point and (m == model or m in PATHS[model].split("/"))
        ]
        if not mine:
            continue
        if type(value) not in (int, float):
            rejected += 1
            continue
        t = BASE_MS + seconds * 1000
        before, current = windows.get((asset, point), {}), {}
        for i, m, size in mine:
            start = t - t % (size * 1000)
            window = before.get(i)
            if window is None or start > window[0]:
                window = (start, value)
            elif start == window[0]:
                window = (start, window[1] + value)
            else:
                rejected += 1
                current[i] = window
                continue
            current[i] = window
            out.append((asset, m, f"{point}_{i}", start, window[1]))
        windows[(asset, point)] = current
    return out, rejected, windows


@settings(max_examples=200, deadline=None)
@given(rules=rule_sets, evs=events, cuts=st.lists(st.integers(0, 50), max_size=5))
def test_running_sums_equal_the_reference_for_any_models_points_and_split(
    tmp_path_factory: pytest.TempPathFactory, rules: list[Rule], evs: list[Event], cuts: list[int]
) -> None:
    store = LmdbStateStore(tmp_path_factory.mktemp("simplified") / "state")
    try:
        h = SumHarness(
            store,
            [rule(size, "second", f"{m}::{p}_{i}", f"{m}::{p}") for i, (p, m, size) in enumerate(rules)],
        )
        records = [
            msgspec.structs.replace(
                rec(seconds, value, asset=asset, point=point, model=model), modelIdPath=PATHS[model]
            )
            for asset, point, model, seconds, value in evs
        ]
        bounds = [0, *sorted(c for c in cuts if c < len(records)), len(records)]
        for lo, hi in itertools.pairwise(bounds):
            h.run(records[lo:hi])
        expected, rejected, windows = reference(rules, evs)
        assert [(r.assetId, r.modelId, r.pointId, r.time, r.value) for r in h.outputs] == expected
        assert len(h.rejections) == rejected
        outputs = {f"{m}::{p}_{i}": i for i, (p, m, _) in enumerate(rules)}
        assert {
            (a, p): {outputs[w["outputPoint"]]: (w["startTime"], w["sum"]) for w in h.item(a, p)["windows"]}
            for a, p, _ in list(store.scan(h.stage))
        } == windows
    finally:
        store.close()
