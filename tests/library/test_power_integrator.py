"""The energy building blocks: PowerIntegrator (P1·h for instant power, (P1 + P2)/2·h for average
power, against the sample a LastRecordAppender attached), the appenders' `onlyNewer`, and the
meter baseline that CumulantDecomposer reads from a LastChangedRecordAppender."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_support import BASE_MS, OperatorHarness, PipelineRun, open_store, pipeline, rec
from pydantic import ValidationError
from stateless_support import run_stateless

from streamcalc.library.appenders import LAST_CHANGED_RECORD_APPENDER, LAST_RECORD_APPENDER
from streamcalc.library.common.attrs import POWER_ATTR
from streamcalc.library.power_integrator import POWER_INTEGRATOR, PowerIntegratorConfig
from streamcalc.records import Record

T = BASE_MS
MIN = 60_000
H = 3_600_000


def sample(time: int, power: Any, previous: tuple[int, Any] | None) -> Record:
    attr = {} if previous is None else {"lastRecordAppender": {"time": previous[0], "value": previous[1]}}
    return rec("a1", "p_prev", time, power, attr=attr)


def rule(method: str = "instant", **over: Any) -> dict[str, Any]:
    return {"inputPoint": "m1::p_prev", "outputPoint": "m1::energy", "method": method, **over}


def integrate(
    rules: list[dict[str, Any]], batch: list[Record]
) -> tuple[list[Record], list[tuple[Record, str]]]:
    return run_stateless(POWER_INTEGRATOR, {"rules": rules}, batch)


CASES = [
    # 10 kW held for 15 minutes: 10 * 0.25 = 2.5 kWh
    pytest.param(rule(), sample(T + 15 * MIN, 30, (T, 10)), 2.5, id="instant-uses-the-earlier-power"),
    # (10 + 30) / 2 kW for 15 minutes: 20 * 0.25 = 5 kWh
    pytest.param(rule("average"), sample(T + 15 * MIN, 30, (T, 10)), 5.0, id="average-of-both-samples"),
    pytest.param(rule(), sample(T + H, 0, (T, 0)), 0.0, id="zero-power-zero-energy"),
    # a 2-hour gap: 4 kW * 2 h = 8 kWh
    pytest.param(rule(), sample(T + 2 * H, 1, (T, 4)), 8.0, id="a-gap-is-one-long-interval"),
    pytest.param(rule(), sample(T + H, 7, None), None, id="first-sample-no-output"),
    pytest.param(rule(), sample(T, 7, (T, 5)), None, id="same-time-no-output"),
    pytest.param(rule(), sample(T, 7, (T + H, 5)), None, id="older-than-previous-no-output"),
    pytest.param(rule(), sample(T + H, 7, (T, "5")), None, id="previous-not-a-number-skipped"),
    pytest.param(rule(threshold="[0,10]"), sample(T + H, 10, (T, 0)), 0.0, id="closed-ends-inside"),
    pytest.param(rule(threshold="[0,10)"), sample(T + H, 10, (T, 0)), None, id="open-end-current-outside"),
    pytest.param(rule(threshold="(0,10]"), sample(T + H, 10, (T, 0)), None, id="open-end-previous-outside"),
    # -1 kW is below (-inf, 5]? no: inside; 5 is inside; -1 * 1 h = -1 kWh (export)
    pytest.param(rule(threshold="(-inf,5]"), sample(T + H, 5, (T, -1)), -1.0, id="infinite-lower-end"),
]


@pytest.mark.parametrize(("config", "record", "expected"), CASES)
def test_power_integrator_table(config: dict[str, Any], record: Record, expected: float | None) -> None:
    out, rejected = integrate([config], [record])
    assert rejected == []
    if expected is None:
        assert out == []
        return
    (o,) = out
    assert o.value == pytest.approx(expected)
    assert (o.assetId, o.modelId, o.pointId, o.time) == ("a1", "m1", "energy", record.time)


def test_output_keeps_the_record_and_adds_the_detail() -> None:
    record = sample(T + 30 * MIN, 6, (T, 2))
    out, _ = integrate(
        [rule(), rule("average", outputPoint="m1::energy_avg")], [record, rec("a1", "x", T, 1)]
    )
    # instant 2 kW * 0.5 h = 1 kWh; average (2 + 6) / 2 kW * 0.5 h = 2 kWh
    assert [(o.pointId, o.value) for o in out] == [("energy", 1.0), ("energy_avg", 2.0)]
    assert out[0].attr["lastRecordAppender"] == record.attr["lastRecordAppender"]
    assert out[0].attr[POWER_ATTR] == {
        "method": "instant",
        "previousValue": 2,
        "previousTime": T,
        "hours": 0.5,
    }
    assert POWER_ATTR not in record.attr


@pytest.mark.parametrize("power", ["5", None, True, float("nan"), float("inf")])
def test_a_power_that_is_not_a_finite_number_goes_to_the_error_lane(power: Any) -> None:
    out, rejected = integrate([rule(), rule(outputPoint="m1::e2")], [sample(T + H, power, (T, 1))])
    assert out == [] and len(rejected) == 1 and "is not a finite number" in rejected[0][1]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"method": "mean"}, "rules.0.method"),
        ({"threshold": "[5,1]"}, "rules.0.threshold"),
        ({"threshold": "0..10"}, "rules.0.threshold"),
        ({"outputPoint": "m2::energy"}, "rules.0"),
        ({"outputPoint": "m1::p_prev"}, "rules.0"),
    ],
)
def test_config_errors_name_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        PowerIntegratorConfig.model_validate({"rules": [rule(**over)]})
    assert ".".join(str(x) for x in e.value.errors()[0]["loc"]) == field


# --- the appender decides what an out-of-threshold sample does ------------------------------

THRESHOLD = "[0,100]"
LAST_VALUE = [{"op": ">=", "value": 0}, {"op": "<=", "value": 100}]


def chain(samples: list[tuple[int, float]], method: str, condition: Any, batches: int = 1) -> float:
    """Total energy of LastRecordAppender(condition) -> PowerIntegrator(method, THRESHOLD), with
    the appender's state in a real LMDB store committed after every batch."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp))
        appender = OperatorHarness(
            store,
            LAST_RECORD_APPENDER,
            {"rules": [{"inputPoint": "m1::p", "outputPoint": "m1::p_prev", "condition": condition}]},
        )
        records = [rec("a1", "p", t, v) for t, v in samples]
        size = -(-len(records) // batches)
        total = 0.0
        for i in range(0, len(records), size):
            attached = appender.run(records[i : i + size])
            out, _ = integrate([rule(method, threshold=THRESHOLD)], attached)
            total += sum(o.value for o in out)  # type: ignore[misc]
            appender.restart()
        store.close()
        return total


def test_last_value_and_ignore_by_hand() -> None:
    # 10 kW at 0', 500 kW (outside [0,100]) at 10', 30 kW at 20', 30 kW at 30'
    samples = [(T, 10.0), (T + 10 * MIN, 500.0), (T + 20 * MIN, 30.0), (T + 30 * MIN, 30.0)]
    # instant, LastValue: 10 kW holds from 0' to 20' (the bad sample is bridged), 30 kW from 20' to 30'
    assert chain(samples, "instant", LAST_VALUE) == pytest.approx(10 * 20 / 60 + 30 * 10 / 60)
    # instant, Ignore: 0'-10' and 10'-20' touch the bad sample and are dropped; 30 kW from 20' to 30'
    assert chain(samples, "instant", "*") == pytest.approx(30 * 10 / 60)
    # average, LastValue: (10 + 30)/2 kW over 0'-20', then (30 + 30)/2 kW over 20'-30'
    assert chain(samples, "average", LAST_VALUE) == pytest.approx(20 * 20 / 60 + 30 * 10 / 60)
    # average, Ignore: only 20'-30' has two valid samples
    assert chain(samples, "average", "*") == pytest.approx(30 * 10 / 60)


def reference(samples: list[tuple[int, float]], method: str, bridge: bool) -> float:
    """Energy by the textbook sums: over the valid samples only (bridge, LastValue), or over the
    consecutive pairs whose two samples are valid (Ignore)."""
    valid = [(t, p) for t, p in samples if 0 <= p <= 100]
    series = valid if bridge else samples
    total = 0.0
    for (t1, p1), (t2, p2) in itertools.pairwise(series):
        if (0 <= p1 <= 100) and (0 <= p2 <= 100) and t2 > t1:
            total += (p1 if method == "instant" else (p1 + p2) / 2) * (t2 - t1) / H
    return total


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 30 * MIN), st.sampled_from([0.0, 5.0, 12.5, 40.0, 100.0, 150.0, -3.0])),
        min_size=1,
        max_size=30,
    ),
    method=st.sampled_from(["instant", "average"]),
    last_value=st.booleans(),
    batches=st.integers(1, 4),
)
def test_chain_matches_the_textbook_sums(
    steps: list[tuple[int, float]], method: str, last_value: bool, batches: int
) -> None:
    samples, t = [], T
    for dt, p in steps:
        t += dt
        samples.append((t, p))
    got = chain(samples, method, LAST_VALUE if last_value else "*", batches)
    assert got == pytest.approx(reference(samples, method, bridge=last_value))


