"""Calculation templates (EnOS templateType 0, 3, 4, 5): config validation, the expansion, and
each template run end to end through the real runner over the embedded log and LMDB state,
against values computed by hand."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from library.library_support import PipelineRun, rec
from service.api_support import IN, OUT, Service, record, running_service, wait_for
from streamcalc.client import EnosError
from streamcalc.pipeline import PipelineError, build_graph, load_pipeline_document
from streamcalc.pipeline.templates import expand_template
from streamcalc.records import Record

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
DAY1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY2, DAY3 = DAY1 + DAY, DAY1 + 2 * DAY
TOPICS = {"sourceTopic": IN, "destinationTopic": OUT}


def at(day: int, hh: int, mm: int = 0) -> int:
    return day + hh * HOUR + mm * MIN


def meter_template(**policy: Any) -> dict[str, Any]:
    return {
        "templateType": 3,
        "name": "meter energy",
        "template": {
            **TOPICS,
            "policies": [
                {
                    "inputPoint": "m1::kwh",
                    "slopeThreshold": {"type": "fixed", "min": 0, "max": 60},
                    "scale": {"type": "fixed", "value": 2},
                    "dailyOutputPoint": "m1::kwh_day",
                    "detailOutput": {"outputPoint": "m1::kwh_hour", "windowSize": 1, "windowUnit": "hour"},
                    **policy,
                }
            ],
        },
    }


def power_template(kind: int, interpolation: str, threshold: str | None = "[0,100]") -> dict[str, Any]:
    policy = {"inputPoint": "m1::power", "interpolation": interpolation, "dailyOutputPoint": "m1::energy_day"}
    return {
        "templateType": kind,
        "template": {**TOPICS, "policies": [{**policy, **({"threshold": threshold} if threshold else {})}]},
    }


def window_template() -> dict[str, Any]:
    window = {"windowSize": 10, "windowUnit": "minute"}
    return {
        "templateType": 0,
        "template": {
            **TOPICS,
            "latencyMinutes": 5,
            "policies": [
                {
                    "inputPoint": "m1::raw",
                    "threshold": "[0,100]",
                    "aggregator": "max",
                    **window,
                    "outputPoint": "m1::raw_max",
                },
                {"inputPoint": "m1::raw", "aggregator": "avg", **window, "outputPoint": "m1::raw_avg"},
                {
                    "inputPoint": "m1::raw",
                    "threshold": "[0, 100]",
                    "aggregator": "count",
                    **window,
                    "outputPoint": "m1::raw_cnt",
                },
            ],
        },
    }


def run(tmp_path: Path, doc: dict[str, Any], records: list[Record], batch: int = 97) -> PipelineRun:
    return PipelineRun(tmp_path, expand_template(doc).model_dump(exclude_unset=True), records, batch)


def values(done: PipelineRun, point: str) -> list[tuple[int, float]]:
    return [(o.time, o.value) for o in done.outputs if o.pointId == point]  # type: ignore[misc]


# --- validation ------------------------------------------------------------------------------


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with `value` at the dotted `path` (list items by index)."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return out


P0 = "template.policies.0"
SECOND = {**meter_template()["template"]["policies"][0], "dailyOutputPoint": "m1::d2", "detailOutput": None}
OTHER = {**meter_template()["template"]["policies"][0], "inputPoint": "m1::kwh2", "detailOutput": None}
INVALID = [
    pytest.param(
        {"templateType": 2, "template": {}}, "templateType", "not supported", id="multi-point-merging"
    ),
    pytest.param(
        {"templateType": 6, "template": {}}, "templateType", "expected 0, 1, 3, 4 or 5", id="unknown-type"
    ),
    pytest.param(
        {"templateType": "3", "template": {}}, "templateType", "expected 0, 1, 3, 4 or 5", id="type-string"
    ),
    pytest.param({"templateType": 3}, "template", "Field required", id="no-template"),
    pytest.param(_with(meter_template(), "stages", []), "stages", "Extra inputs", id="extra-key"),
    pytest.param(
        _with(meter_template(), "template.sourceTopic", "a b"), "template.sourceTopic", "", id="bad-topic"
    ),
    pytest.param(
        _with(meter_template(), "template.policies", []), "template.policies", "at least 1", id="no-policy"
    ),
    pytest.param(meter_template(inputPoint="kwh"), f"{P0}.inputPoint", "modelId", id="bare-point"),
    pytest.param(meter_template(dailyOutputPoint="m2::day"), P0, "same modelId", id="other-model"),
    pytest.param(meter_template(dailyOutputPoint="m1::kwh"), P0, "must differ", id="output-is-input"),
    pytest.param(
        meter_template(detailOutput={"outputPoint": "m1::kwh_day", "windowSize": 1, "windowUnit": "hour"}),
        P0,
        "must differ",
        id="detail-is-daily",
    ),
    pytest.param(
        meter_template(detailOutput={"outputPoint": "m1::d", "windowSize": 7, "windowUnit": "minute"}),
        f"{P0}.detailOutput",
        "divide a day",
        id="detail-does-not-divide-a-day",
    ),
    pytest.param(
        meter_template(slopeThreshold={"type": "fixed", "min": 5, "max": 1}),
        f"{P0}.slopeThreshold.fixed",
        "less than max",
        id="slope-min-above-max",
    ),
    pytest.param(
        meter_template(scale={"type": "fixed", "value": 0}), f"{P0}.scale.fixed.value", "", id="zero-scale"
    ),
    pytest.param(
        _with(meter_template(), "template.policies", [*meter_template()["template"]["policies"], SECOND]),
        "template",
        "m1::kwh is the inputPoint of more than one policy",
        id="input-twice",
    ),
    pytest.param(
        _with(meter_template(), "template.policies", [*meter_template()["template"]["policies"], OTHER]),
        "template",
        "m1::kwh_day is the output point of more than one policy",
        id="output-twice",
    ),
    pytest.param(
        meter_template(detailOutput=None, dailyOutputPoint="m1::kwh#previous"),
        "template",
        "internal",
        id="internal-id",
    ),
    pytest.param(power_template(5, "LastValue", "[0,"), f"{P0}.threshold", "interval", id="bad-threshold"),
    pytest.param(power_template(4, "Linear"), f"{P0}.interpolation", "", id="bad-interpolation"),
    pytest.param(
        _with(window_template(), "template.latencyMinutes", 61), "template.latencyMinutes", "60", id="latency"
    ),
    pytest.param(
        _with(window_template(), f"{P0}.aggregator", "cnt"), f"{P0}.aggregator", "", id="aggregator"
    ),
    pytest.param(
        _with(window_template(), f"{P0}.interpolation", "LastValue"),
        f"{P0}.interpolation",
        "",
        id="t0-interp",
    ),
    pytest.param(
        _with(window_template(), "template.policies.1.outputPoint", "m1::raw_max"),
        "template.policies",
        "own outputPoint",
        id="same-output",
    ),
]


@pytest.mark.parametrize(("doc", "field", "message"), INVALID)
def test_invalid_templates_name_the_field(doc: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(PipelineError) as e:
        load_pipeline_document(doc)
    assert e.value.field == field and message in e.value.reason


def test_template_type_1_is_a_native_pipeline() -> None:
    native = {
        "templateType": 1,
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ],
    }
    assert [s.instanceName for s in load_pipeline_document(native).stages] == [
        "EDHKafkaConsumer_01",
        "EDHKafkaProducer_01",
    ]


# --- expansion -------------------------------------------------------------------------------


def shape(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(stage, the stages it reads) in topological order."""
    return [(n.name, list(n.inputs)) for n in build_graph(load_pipeline_document(doc)).nodes]


