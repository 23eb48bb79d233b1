"""Rules every processor of the library keeps, checked for each registered operator.

A new operator gets these checks by adding a working sample config to SAMPLES (the first
test fails until it does): an empty batch does nothing; bad values are refused through the
error lane, never raised; and splitting the input into batches with a worker restart
between them changes neither the outputs nor the state - what exactly-once recovery needs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from library_support import BASE_MS, RecordingContext, rec

from streamcalc.library import OperatorType, get_operator, operator_names
from streamcalc.records import Record
from streamcalc.runtime.keyed_state import StageState
from streamcalc.state.lmdb import open_pipeline_state

P, Q = (
    {"inputPoint": "m1::p", "outputPoint": "m1::p_out"},
    {"inputPoint": "m1::q", "outputPoint": "m1::q_out"},
)
WINDOW = {"windowSize": 1, "windowUnit": "minute"}
SAMPLES: dict[str, dict[str, Any]] = {
    "PointSelector": {"points": ["m1::p", "m1::q"]},
    "SimplifiedTimeWindowAggregator": {
        "rules": [{**P, **WINDOW}, {**Q, "windowSize": 1, "windowUnit": "hour"}]
    },
    "FixedTimeWindowAggregator": {
        "latencyMinutes": 1,
        "rules": [{**P, **WINDOW, "aggregator": "avg"}, {**Q, **WINDOW, "aggregator": "max"}],
    },
    "SlidingTimeWindowAggregator": {
        "latencyMinutes": 1,
        "rules": [
            {
                **P,
                "windowSize": 2,
                "windowUnit": "minute",
                "slideSize": 1,
                "slideUnit": "minute",
                "aggregator": "sum",
            }
        ],
    },
    "LastRecordAppender": {"rules": [P, {**Q, "condition": {"op": ">", "value": 1}}]},
    "LastChangedRecordAppender": {"rules": [P, Q]},
    "LatestRecordMerger": {
        "cacheExpireMinutes": 5,
        "rules": [
            {"inputPoint": "m1::p"},
            {"inputPoint": "m1::q", "isTrigger": True, "outputPoint": "m1::merged"},
        ],
    },
    "LatePointTagger": {"rules": [P, Q]},
    "RecordFilter": {
        "filters": [
            {"expression": "record.value > 1"},
            {"expression": "record.pointId == 'q' || record.value == 'text'", "outputPoint": "m1::q_out"},
        ]
    },
    "OffLimitTagger": {"rules": [{**P, "interval": "[0,2)"}, {**Q, "interval": "(-inf,1]"}]},
    "CumulantDecomposer": {
        "rules": [
            {**P, "scale": {"type": "fixed", "value": 2}, "slope": {"type": "fixed", "min": 0, "max": 100}}
        ]
    },
    "PowerIntegrator": {
        "rules": [{**P, "method": "average", "threshold": "[0,3)"}, {**Q, "method": "instant"}]
    },
    "RecordSorterByTime": {},
    "Trash": {},
    "BatchMerger": {"inputPoints": ["m1::p", "m1::q"], "outputPoint": "m1::merged", "fields": ["assetId"]},
    "Normalizer": {"type": "cal", "points": ["m1::p"]},
    "RecordCapturer": {"points": ["m1::p", "m1::q"]},
    "RecordRestorer": {
        "rules": [{"inputPoint": "m1::q", "restorePoint": "m1::p", "outputPoint": "m1::p_out"}]
    },
}
BATCH_SCOPED = {"RecordSorterByTime", "BatchMerger"}
"""Their output depends on where batches are cut, as in EnOS; recovery replays the same cuts."""


def processors() -> list[str]:
    return [n for n in operator_names() if (op := get_operator(n)) is not None and op.role == "processor"]


def records(n: int, seed: int) -> list[Record]:
    """Three assets, two selected points and one other; time mostly forward, sometimes back."""
    rng = random.Random(seed)
    out = []
    t = BASE_MS
    for _ in range(n):
        t += rng.choice([0, 7_000, 15_000, 31_000, -45_000])
        value: Any = rng.choice([1, 2, 2.5, 0, -1, 3])
        out.append(rec(f"a{rng.randrange(3)}", rng.choice(["p", "p", "q", "x"]), max(t, BASE_MS), value))
    return out


class Stage:
    """One stage of an operator over a real LMDB store; `restart` is what a new worker sees."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        op = get_operator(name)
        assert op is not None and op.build is not None
        self.op: OperatorType[Any] = op
        self.store = open_pipeline_state(tmp_path, "p1")
        self.rejected: list[tuple[Record, str]] = []
        self.restart()

    def restart(self) -> None:
        assert self.op.build is not None
        self.operator = self.op.build(self.op.config.model_validate(SAMPLES[self.op.name]))
        binding = self.op.state_binding("s")
        self.state = None if binding is None else StageState(self.store, "s", binding[1])

    def run(self, batch: list[Record]) -> list[Record]:
        ctx = RecordingContext("s", self.state)  # type: ignore[arg-type]
        out = self.operator.process(batch, ctx)
        self.rejected.extend(ctx.rejected)
        if self.state is not None:
            cp = self.store.checkpoint()
            self.store.commit({"s": self.state.drain()}, cp, cp.advance({}))
        return out

    def stored(self) -> list[tuple[str, str, bytes]]:
        return list(self.store.scan("s"))

    def close(self) -> None:
        self.store.close()


