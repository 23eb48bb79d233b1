"""Native pipeline JSON -> validated stage graph: operator resolution, configs, lanes, roles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcalc.library.edh_kafka import ConsumerConfig, ProducerConfig
from streamcalc.library.selector import PointSelectorConfig
from streamcalc.library.windows.simplified import SimplifiedWindowConfig
from streamcalc.pipeline import PipelineDef, PipelineError, StageGraph, build_graph, parse_pipeline

ISSUE_PIPELINE = """
{
  "name": "power-selection",
  "description": "forward the power points of model m1",
  "stages": [
    {
      "instanceName": "EDHKafkaConsumer_01",
      "stageName": "EDHKafkaConsumer",
      "config": {"topic": "MEASURE_POINT_ORIGIN_o15", "kafkaConfig": {"auto.offset.reset": "latest"}}
    },
    {
      "instanceName": "PointSelector_01",
      "stageName": "PointSelector",
      "config": {"points": ["m1::power", "m1::energy"]}
    },
    {
      "instanceName": "EDHKafkaProducer_01",
      "stageName": "EDHKafkaProducer",
      "config": {"topic": "MEASURE_POINT_CAL_o15"}
    }
  ]
}
"""


def consumer(name: str = "EDHKafkaConsumer_01", **extra: Any) -> dict[str, Any]:
    return {"instanceName": name, "config": {"topic": "MEASURE_POINT_ORIGIN_o15"}, **extra}


def producer(name: str = "EDHKafkaProducer_01", **extra: Any) -> dict[str, Any]:
    return {"instanceName": name, "config": {"topic": "MEASURE_POINT_CAL_o15"}, **extra}


def selector(name: str = "PointSelector_01", **extra: Any) -> dict[str, Any]:
    return {"instanceName": name, "config": {"points": ["m1::power"]}, **extra}


def window(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"instanceName": "SimplifiedTimeWindowAggregator_01", "config": {"rules": list(rules)}}


def rule(**over: Any) -> dict[str, Any]:
    return {"inputPoint": "m1::power", "windowSize": 1, "windowUnit": "hour", "outputPoint": "m1::sum"} | over


def build(*stages: dict[str, Any]) -> StageGraph:
    return build_graph({"stages": list(stages)})


def fails(*stages: dict[str, Any]) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        build(*stages)
    return info.value


def assert_topological(graph: StageGraph) -> None:
    seen: set[str] = set()
    for node in graph.nodes:
        assert set(node.inputs) <= seen, f"{node.name} comes before its inputs {node.inputs}"
        seen.add(node.name)


# --- the example from the issue -------------------------------------------------------------


def test_issue_example_builds_a_chain() -> None:
    graph = build_graph(json.loads(ISSUE_PIPELINE))

    assert [(n.name, n.op.name, n.inputs) for n in graph.nodes] == [
        ("EDHKafkaConsumer_01", "EDHKafkaConsumer", ()),
        ("PointSelector_01", "PointSelector", ("EDHKafkaConsumer_01",)),
        ("EDHKafkaProducer_01", "EDHKafkaProducer", ("PointSelector_01",)),
    ]
    assert [n.name for n in graph.sources] == ["EDHKafkaConsumer_01"]
    assert [n.name for n in graph.destinations] == ["EDHKafkaProducer_01"]
    source, select, sink = (n.config for n in graph.nodes)
    assert isinstance(source, ConsumerConfig) and source.topic == "MEASURE_POINT_ORIGIN_o15"
    assert source.auto_offset_reset == "latest"
    assert isinstance(select, PointSelectorConfig) and select.points == ["m1::power", "m1::energy"]
    assert isinstance(sink, ProducerConfig) and sink.topic == "MEASURE_POINT_CAL_o15"
    assert graph.node("PointSelector_01") is graph.nodes[1]
    assert graph.node("nope") is None


def test_parse_keeps_name_and_description_and_accepts_a_parsed_definition() -> None:
    pipeline = parse_pipeline(json.loads(ISSUE_PIPELINE))

    assert (pipeline.name, pipeline.description) == (
        "power-selection",
        "forward the power points of model m1",
    )
    assert parse_pipeline(pipeline) is pipeline
    assert build_graph(pipeline).node("PointSelector_01") is not None


# --- operator resolution ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage_name", "instance", "expected"),
    [
        (None, "PointSelector_01", "PointSelector"),
        (None, "PointSelector", "PointSelector"),
        ("NoSuchOperator", "PointSelector_07", "PointSelector"),
        ("PointSelector", "pick-power", "PointSelector"),
        (None, "SimplifiedTimeWindowAggregator_12", "SimplifiedTimeWindowAggregator"),
    ],
)
def test_operator_resolves_by_stage_name_then_instance_prefix(
    stage_name: str | None, instance: str, expected: str
) -> None:
    stage = selector(instance) if expected == "PointSelector" else window(rule()) | {"instanceName": instance}
    if stage_name:
        stage["stageName"] = stage_name

    graph = build(consumer(), stage, producer())

    node = graph.node(instance)
    assert node is not None and node.op.name == expected


@pytest.mark.parametrize(
    ("stage_name", "field", "names"),
    [
        (None, "instanceName", "Mystery"),
        ("Nope", "stageName", "Nope / Mystery"),
    ],
)
def test_unknown_operator_names_stage_and_field(stage_name: str | None, field: str, names: str) -> None:
    stage: dict[str, Any] = {"instanceName": "Mystery_01"} | ({"stageName": stage_name} if stage_name else {})

    error = fails(consumer(), stage, producer())

    assert (error.stage, error.field) == ("Mystery_01", field)
    assert error.reason == f"unknown operator {names}"
    assert str(error) == f"stage Mystery_01: {field}: unknown operator {names}"


# --- stage configs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "field", "reason"),
    [
        (selector(config={}), "config.points", "Field required"),
        (selector(config={"points": []}), "config.points", "at least 1 item"),
        (selector(config={"points": ["m1power"]}), "config.points.0", "'m1power'"),
        (selector(config={"points": ["m1::power", "::power"]}), "config.points.1", "{modelId}::{pointId}"),
        (selector(config={"points": ["m1::a::b"]}), "config.points.0", "{modelId}::{pointId}"),
        (selector(config={"points": ["m1::power"], "extra": 1}), "config.extra", "Extra inputs"),
        (consumer(config={}), "config.topic", "Field required"),
        (
            consumer(config={"topic": "T", "kafkaConfig": {"retries": 3}}),
            "config.kafkaConfig.retries",
            "string",
        ),
    ],
)
def test_config_errors_name_the_config_field(stage: dict[str, Any], field: str, reason: str) -> None:
    stages = [stage if stage["instanceName"] == s["instanceName"] else s for s in (consumer(), selector())]

    error = fails(*stages, producer())

    assert (error.stage, error.field) == (stage["instanceName"], field)
    assert reason in error.reason


def test_invalid_topic_is_a_pipeline_error() -> None:
    error = fails(consumer(config={"topic": "not a topic"}), producer())

    assert (error.stage, error.field) == ("EDHKafkaConsumer_01", "config.topic")


# --- SimplifiedTimeWindowAggregator ------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "size", "window_ms"),
    [("second", 30, 30_000), ("minute", 15, 900_000), ("hour", 1, 3_600_000), ("day", 2, 172_800_000)],
)
def test_window_rules_accept_every_unit(unit: str, size: int, window_ms: int) -> None:
    graph = build(consumer(), window(rule(windowUnit=unit, windowSize=size)), producer())

    node = graph.node("SimplifiedTimeWindowAggregator_01")
    assert node is not None and node.op.state_kind == "window"
    assert isinstance(node.config, SimplifiedWindowConfig)
    assert [r.window_ms for r in node.config.rules] == [window_ms]


@pytest.mark.parametrize(
    ("rules", "field", "reason"),
    [
        ([rule(windowUnit="week")], "config.rules.0.windowUnit", "'second', 'minute', 'hour' or 'day'"),
        ([rule(windowSize=0)], "config.rules.0.windowSize", "greater than or equal to 1"),
        ([rule(outputPoint="m2::sum")], "config.rules.0", "same modelId"),
        ([rule(outputPoint="m1::power")], "config.rules.0", "must differ"),
        ([rule(), rule(inputPoint="m1::energy")], "config.rules", "its own outputPoint"),
        ([rule(inputPoint="m1power")], "config.rules.0.inputPoint", "'m1power'"),
        ([], "config.rules", "at least 1 item"),
    ],
)
def test_window_rule_errors(rules: list[dict[str, Any]], field: str, reason: str) -> None:
    error = fails(consumer(), window(*rules), producer())

    assert (error.stage, error.field) == ("SimplifiedTimeWindowAggregator_01", field)
    assert reason in error.reason


# --- lanes ---------------------------------------------------------------------------------------


def test_lanes_fan_out_and_fan_in_in_topological_order() -> None:
    # Listed sinks first, so list order is not a topological order.
    graph = build(
        producer("EDHKafkaProducer_01", inputLanes=["power", "energy"]),
        producer("EDHKafkaProducer_02", inputLanes=["raw"]),
        selector("PointSelector_02", inputLanes=["raw"], outputLanes=["energy"]),
        selector("PointSelector_01", inputLanes=["raw"], outputLanes=["power"]),
        consumer(outputLanes=["raw"]),
    )

    inputs = {n.name: n.inputs for n in graph.nodes}
    assert inputs == {
        "EDHKafkaConsumer_01": (),
        "PointSelector_01": ("EDHKafkaConsumer_01",),
        "PointSelector_02": ("EDHKafkaConsumer_01",),
        "EDHKafkaProducer_01": ("PointSelector_01", "PointSelector_02"),
        "EDHKafkaProducer_02": ("EDHKafkaConsumer_01",),
    }
    assert_topological(graph)
    # In list order, each stage after its inputs: the consumer, then the stages it feeds.
    assert [n.name for n in graph.nodes] == [
        "EDHKafkaConsumer_01",
        "EDHKafkaProducer_02",
        "PointSelector_02",
        "PointSelector_01",
        "EDHKafkaProducer_01",
    ]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_stages_listed_after_their_inputs_run_in_list_order(data: st.DataObject) -> None:
    """Any DAG whose stages are listed after their inputs: the graph keeps the list order."""
    n = data.draw(st.integers(1, 6), label="processors")
    stages = [consumer(outputLanes=["l0"])]
    for i in range(1, n + 1):
        lanes = data.draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=3, unique=True))
        stages.append(
            selector(f"PointSelector_{i:02d}", inputLanes=[f"l{j}" for j in lanes], outputLanes=[f"l{i}"])
        )
    unread = {f"l{i}" for i in range(n + 1)} - {lane for s in stages for lane in s.get("inputLanes", [])}
    stages.append(producer(inputLanes=sorted(unread)))
    graph = build(*stages)
    assert [node.name for node in graph.nodes] == [s["instanceName"] for s in stages]


def test_parallel_branches_run_in_list_order_whatever_reads_them() -> None:
    """A capture made on a branch listed earlier is seen by a restorer on a later branch, even
    when a stage listed first reads the later branch."""
    graph = build(
        producer("EDHKafkaProducer_01", inputLanes=["restored", "captured"]),
        {
            "instanceName": "RecordCapturer_01",
            "config": {"points": ["m1::p"]},
            "inputLanes": ["raw"],
            "outputLanes": ["captured"],
        },
        {
            "instanceName": "RecordRestorer_01",
            "config": {"rules": [{"inputPoint": "m1::t", "restorePoint": "m1::p", "outputPoint": "m1::q"}]},
            "inputLanes": ["raw"],
            "outputLanes": ["restored"],
        },
        consumer(outputLanes=["raw"]),
    )
    assert [n.name for n in graph.nodes] == [
        "EDHKafkaConsumer_01",
        "RecordCapturer_01",
        "RecordRestorer_01",
        "EDHKafkaProducer_01",
    ]


def test_a_cycle_is_named_from_its_first_listed_stage() -> None:
    error = fails(
        consumer(outputLanes=["a"]),
        selector("PointSelector_01", inputLanes=["a", "d"], outputLanes=["b"]),
        selector("PointSelector_03", inputLanes=["c"], outputLanes=["d"]),
        selector("PointSelector_02", inputLanes=["b"], outputLanes=["c"]),
        producer(inputLanes=["b"]),
    )
    assert (error.stage, error.field) == ("PointSelector_01", "inputLanes")
    assert error.reason == (
        "the stage graph has a cycle through this stage: "
        "PointSelector_01 -> PointSelector_02 -> PointSelector_03 -> PointSelector_01"
    )


def test_a_stage_with_several_output_lanes_feeds_each_reader() -> None:
    graph = build(
        consumer(outputLanes=["a", "b"]),
        selector(inputLanes=["b"], outputLanes=["c"]),
        producer(inputLanes=["a", "c"]),
    )

    node = graph.node("EDHKafkaProducer_01")
    assert node is not None and node.inputs == ("EDHKafkaConsumer_01", "PointSelector_01")
    assert_topological(graph)


@pytest.mark.parametrize(
    ("stages", "stage", "field", "reason"),
    [
        pytest.param(
            [consumer(outputLanes=["a"]), producer(inputLanes=["b"])],
            "EDHKafkaProducer_01",
            "inputLanes",
            "no stage outputs lane 'b'",
            id="missing-lane",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                selector(inputLanes=["a"], outputLanes=["a"]),
                producer(inputLanes=["a"]),
            ],
            "PointSelector_01",
            "outputLanes",
            "lane 'a' is output by EDHKafkaConsumer_01 already",
            id="duplicate-output-lane",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                selector("PointSelector_01", inputLanes=["a", "c"], outputLanes=["b"]),
                selector("PointSelector_02", inputLanes=["b"], outputLanes=["c"]),
                producer(inputLanes=["b"]),
            ],
            "PointSelector_01",
            "inputLanes",
            "cycle",
            id="cycle",
        ),
        pytest.param(
            [consumer(outputLanes=["a"]), selector(), producer(inputLanes=["a"])],
            "PointSelector_01",
            "inputLanes",
            "either every stage declares lanes or none does",
            id="mixed-laned-and-unlaned",
        ),
        pytest.param(
            [consumer(), selector(), selector(), producer()],
            "PointSelector_01",
            "instanceName",
            "more than one stage",
            id="duplicate-instance-name",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                consumer("EDHKafkaConsumer_02", inputLanes=["a"]),
                producer(inputLanes=["a"]),
            ],
            "EDHKafkaConsumer_02",
            "inputLanes",
            "EDHKafkaConsumer is a source and takes no input",
            id="source-with-input-lane",
        ),
        pytest.param(
            [consumer(), consumer("EDHKafkaConsumer_02"), producer()],
            "EDHKafkaConsumer_02",
            "inputLanes",
            "EDHKafkaConsumer is a source and takes no input",
            id="source-inside-a-chain",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                producer(inputLanes=["a"], outputLanes=["b"]),
                selector(inputLanes=["b"], outputLanes=["c"]),
                producer("EDHKafkaProducer_02", inputLanes=["c"]),
            ],
            "EDHKafkaProducer_01",
            "outputLanes",
            "EDHKafkaProducer is a destination and has no output",
            id="destination-feeding-a-stage",
        ),
        pytest.param(
            [consumer(), producer(), selector(), producer("EDHKafkaProducer_02")],
            "EDHKafkaProducer_01",
            "outputLanes",
            "EDHKafkaProducer is a destination and has no output",
            id="destination-inside-a-chain",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                selector(inputLanes=["a"], outputLanes=["b"]),
                producer(inputLanes=[]),
            ],
            "EDHKafkaProducer_01",
            "inputLanes",
            "EDHKafkaProducer needs an input",
            id="destination-without-input",
        ),
        pytest.param(
            [selector(), producer()],
            "PointSelector_01",
            "inputLanes",
            "PointSelector needs an input",
            id="no-source",
        ),
        pytest.param(
            [consumer(), selector()],
            None,
            None,
            "a pipeline needs at least one destination stage (e.g. EDHKafkaProducer)",
            id="no-destination",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                selector(inputLanes=["a", "a"], outputLanes=["b"]),
                producer(inputLanes=["b"]),
            ],
            "PointSelector_01",
            "inputLanes",
            "an input lane is listed twice",
            id="input-lane-twice",
        ),
        pytest.param(
            [
                consumer(outputLanes=["a"]),
                selector(inputLanes=["a"], outputLanes=["b"]),
                selector("PointSelector_02", inputLanes=["a"], outputLanes=["dangling"]),
                producer(inputLanes=["b"]),
            ],
            "PointSelector_02",
            "outputLanes",
            "the output of PointSelector is not read by any stage",
            id="output-read-by-nobody",
        ),
    ],
)
def test_graph_errors(
    stages: list[dict[str, Any]], stage: str | None, field: str | None, reason: str
) -> None:
    error = fails(*stages)

    assert (error.stage, error.field) == (stage, field)
    assert reason in error.reason


def test_empty_lanes_on_every_stage_mean_laned_mode() -> None:
    # Declared but empty lanes are not the chain mode: the selector then has no input.
    error = fails(consumer(outputLanes=[]), selector(inputLanes=[]), producer(inputLanes=[]))

    assert (error.stage, error.field) == ("PointSelector_01", "inputLanes")


# --- the definition model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "stage", "field", "reason"),
    [
        ({"stages": []}, None, "stages", "at least 1 item"),
        ({"stages": [{"config": {}}]}, "#0", "instanceName", "Field required"),
        ({"stages": [consumer(), {"instanceName": "1bad"}]}, "1bad", "instanceName", "pattern"),
        ({"stages": [consumer(lanes=["a"])]}, "EDHKafkaConsumer_01", "lanes", "Extra inputs"),
        ({"stages": [consumer(inputLanes="a")]}, "EDHKafkaConsumer_01", "inputLanes", "valid list"),
        ({"stages": [consumer()], "owner": "me"}, None, "owner", "Extra inputs"),
    ],
)
def test_definition_errors_name_stage_and_field(
    doc: dict[str, Any], stage: str | None, field: str, reason: str
) -> None:
    with pytest.raises(PipelineError) as info:
        parse_pipeline(doc)

    assert (info.value.stage, info.value.field) == (stage, field)
    assert reason in info.value.reason


def test_pipeline_def_round_trips_through_json() -> None:
    pipeline = parse_pipeline(json.loads(ISSUE_PIPELINE))

    again = PipelineDef.model_validate_json(pipeline.model_dump_json())

    assert again == pipeline