def test_energy_templates_expand_to_one_chain() -> None:
    meter = [
        "EDHKafkaConsumer_01",
        "PointSelector_01",
        "LastChangedRecordAppender_01",
        "CumulantDecomposer_01",
        "FixedTimeWindowAggregator_01",
        "EDHKafkaProducer_01",
    ]
    power = [*meter[:2], "LastRecordAppender_01", "PowerIntegrator_01", *meter[4:]]
    for doc, names in ((meter_template(), meter), (power_template(4, "Ignore"), power)):
        assert shape(doc) == [(n, names[i - 1 : i]) for i, n in enumerate(names)]


def test_power_interpolation_is_the_appender_condition() -> None:
    def appender(doc: dict[str, Any]) -> Any:
        stages = load_pipeline_document(doc).stages
        return next(
            s.config["rules"][0]["condition"] for s in stages if s.instanceName == "LastRecordAppender_01"
        )

    assert appender(power_template(5, "Ignore")) == "*"
    assert appender(power_template(5, "LastValue", "(-1,100]")) == [
        {"op": ">", "value": -1},
        {"op": "<=", "value": 100},
    ]
    assert appender(power_template(5, "LastValue", "(-inf,+inf)")) == "*"


def test_time_window_policies_with_one_threshold_share_a_branch() -> None:
    assert shape(window_template()) == [
        ("EDHKafkaConsumer_01", []),
        ("PointSelector_01", ["EDHKafkaConsumer_01"]),
        ("RecordFilter_01", ["PointSelector_01"]),
        ("FixedTimeWindowAggregator_01", ["RecordFilter_01"]),
        ("FixedTimeWindowAggregator_02", ["PointSelector_01"]),
        ("EDHKafkaProducer_01", ["FixedTimeWindowAggregator_01", "FixedTimeWindowAggregator_02"]),
    ]