# --- appenders with onlyNewer: out-of-order data never moves the stored record back -----------


@pytest.mark.parametrize("only_newer", [False, True])
@pytest.mark.parametrize("appender", [LAST_RECORD_APPENDER, LAST_CHANGED_RECORD_APPENDER])
def test_only_newer_keeps_the_stored_record(tmp_path: Path, appender: Any, only_newer: bool) -> None:
    rule = {"inputPoint": "m1::p", "outputPoint": "m1::p_prev"}
    harness = OperatorHarness(open_store(tmp_path), appender, {"onlyNewer": only_newer, "rules": [rule]})
    harness.run([rec("a1", "p", T + 10 * MIN, 110), rec("a1", "p", T + 5 * MIN, 105)])
    harness.restart()
    (stored,) = harness.items()
    assert (stored["time"], stored["value"]) == ((T + 10 * MIN, 110) if only_newer else (T + 5 * MIN, 105))
    harness.store.close()


# --- the meter baseline from LastChangedRecordAppender -------------------------------------


def test_cumulant_reads_the_last_changed_reading(tmp_path: Path) -> None:
    """EnOS's figure: readings t1..t4 with kWh2 == kWh3; the last interval runs t2 -> t4, so its
    slope is Δ / (t4 - t2), inside the threshold, where t3 -> t4 alone would be too steep."""
    definition = pipeline(
        "LastChangedRecordAppender_01", {"rules": [{"inputPoint": "m1::kwh", "outputPoint": "m1::kwh_prev"}]}
    )
    definition["stages"].insert(
        2,
        {
            "instanceName": "CumulantDecomposer_01",
            "config": {
                "lastRecordFrom": "LastChangedRecordAppender",
                "rules": [
                    {
                        "inputPoint": "m1::kwh_prev",
                        "outputPoint": "m1::kwh_delta",
                        "scale": {"type": "fixed", "value": 1},
                        "slope": {"type": "fixed", "min": 0, "max": 20},
                    }
                ],
            },
        },
    )
    readings = [(T, 100), (T + H, 110), (T + 2 * H, 110), (T + 2 * H + 30 * MIN, 125)]
    run = PipelineRun(tmp_path, definition, [rec("a1", "kwh", t, v) for t, v in readings], batch=2)
    # t1->t2: 10 kWh in 1 h (slope 10); t2->t3 is flat (0); t2->t4: 15 kWh in 1.5 h (slope 10);
    # from t3 alone the slope would be 15 / 0.5 = 30 > 20 and the 15 kWh would be lost.
    assert [(o.time, o.value) for o in run.outputs] == [
        (T + H, 10),
        (T + 2 * H, 0),
        (T + 2 * H + 30 * MIN, 15),
    ]
    assert [o.attr["deltaCalculator"]["slope"] for o in run.outputs] == [10, 0, 10]
