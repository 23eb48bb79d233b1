"""Import of StreamSets Data Collector (SDC) pipeline exports, the format EnOS exports and imports.

An export is `{"pipelineConfig": {...}, "pipelineRules": ..., "libraryDefinitions": ...}`; only
`pipelineConfig.stages` matters to us. Each SDC stage becomes one native stage:

- The operator comes from the last `_` segment of the SDC `stageName` (a Java class name with
  dots turned into `_`), with a trailing `DSource` / `DProcessor` / `DTarget` dropped, and
  falls back to the instanceName prefix exactly as `resolve_operator` does. The EDH Kafka
  stages have SDC class names of their own (`_SDC_KAFKA_STAGES`).
- `configuration` `[{name, value}]` becomes our camelCase config: leading bean segments such
  as `conf.` or `xxxConfig.` are stripped (`conf.rules` -> `rules`), null values (unset in
  SDC) and SDC's per-stage error settings (`stageOnRecordError`, ...) are dropped. The Kafka
  stages keep only their topic and Kafka client settings: data format, batching and
  partitioning are the runtime's business here.
- `inputLanes` / `outputLanes` are kept, so the DAG is the one drawn in SDC. Error, event and
  stats stages (`errorStage`, `startEventStages`, `stopEventStages`, `statsAggregatorStage`)
  and `eventLanes` are not imported: our error lane is built in, and we have no event streams.

The result is a plain `PipelineDef`; `build_graph` validates operators, configs and lanes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from streamcalc.pipeline.errors import PipelineError
from streamcalc.pipeline.graph import parse_pipeline, resolve_operator
from streamcalc.pipeline.model import PipelineDef, StageDef
from streamcalc.pipeline.templates import expand_template, is_template_document

_CONSUMER = "EDHKafkaConsumer"
_PRODUCER = "EDHKafkaProducer"

_SDC_KAFKA_STAGES = {
    # Last segment of the SDC stageName: the EDH "User" (advanced pipeline) variants seen in the
    # EnOS demo export, and the plain cluster / standard SDC Kafka stages with the same beans.
    "KafkaDSourceUser": _CONSUMER,
    "KafkaDSource": _CONSUMER,
    "KafkaDTargetUser": _PRODUCER,
    "KafkaDTarget": _PRODUCER,
}
_KAFKA_CLIENT_LISTS = {_CONSUMER: "kafkaConsumerConfigs", _PRODUCER: "kafkaProducerConfigs"}
_SDC_CLASS_SUFFIX = re.compile(r"D(?:Source|Processor|Target)$")
_BEAN_SEGMENT = re.compile(r"conf|config|[a-z][A-Za-z0-9]*(?:Config|ConfigBean|Bean|Conf)")
_SDC_STAGE_SETTINGS = frozenset({"stageOnRecordError", "stageRequiredFields", "stageRecordPreconditions"})


def load_pipeline_document(doc: Mapping[str, Any] | PipelineDef) -> PipelineDef:
    """A native definition, an SDC export (recognised by its `pipelineConfig` key) or a
    calculation template document, expanded (by its `templateType`; 1 marks a native one)."""
    if isinstance(doc, Mapping) and "templateType" in doc:
        if is_template_document(doc):
            return expand_template(doc)
        doc = {k: v for k, v in doc.items() if k != "templateType"}
    if isinstance(doc, Mapping) and "pipelineConfig" in doc:
        return import_streamsets(doc)
    return parse_pipeline(doc)


def import_streamsets(doc: Mapping[str, Any]) -> PipelineDef:
    """Convert an SDC export (or its bare `pipelineConfig` object) into a native `PipelineDef`."""
    config = doc.get("pipelineConfig", doc)
    if not isinstance(config, Mapping):
        raise PipelineError("expected an object", None, "pipelineConfig")
    stages = config.get("stages")
    if not isinstance(stages, list) or not all(isinstance(s, Mapping) for s in stages):
        raise PipelineError("expected a list of stage objects", None, "pipelineConfig.stages")
    _check_no_event_inputs(stages)
    native: dict[str, Any] = {"stages": [_convert_stage(s, i) for i, s in enumerate(stages)]}
    for key, ours in (("title", "name"), ("description", "description")):
        if isinstance(config.get(key), str) and config[key]:
            native[ours] = config[key]
    return parse_pipeline(native)


def _convert_stage(stage: Mapping[str, Any], index: int) -> dict[str, Any]:
    name = stage.get("instanceName")
    if not isinstance(name, str) or not name:
        raise PipelineError("expected a non-empty string", f"#{index}", "instanceName")
    stage_name = _operator_name(stage.get("stageName"), name)
    settings = _settings(stage, name)
    config = _kafka_config(stage_name, settings, name) if stage_name in (_CONSUMER, _PRODUCER) else settings
    return {
        "instanceName": name,
        "stageName": stage_name,
        "config": config,
        "inputLanes": _lanes(stage, "inputLanes", name),
        "outputLanes": _lanes(stage, "outputLanes", name),
    }


def _operator_name(sdc_name: object, instance: str) -> str | None:
    """Our stageName for an SDC stage; an unresolved name is kept so the graph error shows it."""
    if sdc_name is not None and not isinstance(sdc_name, str):
        raise PipelineError("expected a string", instance, "stageName")
    last = sdc_name.rsplit("_", 1)[-1] if sdc_name else ""
    if last in _SDC_KAFKA_STAGES:
        return _SDC_KAFKA_STAGES[last]
    short = _SDC_CLASS_SUFFIX.sub("", last)
    for candidate in dict.fromkeys((short, last)):
        try:
            return resolve_operator(StageDef.model_construct(instanceName=instance, stageName=candidate)).name
        except PipelineError:
            continue
    return last or None


def _settings(stage: Mapping[str, Any], instance: str) -> dict[str, Any]:
    """`[{name, value}]` -> `{camelCaseName: value}`, bean prefixes stripped."""
    entries = stage.get("configuration", [])
    if not isinstance(entries, list):
        raise PipelineError("expected a list of {name, value}", instance, "configuration")
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for i, entry in enumerate(entries):
        sdc_name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(sdc_name, str) or not sdc_name:
            raise PipelineError("expected {name, value} with a string name", instance, f"configuration.{i}")
        value = entry.get("value")
        if value is None or sdc_name in _SDC_STAGE_SETTINGS:
            continue
        key = _strip_beans(sdc_name)
        if key in origin:
            raise PipelineError(f"{sdc_name} and {origin[key]} both map to {key!r}", instance, sdc_name)
        out[key], origin[key] = value, sdc_name
    return out


def _strip_beans(sdc_name: str) -> str:
    parts = sdc_name.split(".")
    while len(parts) > 1 and _BEAN_SEGMENT.fullmatch(parts[0]):
        parts.pop(0)
    return ".".join(parts)


def _kafka_config(op: str, settings: dict[str, Any], instance: str) -> dict[str, Any]:
    """Topic plus Kafka client settings; other SDC knobs (batch size, rates, keys) do not apply."""
    data_format = settings.get("dataFormat", "JSON")
    if data_format != "JSON":
        raise PipelineError(f"only JSON records are supported, got {data_format!r}", instance, "dataFormat")
    if settings.get("runtimeTopicResolution") is True:
        raise PipelineError(
            "topics resolved per record are not supported", instance, "runtimeTopicResolution"
        )
    client_list = _KAFKA_CLIENT_LISTS[op]
    kafka = _key_values(settings.get(client_list, []), instance, client_list)
    group = settings.get("consumerGroup")
    if op == _CONSUMER and isinstance(group, str) and group:
        kafka.setdefault("group.id", group)  # what SDC does with it; an explicit group.id wins
    config: dict[str, Any] = {"kafkaConfig": kafka}
    if "topic" in settings:
        config["topic"] = settings["topic"]
    return config


def _key_values(items: object, instance: str, field: str) -> dict[str, str]:
    if not isinstance(items, list):
        raise PipelineError("expected a list of {key, value}", instance, field)
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        key = item.get("key") if isinstance(item, Mapping) else None
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(key, str) or not key or not isinstance(value, str | int | float | bool):
            raise PipelineError("expected {key, value} with a string key", instance, f"{field}.{i}")
        # Kafka client settings are strings; SDC exports numbers and booleans as JSON scalars.
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _lanes(stage: Mapping[str, Any], field: str, instance: str) -> list[str]:
    lanes = stage.get(field, [])
    if not isinstance(lanes, list) or not all(isinstance(x, str) for x in lanes):
        raise PipelineError("expected a list of lane names", instance, field)
    return lanes


def _check_no_event_inputs(stages: list[Mapping[str, Any]]) -> None:
    """Event lanes are dropped, so a stage reading one would otherwise fail as a missing lane."""

    def lanes(stage: Mapping[str, Any], field: str) -> list[str]:
        value = stage.get(field)
        return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []

    events = {lane for s in stages for lane in lanes(s, "eventLanes")}
    for s in stages:
        hit = next((x for x in lanes(s, "inputLanes") if x in events), None)
        if hit is not None:
            raise PipelineError(
                f"reads event lane {hit!r}; event streams are not supported",
                str(s.get("instanceName")),
                "inputLanes",
            )
