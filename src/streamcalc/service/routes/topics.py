"""Ingest and consume (our extension): records in and out of an org's topics, same auth."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request

from streamcalc.log import InvalidTopic, TopicConfig, check_topic_name
from streamcalc.log.records import record_entries
from streamcalc.records import OriginError, Record, decode_record, normalise_origin
from streamcalc.service import codes
from streamcalc.service.deps import Body, OrgId, backends
from streamcalc.service.envelope import EnvelopeResponse, envelope
from streamcalc.service.errors import ApiError
from streamcalc.service.schemas import ENVELOPE, Records, RecordsQuery, body
from streamcalc.service.validation import parse_body

router = APIRouter(prefix="/streaming/v2.0/topics", tags=["topics"])


def _topic(topic: str, org: str) -> str:
    """A topic belongs to the org whose id ends its name (MEASURE_POINT_INTERNAL_{orgId}, ...)."""
    try:
        check_topic_name(topic)
    except InvalidTopic as e:
        raise ApiError(codes.MISSING_PARAM, f"Missing param topic: {e}") from e
    if not topic.endswith(f"_{org}"):
        raise ApiError(codes.WRONG_PIPELINE_OR_ORG, "Wrong pipelineId or OU has no privilege")
    return topic


@router.post(
    "/{topic}/records",
    summary="Append internal or origin-format records to a topic",
    responses=ENVELOPE,
    openapi_extra=body(Records),
)
def ingest(request: Request, topic: str, org: OrgId, body: Body) -> EnvelopeResponse:
    name = _topic(topic, org)
    items = parse_body(Records, body, codes.MISSING_PARAM).root
    records: list[Record] = []
    rejected: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        for reason in _collect(item, org, records):
            rejected.append({"index": i, "reason": reason})
    log = backends(request).log
    log.append(record_entries(log, name, log.ensure_topic(TopicConfig(name)).partitions, records))
    return envelope(request, {"count": len(records), "rejected": rejected})


@router.get("/{topic}/records", summary="Read records of a topic from an offset", responses=ENVELOPE)
def consume(
    request: Request, topic: str, org: OrgId, query: Annotated[RecordsQuery, Query()]
) -> EnvelopeResponse:
    name = _topic(topic, org)
    partition = query.partition
    log = backends(request).log
    config = log.topic(name)
    if config is None or partition >= config.partitions:
        return envelope(request, {"records": [], "nextOffset": query.offset})
    result = log.read(name, partition, query.offset, query.limit)
    records = [
        {"offset": result.offset_of(i), "partition": partition, "record": json.loads(m)}
        for i, m in enumerate(result.messages)
    ]
    return envelope(request, {"records": records, "nextOffset": result.next_offset})


def _collect(item: Any, org: str, out: list[Record]) -> list[str]:
    """Validate one item (internal record or origin message) into `out`; returns why parts failed."""
    if not isinstance(item, dict):
        return ["expected a JSON object"]
    raw = msgspec.json.encode(item)
    try:
        if "payload" in item:
            good, bad = normalise_origin(raw)
            errors = [f"{e.asset_id}/{e.point_id}: {e.reason}" for e in bad]
        else:
            good, errors = [decode_record(raw)], []
    except (msgspec.DecodeError, OriginError) as e:
        return [f"invalid record: {e}"]
    foreign = [r for r in good if r.orgId != org]
    if foreign:
        return [*errors, f"orgId {foreign[0].orgId} is not the caller's org"]
    out.extend(good)
    return errors
