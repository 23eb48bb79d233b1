"""StreamSets (SDC) export -> native PipelineDef.

The fixture follows the structure of the EnOS demo export (EnvisionDoc/data_asset_en,
static/streamsets_pipeline_demo.json): the same Kafka stage class names and bean-prefixed
config names, error/start/stop discard stages and pipeline rules. The demo has no calculator
stages, so the class names of the two calculator stages here are made up in the SDC style.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from streamcalc.library.edh_kafka import ConsumerConfig, ProducerConfig
from streamcalc.library.windows.simplified import SimplifiedWindowConfig
from streamcalc.pipeline import (
    PipelineDef,
    PipelineError,
    StageDef,
    build_graph,
    import_streamsets,
    load_pipeline_document,
)

KAFKA_LIB = "streamsets-datacollector-edh-cluster-kafka_0_10-spark_2_0-lib_user"
CONSUMER_CLASS = "com_streamsets_pipeline_stage_origin_kafka_cluster_KafkaDSourceUser"
PRODUCER_CLASS = "com_streamsets_pipeline_stage_destination_kafka_cluster_KafkaDTargetUser"
DISCARD_CLASS = "com_streamsets_pipeline_stage_destination_devnull_ToErrorNullDTarget"
CALC_PACKAGE = "com_envision_edh_streaming_calculator_stage_processor"

EXPORT = """
{
  "pipelineConfig": {
    "schemaVersion": 5,
    "version": 9,
    "pipelineId": "PowerSum2d030c15-37f5-4dda-8acb-3984bd8661b0",
    "title": "PowerSum",
    "description": "",
    "uuid": "992b22d8-0745-4faa-be84-d3fc5ddb88a1",
    "configuration": [
      {"name": "executionMode", "value": "CLUSTER_YARN_STREAMING"},
      {"name": "deliveryGuarantee", "value": "AT_LEAST_ONCE"},
      {"name": "badRecordsHandling", "value": "streamsets-datacollector-basic-lib::DISCARD::1"},
      {"name": "sparkConfigs", "value": [{"key": "spark.memory.fraction", "value": "0.6"}]}
    ],
    "uiInfo": {"previewConfig": {"batchSize": 10}},
    "fragments": [],
    "stages": [
      {
        "instanceName": "EDHKafkaConsumerUser_01",
        "library": "KAFKA_LIB",
        "stageName": "CONSUMER_CLASS",
        "stageVersion": "5",
        "configuration": [
          {"name": "kafkaConfigBean.dataFormatConfig.charset", "value": "UTF-8"},
          {"name": "kafkaConfigBean.dataFormatConfig.jsonContent", "value": "MULTIPLE_OBJECTS"},
          {"name": "kafkaConfigBean.dataFormatConfig.xmlRecordElement", "value": null},
          {"name": "kafkaConfigBean.dataFormat", "value": "JSON"},
          {"name": "kafkaConfigBean.consumerGroup", "value": "power-sum"},
          {"name": "kafkaConfigBean.topic", "value": "MEASURE_POINT_INTERNAL_o15"},
          {"name": "kafkaConfigBean.maxBatchSize", "value": 20},
          {"name": "kafkaConfigBean.maxWaitTime", "value": 10000},
          {"name": "kafkaConfigBean.maxRatePerPartition", "value": 60},
          {"name": "kafkaConfigBean.kafkaConsumerConfigs",
           "value": [{"key": "auto.offset.reset", "value": "earliest"},
                     {"key": "default.api.timeout.ms", "value": 60000}]},
          {"name": "stageOnRecordError", "value": "TO_ERROR"}
        ],
        "uiInfo": {"label": "Data Source", "xPos": 60, "yPos": 50, "stageType": "SOURCE"},
        "inputLanes": [],
        "outputLanes": ["EDHKafkaConsumerUser_01OutputLane15610175272980"],
        "eventLanes": [],
        "services": []
      },
      {
        "instanceName": "PointSelector_01",
        "library": "edh-streaming-calculator-lib",
        "stageName": "CALC_PACKAGE_PointSelectorDProcessor",
        "stageVersion": "4",
        "configuration": [
          {"name": "pointSelectorConfig.points", "value": ["m1::power", "m1::energy"]},
          {"name": "pointSelectorConfig.qualityFilter", "value": null},
          {"name": "stageOnRecordError", "value": "TO_ERROR"},
          {"name": "stageRequiredFields", "value": []},
          {"name": "stageRecordPreconditions", "value": []}
        ],
        "uiInfo": {"label": "Point Selector 1", "xPos": 280, "yPos": 50, "stageType": "PROCESSOR"},
        "inputLanes": ["EDHKafkaConsumerUser_01OutputLane15610175272980"],
        "outputLanes": ["PointSelector_01OutputLane15610175301234"],
        "eventLanes": ["PointSelector_01EventLane15610175309999"],
        "services": []
      },
      {
        "instanceName": "SimplifiedTimeWindowAggregator_01",
        "library": "edh-streaming-calculator-lib",
        "stageName": "CALC_PACKAGE_SimplifiedTimeWindowAggregatorDProcessor",
        "stageVersion": "4",
        "configuration": [
          {"name": "conf.rules", "value": [
            {"inputPoint": "m1::power", "windowSize": 15, "windowUnit": "minute",
             "outputPoint": "m1::power15m"}
          ]},
          {"name": "stageOnRecordError", "value": "TO_ERROR"}
        ],
        "uiInfo": {"label": "Simplified Sum", "xPos": 500, "yPos": 50, "stageType": "PROCESSOR"},
        "inputLanes": ["PointSelector_01OutputLane15610175301234"],
        "outputLanes": ["SimplifiedTimeWindowAggregator_01OutputLane15610175404321"],
        "eventLanes": [],
        "services": []
      },
      {
        "instanceName": "EDHKafkaProducer_01",
        "library": "KAFKA_LIB",
        "stageName": "PRODUCER_CLASS",
        "stageVersion": "3",
        "configuration": [
          {"name": "conf.dataFormat", "value": "JSON"},
          {"name": "conf.dataGeneratorFormatConfig.charset", "value": "UTF-8"},
          {"name": "conf.dataGeneratorFormatConfig.avroSchema", "value": null},
          {"name": "conf.topicExpression", "value": "${record:value('/topic')}"},
          {"name": "conf.topicWhiteList", "value": "*"},
          {"name": "conf.topic", "value": "MEASURE_POINT_CAL_o15"},
          {"name": "conf.partitionStrategy", "value": "DEFAULT"},
          {"name": "conf.partition", "value": "${record:value('/assetId')}${record:value('/pointId')}"},
          {"name": "conf.kafkaProducerConfigs", "value": [{"key": "retries", "value": "3"}]},
          {"name": "stageOnRecordError", "value": "TO_ERROR"}
        ],
        "uiInfo": {"label": "Data Destination", "xPos": 720, "yPos": 50, "stageType": "TARGET"},
        "inputLanes": ["SimplifiedTimeWindowAggregator_01OutputLane15610175404321"],
        "outputLanes": [],
        "eventLanes": [],
        "services": []
      }
    ],
    "errorStage": {
      "instanceName": "EDHDiscard_ErrorStage",
      "library": "streamsets-datacollector-basic-lib",
      "stageName": "DISCARD_CLASS",
      "stageVersion": "1",
      "configuration": [],
      "uiInfo": {"label": "Error Records - EDH Discard", "stageType": "TARGET"},
      "inputLanes": [], "outputLanes": [], "eventLanes": [], "services": []
    },
    "startEventStages": [{
      "instanceName": "EDHDiscard_StartEventStage",
      "library": "streamsets-datacollector-basic-lib",
      "stageName": "DISCARD_CLASS",
      "stageVersion": "1",
      "configuration": [],
      "inputLanes": [], "outputLanes": [], "eventLanes": [], "services": []
    }],
    "stopEventStages": [{
      "instanceName": "EDHDiscard_StopEventStage",
      "library": "streamsets-datacollector-basic-lib",
      "stageName": "DISCARD_CLASS",
      "stageVersion": "1",
      "configuration": [],
      "inputLanes": [], "outputLanes": [], "eventLanes": [], "services": []
    }],
    "statsAggregatorStage": null,
    "info": {"title": "PowerSum", "sdcVersion": "3.3.2-SNAPSHOT"},
    "metadata": {"labels": []},
    "valid": true,
    "issues": {"issueCount": 0, "stageIssues": {}, "pipelineIssues": []},
    "previewable": true
  },
  "pipelineRules": {
    "schemaVersion": 3,
    "metricsRuleDefinitions": [
      {"id": "badRecordsAlertID", "metricId": "pipeline.batchErrorRecords.counter",
       "condition": "${value() > 100}", "enabled": false}
    ],
    "dataRuleDefinitions": [],
    "driftRuleDefinitions": []
  },
  "libraryDefinitions": null
}
"""
for placeholder in ("KAFKA_LIB", "CONSUMER_CLASS", "PRODUCER_CLASS", "DISCARD_CLASS", "CALC_PACKAGE"):
    EXPORT = EXPORT.replace(placeholder, globals()[placeholder])


def export() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXPORT)
    return doc


def sdc_stage(
    instance: str, stage_name: str | None, configuration: list[dict[str, Any]], **lanes: list[str]
) -> dict[str, Any]:
    stage: dict[str, Any] = {"instanceName": instance, "configuration": configuration}
    if stage_name is not None:
        stage["stageName"] = stage_name
    return stage | {"inputLanes": [], "outputLanes": [], "eventLanes": []} | lanes


def sdc_consumer(*configuration: dict[str, Any], **lanes: list[str]) -> dict[str, Any]:
    entries = [{"name": "kafkaConfigBean.topic", "value": "MEASURE_POINT_INTERNAL_o15"}, *configuration]
    return sdc_stage("EDHKafkaConsumerUser_01", CONSUMER_CLASS, entries, **({"outputLanes": ["in"]} | lanes))


def sdc_producer(*configuration: dict[str, Any], **lanes: list[str]) -> dict[str, Any]:
    entries = [{"name": "conf.topic", "value": "MEASURE_POINT_CAL_o15"}, *configuration]
    return sdc_stage("EDHKafkaProducer_01", PRODUCER_CLASS, entries, **({"inputLanes": ["in"]} | lanes))


def pipeline_of(*stages: dict[str, Any]) -> dict[str, Any]:
    return {"pipelineConfig": {"title": "t", "stages": list(stages)}}


def stage_of(pipeline: PipelineDef, instance: str) -> StageDef:
    return next(s for s in pipeline.stages if s.instanceName == instance)


def import_fails(doc: dict[str, Any]) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        import_streamsets(doc)
    return info.value


# --- the demo-shaped export ----------------------------------------------------------------------


def test_export_imports_stages_lanes_and_configs() -> None:
    pipeline = import_streamsets(export())

    assert pipeline.name == "PowerSum"
    assert pipeline.description is None  # "" in SDC means no description
    assert [(s.instanceName, s.stageName) for s in pipeline.stages] == [
        ("EDHKafkaConsumerUser_01", "EDHKafkaConsumer"),
        ("PointSelector_01", "PointSelector"),
        ("SimplifiedTimeWindowAggregator_01", "SimplifiedTimeWindowAggregator"),
        ("EDHKafkaProducer_01", "EDHKafkaProducer"),
    ]
    assert stage_of(pipeline, "EDHKafkaConsumerUser_01").config == {
        "topic": "MEASURE_POINT_INTERNAL_o15",
        "kafkaConfig": {
            "auto.offset.reset": "earliest",
            "default.api.timeout.ms": "60000",
            "group.id": "power-sum",
        },
    }
    assert stage_of(pipeline, "EDHKafkaProducer_01").config == {
        "topic": "MEASURE_POINT_CAL_o15",
        "kafkaConfig": {"retries": "3"},
    }
    assert stage_of(pipeline, "PointSelector_01").config == {"points": ["m1::power", "m1::energy"]}
    selector = stage_of(pipeline, "PointSelector_01")
    assert selector.inputLanes == ["EDHKafkaConsumerUser_01OutputLane15610175272980"]
    assert selector.outputLanes == ["PointSelector_01OutputLane15610175301234"]


def test_imported_export_builds_the_same_dag() -> None:
    graph = build_graph(import_streamsets(export()))

    assert [(n.name, n.inputs) for n in graph.nodes] == [
        ("EDHKafkaConsumerUser_01", ()),
        ("PointSelector_01", ("EDHKafkaConsumerUser_01",)),
        ("SimplifiedTimeWindowAggregator_01", ("PointSelector_01",)),
        ("EDHKafkaProducer_01", ("SimplifiedTimeWindowAggregator_01",)),
    ]
    source, window, sink = graph.nodes[0].config, graph.nodes[2].config, graph.nodes[3].config
    assert isinstance(source, ConsumerConfig) and source.auto_offset_reset == "earliest"
    assert isinstance(window, SimplifiedWindowConfig) and window.rules[0].window_ms == 15 * 60_000
    assert isinstance(sink, ProducerConfig) and sink.topic == "MEASURE_POINT_CAL_o15"


def test_error_event_and_stats_stages_are_dropped() -> None:
    pipeline = import_streamsets(export())

    names = {s.instanceName for s in pipeline.stages}
    assert not any(n.startswith("EDHDiscard") for n in names)
    assert len(names) == 4
    assert "eventLanes" not in pipeline.model_dump()["stages"][1]


def test_bare_pipeline_config_imports_like_the_full_export() -> None:
    assert import_streamsets(export()["pipelineConfig"]) == import_streamsets(export())


def test_load_pipeline_document_detects_the_format() -> None:
    imported = import_streamsets(export())
    native = imported.model_dump(exclude_none=True)

    assert load_pipeline_document(export()) == imported
    assert "pipelineConfig" not in native
    assert load_pipeline_document(native) == imported
    assert load_pipeline_document(imported) is imported


def test_load_pipeline_document_reports_native_errors_natively() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline_document({"stages": [{"instanceName": "PointSelector_01", "configuration": []}]})

    assert (info.value.stage, info.value.field) == ("PointSelector_01", "configuration")


# --- operator resolution -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage_name", "instance", "expected"),
    [
        (f"{CALC_PACKAGE}_PointSelectorDProcessor", "Selector_01", "PointSelector"),
        (f"{CALC_PACKAGE}_PointSelector", "Selector_01", "PointSelector"),
        ("PointSelector", "Selector_01", "PointSelector"),
        (f"{CALC_PACKAGE}_SomethingElseDProcessor", "PointSelector_03", "PointSelector"),
        (None, "PointSelector_03", "PointSelector"),
        (f"{CALC_PACKAGE}_SomethingElseDProcessor", "Mystery_01", "SomethingElseDProcessor"),
        (None, "Mystery_01", None),
    ],
)
def test_stage_name_comes_from_the_class_name_or_instance_prefix(
    stage_name: str | None, instance: str, expected: str | None
) -> None:
    points = [{"name": "pointSelectorConfig.points", "value": ["m1::power"]}]
    doc = pipeline_of(
        sdc_consumer(), sdc_stage(instance, stage_name, points, inputLanes=["in"], outputLanes=["out"])
    )

    assert stage_of(import_streamsets(doc), instance).stageName == expected


@pytest.mark.parametrize(
    ("stage_name", "instance", "field", "reason"),
    [
        (
            "com_streamsets_pipeline_stage_processor_jython_JythonDProcessor",
            "JythonEvaluator_01",
            "stageName",
            "unknown operator JythonDProcessor / JythonEvaluator",
        ),
        (None, "JythonEvaluator_01", "instanceName", "unknown operator JythonEvaluator"),
    ],
)
def test_unknown_stage_fails_when_built_naming_the_stage(
    stage_name: str | None, instance: str, field: str, reason: str
) -> None:
    doc = pipeline_of(
        sdc_consumer(),
        sdc_stage(instance, stage_name, [], inputLanes=["in"], outputLanes=["out"]),
        sdc_producer(inputLanes=["out"]),
    )

    with pytest.raises(PipelineError) as info:
        build_graph(import_streamsets(doc))

    assert (info.value.stage, info.value.field, info.value.reason) == (instance, field, reason)


# --- config conversion --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdc_name", "ours"),
    [
        ("conf.points", "points"),
        ("config.points", "points"),
        ("pointSelectorConfig.points", "points"),
        ("selectorConfigBean.inner.points", "inner.points"),
        ("selectorConfigBean.innerConf.points", "points"),
        ("points", "points"),
        ("ruleSet.points", "ruleSet.points"),
    ],
)
def test_bean_prefixes_are_stripped(sdc_name: str, ours: str) -> None:
    doc = pipeline_of(
        sdc_consumer(),
        sdc_stage("PointSelector_01", None, [{"name": sdc_name, "value": ["m1::power"]}], inputLanes=["in"]),
    )

    assert stage_of(import_streamsets(doc), "PointSelector_01").config == {ours: ["m1::power"]}


def test_unmapped_config_names_fail_as_config_fields_when_built() -> None:
    configuration: list[dict[str, Any]] = [
        {"name": "conf.points", "value": ["m1::power"]},
        {"name": "conf.qualityFilter", "value": "GOOD"},
    ]
    doc = pipeline_of(
        sdc_consumer(),
        sdc_stage("PointSelector_01", None, configuration, inputLanes=["in"], outputLanes=["out"]),
        sdc_producer(inputLanes=["out"]),
    )

    with pytest.raises(PipelineError) as info:
        build_graph(import_streamsets(doc))

    assert (info.value.stage, info.value.field) == ("PointSelector_01", "config.qualityFilter")


def test_two_names_mapping_to_one_key_are_refused() -> None:
    configuration = [
        {"name": "conf.points", "value": ["m1::a"]},
        {"name": "pointSelectorConfig.points", "value": ["m1::b"]},
    ]
    doc = pipeline_of(sdc_consumer(), sdc_stage("PointSelector_01", None, configuration, inputLanes=["in"]))

    error = import_fails(doc)

    assert (error.stage, error.field) == ("PointSelector_01", "pointSelectorConfig.points")
    assert error.reason == "pointSelectorConfig.points and conf.points both map to 'points'"


# --- Kafka stages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "kafka_config"),
    [
        ([], {}),
        ([{"name": "kafkaConfigBean.consumerGroup", "value": "g1"}], {"group.id": "g1"}),
        ([{"name": "kafkaConfigBean.consumerGroup", "value": ""}], {}),
        (
            [
                {"name": "kafkaConfigBean.consumerGroup", "value": "g1"},
                {
                    "name": "kafkaConfigBean.kafkaConsumerConfigs",
                    "value": [{"key": "group.id", "value": "g2"}],
                },
            ],
            {"group.id": "g2"},
        ),
        (
            [
                {
                    "name": "kafkaConfigBean.kafkaConsumerConfigs",
                    "value": [
                        {"key": "max.poll.records", "value": 500},
                        {"key": "enable.auto.commit", "value": False},
                    ],
                }
            ],
            {"max.poll.records": "500", "enable.auto.commit": "false"},
        ),
        ([{"name": "kafkaConfigBean.kafkaProducerConfigs", "value": [{"key": "a", "value": "b"}]}], {}),
    ],
)
def test_consumer_kafka_config(entries: list[dict[str, Any]], kafka_config: dict[str, str]) -> None:
    pipeline = import_streamsets(pipeline_of(sdc_consumer(*entries), sdc_producer()))

    assert stage_of(pipeline, "EDHKafkaConsumerUser_01").config == {
        "topic": "MEASURE_POINT_INTERNAL_o15",
        "kafkaConfig": kafka_config,
    }


@pytest.mark.parametrize(
    ("stage_name", "instance"),
    [
        ("com_streamsets_pipeline_stage_destination_kafka_cluster_KafkaDTargetUser", "KafkaOut_01"),
        ("com_streamsets_pipeline_stage_destination_kafka_cluster_KafkaDTarget", "KafkaOut_01"),
        ("com_streamsets_pipeline_stage_destination_kafka_KafkaDTarget", "KafkaOut_01"),
        ("com_example_UnknownKafkaTarget", "EDHKafkaProducer_02"),
        (None, "EDHKafkaProducer_02"),
    ],
)
def test_producer_is_recognised_by_class_or_instance_prefix(stage_name: str | None, instance: str) -> None:
    producer = sdc_producer({"name": "conf.kafkaProducerConfigs", "value": [{"key": "acks", "value": "all"}]})
    producer["instanceName"] = instance
    del producer["stageName"]
    if stage_name:
        producer["stageName"] = stage_name

    pipeline = import_streamsets(pipeline_of(sdc_consumer(), producer))

    stage = stage_of(pipeline, instance)
    assert stage.stageName == "EDHKafkaProducer"
    assert stage.config == {"topic": "MEASURE_POINT_CAL_o15", "kafkaConfig": {"acks": "all"}}


@pytest.mark.parametrize(
    "stage_name",
    [
        "com_streamsets_pipeline_stage_origin_kafka_cluster_KafkaDSourceUser",
        "com_streamsets_pipeline_stage_origin_kafka_cluster_KafkaDSource",
        "com_streamsets_pipeline_stage_origin_kafka_KafkaDSource",
    ],
)
def test_consumer_is_recognised_by_class(stage_name: str) -> None:
    consumer = sdc_consumer()
    consumer |= {"instanceName": "KafkaIn_01", "stageName": stage_name}

    stage = stage_of(import_streamsets(pipeline_of(consumer, sdc_producer())), "KafkaIn_01")

    assert stage.stageName == "EDHKafkaConsumer"
    assert stage.config == {"topic": "MEASURE_POINT_INTERNAL_o15", "kafkaConfig": {}}


def test_kafka_stage_without_topic_fails_on_config_topic_when_built() -> None:
    consumer = sdc_stage("EDHKafkaConsumerUser_01", CONSUMER_CLASS, [], outputLanes=["in"])

    with pytest.raises(PipelineError) as info:
        build_graph(import_streamsets(pipeline_of(consumer, sdc_producer())))

    assert (info.value.stage, info.value.field) == ("EDHKafkaConsumerUser_01", "config.topic")


# --- malformed exports -----------------------------------------------------------------------------------


def with_consumer_entry(name: str, value: Any) -> dict[str, Any]:
    return pipeline_of(sdc_consumer({"name": name, "value": value}), sdc_producer())


def with_stage_field(field: str, value: Any) -> dict[str, Any]:
    doc = pipeline_of(sdc_consumer(), sdc_producer())
    doc["pipelineConfig"]["stages"][1][field] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "stage", "field", "reason"),
    [
        ({"pipelineConfig": []}, None, "pipelineConfig", "expected an object"),
        ({"pipelineConfig": {}}, None, "pipelineConfig.stages", "list of stage objects"),
        ({"pipelineConfig": {"stages": ["x"]}}, None, "pipelineConfig.stages", "list of stage objects"),
        (pipeline_of(sdc_consumer(), {"stageName": PRODUCER_CLASS}), "#1", "instanceName", "non-empty"),
        (with_stage_field("stageName", 7), "EDHKafkaProducer_01", "stageName", "expected a string"),
        (with_stage_field("configuration", {}), "EDHKafkaProducer_01", "configuration", "{name, value}"),
        (with_stage_field("configuration", [{"value": 1}]), "EDHKafkaProducer_01", "configuration.0", "name"),
        (with_stage_field("inputLanes", "in"), "EDHKafkaProducer_01", "inputLanes", "lane names"),
        (with_stage_field("outputLanes", [1]), "EDHKafkaProducer_01", "outputLanes", "lane names"),
        (
            with_consumer_entry("kafkaConfigBean.dataFormat", "AVRO"),
            "EDHKafkaConsumerUser_01",
            "dataFormat",
            "only JSON records",
        ),
        (
            with_consumer_entry("kafkaConfigBean.kafkaConsumerConfigs", {"a": "b"}),
            "EDHKafkaConsumerUser_01",
            "kafkaConsumerConfigs",
            "list of {key, value}",
        ),
        (
            with_consumer_entry("kafkaConfigBean.kafkaConsumerConfigs", [{"key": "a", "value": None}]),
            "EDHKafkaConsumerUser_01",
            "kafkaConsumerConfigs.0",
            "{key, value}",
        ),
        (
            with_consumer_entry("kafkaConfigBean.kafkaConsumerConfigs", [{"value": "x"}]),
            "EDHKafkaConsumerUser_01",
            "kafkaConsumerConfigs.0",
            "{key, value}",
        ),
        (
            pipeline_of(sdc_consumer(), sdc_producer({"name": "conf.runtimeTopicResolution", "value": True})),
            "EDHKafkaProducer_01",
            "runtimeTopicResolution",
            "not supported",
        ),
    ],
)
def test_malformed_exports_name_stage_and_field(
    doc: dict[str, Any], stage: str | None, field: str, reason: str
) -> None:
    error = import_fails(doc)

    assert (error.stage, error.field) == (stage, field)
    assert reason in error.reason


def test_a_stage_reading_an_event_lane_is_refused() -> None:
    doc = export()
    stages = doc["pipelineConfig"]["stages"]
    stages[2]["inputLanes"] = ["PointSelector_01EventLane15610175309999"]

    error = import_fails(doc)

    assert (error.stage, error.field) == ("SimplifiedTimeWindowAggregator_01", "inputLanes")
    assert "event lane 'PointSelector_01EventLane15610175309999'" in error.reason


def test_an_invalid_instance_name_is_reported_by_the_native_model() -> None:
    doc = export()
    doc["pipelineConfig"]["stages"][1]["instanceName"] = "Point Selector 1"

    error = import_fails(doc)

    assert (error.stage, error.field) == ("Point Selector 1", "instanceName")


def test_import_does_not_modify_the_export() -> None:
    doc = export()
    before = copy.deepcopy(doc)

    import_streamsets(doc)

    assert doc == before