def test_every_processor_has_a_sample() -> None:
    assert sorted(processors()) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_empty_batch_does_nothing(tmp_path: Path, name: str) -> None:
    stage = Stage(tmp_path, name)
    assert stage.run([]) == [] and stage.stored() == [] and stage.rejected == []
    stage.close()


ODD_VALUES: list[Any] = ["text", None, True, {"nested": {"deeper": [1, None]}}, [1, 2]]
"""Values no computation takes; a record holds a map or a list only if an operator put it there."""
REFUSE_ODD_VALUES = {
    "SimplifiedTimeWindowAggregator": {"p", "q"},
    "FixedTimeWindowAggregator": {"p", "q"},
    "SlidingTimeWindowAggregator": {"p"},
    "OffLimitTagger": {"p", "q"},
    "PowerIntegrator": {"p", "q"},
}
"""The operators that compute with a record's value, and the points of SAMPLES they read; the
others pass odd values on or never look at them."""


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_odd_values_are_refused_or_passed_never_raised(tmp_path: Path, name: str, value: Any) -> None:
    stage = Stage(tmp_path, name)
    batch = [
        rec("a1", "p", BASE_MS, 1),
        rec("a1", "p", BASE_MS + 1, value),
        rec("a1", "q", BASE_MS + 2, value),
    ]
    stage.run(batch)
    assert sorted(r.pointId for r, _ in stage.rejected) == sorted(REFUSE_ODD_VALUES.get(name, ()))
    assert all(r.value == value and repr(value) in reason for r, reason in stage.rejected)
    stage.close()


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - BATCH_SCOPED))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_splits_and_restarts_change_nothing(tmp_path: Path, name: str, seed: int) -> None:
    data = records(120, seed)
    whole = Stage(tmp_path / "whole", name)
    expected = whole.run(data)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), 6))
    split = Stage(tmp_path / "split", name)
    got: list[Record] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(data)], strict=True):
        got.extend(split.run(data[lo:hi]))
        split.restart()
    assert [msgspec.json.encode(r) for r in got] == [msgspec.json.encode(r) for r in expected]
    assert split.stored() == whole.stored()
    assert [(r.time, reason) for r, reason in split.rejected] == [
        (r.time, reason) for r, reason in whole.rejected
    ]
    whole.close()
    split.close()


@pytest.mark.parametrize("name", sorted(n for n in SAMPLES if get_operator(n).state_kind != "none"))  # type: ignore[union-attr]
def test_state_items_name_their_key(tmp_path: Path, name: str) -> None:
    stage = Stage(tmp_path, name)
    stage.run(records(60, 7))
    op = stage.op
    assert op.state_type is not None and op.state_view is not None
    decode = msgspec.msgpack.Decoder(op.state_type).decode
    items = [(a, p, msgspec.to_builtins(op.state_view(a, p, decode(raw)))) for a, p, raw in stage.stored()]
    assert items and all(item["assetId"] == a and item["pointId"] == p for a, p, item in items)
    stage.close()


def test_simplified_window_state_follows_changed_rules(tmp_path: Path) -> None:
    """A pipeline re-released with other rules resumes on its old state instead of failing."""
    stage = Stage(tmp_path, "SimplifiedTimeWindowAggregator")
    stage.run([rec("a1", "p", BASE_MS, 2)])
    changed = {"rules": [{"inputPoint": "m1::p", "outputPoint": "m1::other", **WINDOW}, {**P, **WINDOW}]}
    assert stage.op.build is not None
    stage.operator = stage.op.build(stage.op.config.model_validate(changed))
    out = stage.run([rec("a1", "p", BASE_MS + 1, 3)])
    assert [(r.pointId, r.value) for r in out] == [("other", 3), ("p_out", 5)]
    stage.close()