def test_every_stateful_stage_is_keyed_by_the_input_point(tmp_path: Path) -> None:
    """The stage-state API takes the user's point ids: internal ids never key a state."""
    readings = [rec("a1", "kwh", at(DAY1, 0, m), 10 + m) for m in range(3)]
    done = run(tmp_path, meter_template(), readings)
    for stage in ("LastChangedRecordAppender_01", "FixedTimeWindowAggregator_01"):
        (item,) = done.state_items(stage, ["a1"], ["kwh"])
        assert (item["assetId"], item["pointId"]) == ("a1", "kwh")


# --- 3: electric energy by meter reading -------------------------------------------------------


def meter_day() -> list[Record]:
    """One day of 1-minute readings of one meter, from day 1 12:00 to day 2 12:00, then one
    reading at day 3 00:00 that closes day 2. The meter counts 0.5 kWh a minute (slope 30/h).

    - day 1 18:00: the meter resets; its reading drops to 0.25 and counts on from there.
    - day 2 02:00-04:00: no readings (the meter keeps counting).
    - day 2 06:00-06:30: the reading stays put; at 06:31 it jumps by 15 kWh (catching up).
    """
    readings: list[tuple[int, float]] = []
    r = 1000.0
    t = at(DAY1, 12)
    while t <= at(DAY2, 12):
        if t == at(DAY1, 18):
            r = 0.25
        elif at(DAY2, 6) < t <= at(DAY2, 6, 30):
            pass
        elif t == at(DAY2, 6, 31):
            r += 15
        elif t > at(DAY1, 12):
            r += 0.5
        if not at(DAY2, 2) < t < at(DAY2, 4):
            readings.append((t, r))
        t += MIN
    readings.append((DAY3, r + 0.5 * 12 * 60))  # 12:00 -> 24:00 unread, counted at 00:00 of day 3
    return [rec("meter-1", "kwh", t, v) for t, v in readings]


def test_meter_reading_daily_energy_by_hand(tmp_path: Path) -> None:
    done = run(tmp_path, meter_template(), meter_day())
    scale = 2
    # Day 1: 359 one-minute intervals of 0.5 kWh end in 12:01..17:59; the interval ending at
    # 18:00 has a negative delta (reset) and is dropped, the baseline moving to 0.25; 359 more
    # end in 18:01..23:59.
    day1 = (359 + 359) * 0.5 * scale
    # Day 2: the interval ending at 00:00 is day 2's (it ends there). 121 intervals end in
    # 00:00..02:00; the gap interval 02:00 -> 04:00 has 120 min * 0.5 = 60 kWh at slope 30/h,
    # inside [0, 60], so it counts; 120 intervals end in 04:01..06:00; 06:01..06:30 add 0; the
    # jump at 06:31 counts 15 kWh over 06:00 -> 06:31 (the unchanged readings did not move the
    # baseline; slope 15 / (31/60) = 29/h), then 329 intervals end in 06:32..12:00.
    day2 = (121 * 0.5 + 60 + 120 * 0.5 + 0 + 15 + 329 * 0.5) * scale
    assert (day1, day2) == (718, 720)
    assert values(done, "kwh_day") == [(DAY1, day1), (DAY2, day2)]
    hours = dict(values(done, "kwh_hour"))
    assert hours[at(DAY1, 12)] == 59 * 0.5 * scale  # the first reading has no baseline
    assert hours[at(DAY1, 18)] == 59 * 0.5 * scale  # the reset interval dropped
    assert hours[at(DAY2, 2)] == 1 * 0.5 * scale and at(DAY2, 3) not in hours  # no readings
    assert hours[at(DAY2, 4)] == (60 + 59 * 0.5) * scale  # the gap interval ends at 04:00
    assert hours[at(DAY2, 6)] == (0.5 + 15 + 28 * 0.5) * scale
    for day, total in ((DAY1, day1), (DAY2, day2)):
        assert sum(v for h, v in hours.items() if day <= h < day + DAY) == total
    assert done.errors == []
    (baseline,) = done.state_items("LastChangedRecordAppender_01", ["meter-1"], ["kwh"])
    assert (baseline["time"], baseline["value"]) == (DAY3, meter_day()[-1].value)


