"""List / Get / Operate Pipeline, Offset and Lag, Reset Offset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from streamcalc.log import ResetTarget
from streamcalc.service import codes
from streamcalc.service.deps import Body, OrgId
from streamcalc.service.envelope import EnvelopeResponse, envelope
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.schemas import (
    ENVELOPE,
    Flag,
    ListQuery,
    OperateAction,
    SaveRequest,
    StartRequest,
    body,
)
from streamcalc.service.validation import parse_body

router = APIRouter(prefix="/streaming/v2.0/streaming", tags=["pipelines"])
IfReleased = Annotated[Flag, Query(description="the released version; else the design version")]


def _service(request: Request) -> PipelineService:
    service: PipelineService = request.app.state.pipelines
    return service


@router.get("/pipelines", summary="List Pipelines", responses=ENVELOPE)
def list_pipelines(request: Request, org: OrgId, query: Annotated[ListQuery, Query()]) -> EnvelopeResponse:
    if query.isSystem:  # no system pipelines: Data Reader/Writer are built into the runtime
        return envelope(request, {"count": 0, "pipelines": []})
    data = _service(request).list_pipelines(
        org, released=query.ifReleased, page_no=query.pageNo, page_size=query.pageSize
    )
    return envelope(request, data)


@router.get("/pipeline/{pipeline_id}", summary="Get Pipeline Details", responses=ENVELOPE)
def pipeline_details(
    request: Request, pipeline_id: str, org: OrgId, ifReleased: IfReleased = False
) -> EnvelopeResponse:
    return envelope(request, _service(request).details(org, pipeline_id, ifReleased))


@router.post(
    "/pipeline/{pipeline_id}",
    summary="Operate Pipeline (save | release | start | pause | stop)",
    description="save: SaveRequest body (id `null` creates); start: StartRequest body; others: no body.",
    responses=ENVELOPE,
    openapi_extra=body({"oneOf": [SaveRequest.model_json_schema(), StartRequest.model_json_schema()]}),
)
def operate_pipeline(
    request: Request,
    pipeline_id: str,
    org: OrgId,
    body: Body,
    action: Annotated[OperateAction, Query(description="what to do")],
) -> EnvelopeResponse:
    service = _service(request)
    doc = body if body.strip() else b"{}"
    if action == "save":
        save = parse_body(SaveRequest, doc, codes.CONFIG_INVALID)
        return envelope(request, service.save(org, None if pipeline_id == "null" else pipeline_id, save))
    if action == "release":
        service.release(org, pipeline_id)
    elif action == "start":
        service.start(org, pipeline_id, parse_body(StartRequest, doc, codes.CONFIG_INVALID))
    elif action == "pause":
        service.pause(org, pipeline_id)
    else:
        service.stop(org, pipeline_id)
    return envelope(request, "")


@router.get("/pipeline/{pipeline_id}/offset-lag", summary="Get Pipeline Offset and Lag", responses=ENVELOPE)
def offset_lag(request: Request, pipeline_id: str, org: OrgId) -> EnvelopeResponse:
    return envelope(request, _service(request).offset_lag(org, pipeline_id))


@router.post(
    "/pipeline/{pipeline_id}/offset",
    summary="Reset Pipeline Offset (to latest, or ?to=earliest)",
    responses=ENVELOPE,
)
def reset_offset(
    request: Request,
    pipeline_id: str,
    org: OrgId,
    to: Annotated[ResetTarget, Query(description="where the next start reads from")] = "latest",
) -> EnvelopeResponse:
    _service(request).reset_offset(org, pipeline_id, to)
    return envelope(request, "")
