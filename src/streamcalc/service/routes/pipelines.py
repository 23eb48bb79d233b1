"""List / Get / Operate Pipeline, Offset and Lag, Reset Offset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from streamcalc.service import codes
from streamcalc.service.deps import Body, OrgId, json_body
from streamcalc.service.envelope import envelope
from streamcalc.service.errors import ApiError
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.schemas import ENVELOPE, SaveRequest, StartRequest, body

router = APIRouter(prefix="/streaming/v2.0/streaming", tags=["pipelines"])
ACTIONS = ("save", "release", "start", "pause", "stop")


def _service(request: Request) -> PipelineService:
    service: PipelineService = request.app.state.pipelines
    return service


@router.get("/pipelines", summary="List Pipelines", responses=ENVELOPE)
def list_pipelines(
    request: Request,
    org: OrgId,
    pageSize: str = "10",
    pageNo: str = "1",
    isSystem: str = "false",
    ifReleased: str = "false",
) -> JSONResponse:
    size, number = _positive(pageSize, "pageSize"), _positive(pageNo, "pageNo")
    if _flag(isSystem, "isSystem"):  # no system pipelines: Data Reader/Writer are built into the runtime
        return envelope(request, {"count": 0, "pipelines": []})
    data = _service(request).list_pipelines(
        org, released=_flag(ifReleased, "ifReleased"), page_no=number, page_size=size
    )
    return envelope(request, data)


@router.get("/pipeline/{pipeline_id}", summary="Get Pipeline Details", responses=ENVELOPE)
def pipeline_details(
    request: Request, pipeline_id: str, org: OrgId, ifReleased: str = "false"
) -> JSONResponse:
    return envelope(request, _service(request).details(org, pipeline_id, _flag(ifReleased, "ifReleased")))


@router.post(
    "/pipeline/{pipeline_id}",
    summary="Operate Pipeline (save | release | start | pause | stop)",
    description="save: SaveRequest body (id `null` creates); start: StartRequest body; others: no body.",
    responses=ENVELOPE,
    openapi_extra=body({"oneOf": [SaveRequest.model_json_schema(), StartRequest.model_json_schema()]}),
)
def operate_pipeline(
    request: Request, pipeline_id: str, org: OrgId, body: Body, action: str = ""
) -> JSONResponse:
    service = _service(request)
    if action not in ACTIONS:
        raise ApiError(codes.MISSING_PARAM, f"Missing param action: one of {', '.join(ACTIONS)}")
    if action == "save":
        return envelope(
            request, service.save(org, None if pipeline_id == "null" else pipeline_id, _json(body))
        )
    if action == "release":
        service.release(org, pipeline_id)
    elif action == "start":
        service.start(org, pipeline_id, _json(body))
    elif action == "pause":
        service.pause(org, pipeline_id)
    else:
        service.stop(org, pipeline_id)
    return envelope(request, "")


@router.get("/pipeline/{pipeline_id}/offset-lag", summary="Get Pipeline Offset and Lag", responses=ENVELOPE)
def offset_lag(request: Request, pipeline_id: str, org: OrgId) -> JSONResponse:
    return envelope(request, _service(request).offset_lag(org, pipeline_id))


@router.post(
    "/pipeline/{pipeline_id}/offset",
    summary="Reset Pipeline Offset (to latest, or ?to=earliest)",
    responses=ENVELOPE,
)
def reset_offset(request: Request, pipeline_id: str, org: OrgId, to: str = "latest") -> JSONResponse:
    if to not in ("earliest", "latest"):
        raise ApiError(codes.MISSING_PARAM, "Missing param to: earliest or latest")
    _service(request).reset_offset(org, pipeline_id, "earliest" if to == "earliest" else "latest")
    return envelope(request, "")


def _json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    doc: dict[str, Any] = json_body(
        body, dict, codes.CONFIG_INVALID, "The Stream configuration JSON is invalid"
    )
    return doc


def _flag(raw: str, name: str) -> bool:
    """Booleans as Java (true) and Python (True) clients send them."""
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(codes.MISSING_PARAM, f"Missing param {name}: expected true or false")
    return value in ("true", "1")


def _positive(raw: str, name: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ApiError(codes.MISSING_PARAM, f"Missing param {name}: expected a positive integer")
    return int(raw)