@pytest.mark.parametrize(
    ("doc", "point", "samples", "expected"),
    [
        # 100 -> 110 -> 120 on day 1: 20 x scale 2; 105 of 00:05 arrives after 110 of 00:10
        (
            meter_template(detailOutput=None),
            "kwh",
            [(0, 100), (10, 110), (5, 105), (20, 120), (1440, 130)],
            40,
        ),
        # 10 kW x 0.5 h from 00:00 and from 00:30; 100 kW of 00:15 arrives after 00:30
        (power_template(5, "Ignore"), "power", [(0, 10), (30, 10), (15, 100), (60, 10), (1440, 10)], 10),
    ],
    ids=["meter", "power"],
)
def test_a_late_reading_never_moves_the_baseline_back(
    tmp_path: Path, doc: dict[str, Any], point: str, samples: list[tuple[int, float]], expected: float
) -> None:
    """Were the late value the baseline, the next interval would count its span a second time."""
    records = [rec("a1", point, at(DAY1, 0, m), v) for m, v in samples]  # the last one on day 2
    done = run(tmp_path, doc, records, batch=2)
    (output,) = (o for o in done.outputs if o.time == DAY1)
    assert output.value == expected and done.errors == []


@settings(max_examples=15, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 600), st.sampled_from([0, 0, 0.5, 2, 7.25])), max_size=40),
    batch=st.integers(1, 50),
)
def test_meter_days_add_up(steps: list[tuple[int, float]], batch: int) -> None:
    """Monotone readings inside the slope threshold: the closed days sum to scale x (the last
    reading before the last day - the first reading), and each day's hours to the day."""
    t, r = at(DAY1, 23), 100.0
    readings = [(t, r)]
    for minutes, increase in steps:
        t, r = t + minutes * MIN, r + increase
        readings.append((t, r))
    last_day = readings[-1][0] - readings[-1][0] % DAY
    closed = [v for when, v in readings if when < last_day]
    unlimited = meter_template(slopeThreshold={"type": "fixed", "min": 0, "max": 1e9})
    with tempfile.TemporaryDirectory() as tmp:
        done = run(Path(tmp), unlimited, [rec("a1", "kwh", w, v) for w, v in readings], batch)
    days = values(done, "kwh_day")
    assert sum(v for _, v in days) == pytest.approx(2 * (closed[-1] - closed[0]) if closed else 0)
    hours = values(done, "kwh_hour")
    for day, total in days:
        assert sum(v for h, v in hours if day <= h < day + DAY) == pytest.approx(total)


# --- 4, 5: electric energy by average / instant power ------------------------------------------

POWER = [  # kW every 15 minutes around midnight; 200 kW lies outside the threshold [0, 100]
    (at(DAY1, 22), 40),
    (at(DAY1, 22, 15), 40),
    (at(DAY1, 22, 30), 200),
    (at(DAY1, 22, 45), 60),
    (at(DAY1, 23), 60),
    (at(DAY1, 23, 30), 20),
    (at(DAY2, 0, 15), 20),
    (at(DAY2, 0, 30), 80),
    (DAY3, 0),
]


@pytest.mark.parametrize(
    ("kind", "interpolation", "day1", "day2"),
    [
        # instant, LastValue: 40 kW 22:00-22:15 and, bridging 200, 22:15-22:45; 60 kW 22:45-23:00
        # and 23:00-23:30; 20 kW 23:30-00:15 (day 2, where it ends) and 00:15-00:30
        pytest.param(
            5,
            "LastValue",
            40 * 0.25 + 40 * 0.5 + 60 * 0.25 + 60 * 0.5,
            20 * 0.75 + 20 * 0.25,
            id="instant-lastvalue",
        ),
        # instant, Ignore: 22:15-22:30 and 22:30-22:45 touch 200 and count nothing
        pytest.param(
            5, "Ignore", 40 * 0.25 + 60 * 0.25 + 60 * 0.5, 20 * 0.75 + 20 * 0.25, id="instant-ignore"
        ),
        # average, LastValue: (40+40)/2 * 0.25, (40+60)/2 * 0.5 across 200, (60+60)/2 * 0.25, (60+20)/2 * 0.5
        pytest.param(
            4,
            "LastValue",
            40 * 0.25 + 50 * 0.5 + 60 * 0.25 + 40 * 0.5,
            20 * 0.75 + 50 * 0.25,
            id="average-lastvalue",
        ),
        pytest.param(
            4, "Ignore", 40 * 0.25 + 60 * 0.25 + 40 * 0.5, 20 * 0.75 + 50 * 0.25, id="average-ignore"
        ),
    ],
)
def test_power_daily_energy_by_hand(
    tmp_path: Path, kind: int, interpolation: str, day1: float, day2: float
) -> None:
    done = run(
        tmp_path,
        power_template(kind, interpolation),
        [rec("inv-1", "power", t, p) for t, p in POWER],
        batch=3,
    )
    assert values(done, "energy_day") == [(DAY1, pytest.approx(day1)), (DAY2, pytest.approx(day2))]
    assert done.errors == []


def test_power_without_threshold_counts_every_interval(tmp_path: Path) -> None:
    done = run(tmp_path, power_template(5, "Ignore", None), [rec("inv-1", "power", t, p) for t, p in POWER])
    assert values(done, "energy_day")[0] == (
        DAY1,
        pytest.approx(40 * 0.25 + 40 * 0.25 + 200 * 0.25 + 60 * 0.25 + 60 * 0.5),
    )


# --- 0: time window aggregation ------------------------------------------------------------------


def test_time_window_aggregation_with_threshold_and_latency(tmp_path: Path) -> None:
    raw = [(0, 10), (3, 150), (7, 30), (10, 20), (12, 5), (9, 90), (21, 1), (8, 50)]
    done = run(tmp_path, window_template(), [rec("a1", "raw", at(DAY1, 0, m), v) for m, v in raw], batch=1)
    w0, w10 = at(DAY1, 0), at(DAY1, 0, 10)
    # 150 is outside [0, 100]: max and count never see it, avg (no threshold) does. 00:10 closes
    # window 00:00; 00:09 is late within the 5-minute latency and re-emits it; 00:21 closes
    # window 00:10 and expires window 00:00, so 00:08 is too late for both aggregators.
    assert values(done, "raw_max") == [(w0, 30), (w0, 90), (w10, 20)]
    assert values(done, "raw_cnt") == [(w0, 2), (w0, 3), (w10, 2)]
    assert values(done, "raw_avg") == [(w0, pytest.approx(190 / 3)), (w0, 70), (w10, 12.5)]
    assert sorted(e.stage for e in done.errors) == [
        "FixedTimeWindowAggregator_01",
        "FixedTimeWindowAggregator_02",
    ]


# --- over the API ------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path) as svc:
        yield svc


def test_a_template_saved_over_http_runs_and_serves_its_stage_state(service: Service) -> None:
    doc = meter_template(detailOutput=None)
    doc["template"]["policies"][0]["inputPoint"] = "m1::p"
    with service.client() as client:
        pid = client.save_pipeline(None, doc, name="meters")
        details = client.get_pipeline(pid)
        assert (details["templateType"], details["pipelineJson"]) == (3, doc)
        client.release_pipeline(pid)
        client.start_pipeline(pid)
        readings = [(0, 10), (60, 11.5), (120, 13), (DAY // MIN, 14)]
        client.produce(
            IN, [record(a, v + i, m * MIN) for i, a in enumerate(["a1", "a2"]) for m, v in readings]
        )

        def daily() -> list[tuple[str, float]]:
            got = client.consume(OUT, limit=100)["records"]
            return sorted((r["record"]["assetId"], r["record"]["value"]) for r in got)

        # 1.5 + 1.5 kWh of day 1, times the scale 2, for each meter
        wait_for(lambda: daily() == [("a1", 6), ("a2", 6)], what="the daily outputs")
        client.pause_pipeline(pid)
        items = client.get_stage_state(pid, "LastChangedRecordAppender_01", ["a1", "a2"], ["p"])
        assert [(i["assetId"], i["pointId"], i["value"]) for i in items] == [("a1", "p", 14), ("a2", "p", 15)]
        assert client.delete_stage_state(pid, "FixedTimeWindowAggregator_01", ["a1"], ["p"]) is True
        assert client.get_stage_state(pid, "FixedTimeWindowAggregator_01", ["a1"], ["p"]) == []
        with pytest.raises(EnosError) as stateless:
            client.get_stage_state(pid, "CumulantDecomposer_01", ["a1"], ["p"])
        assert stateless.value.code == 61107
        with pytest.raises(EnosError) as conflict:
            client.save_pipeline(pid, doc, templateType=0)
        assert conflict.value.code == 61100
