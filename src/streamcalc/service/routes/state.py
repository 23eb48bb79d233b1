"""Get / Delete Stage State (the stage of a pipeline, for assets x points)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request

from streamcalc.catalog import AuditEntry
from streamcalc.service.deps import Body, Caller, OrgId, backends
from streamcalc.service.envelope import EnvelopeResponse, envelope
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.schemas import ENVELOPE, StageStateRequest, StateAction, body
from streamcalc.service.stage_state import parse_request

router = APIRouter(prefix="/streaming/v2.0", tags=["stage state"])
log = logging.getLogger(__name__)


@router.post(
    "/stage-state",
    summary="Get or Delete Stage State (action=get | delete)",
    description="get: data.items, one per (asset, point) with state; delete (PAUSED only): data true.",
    responses=ENVELOPE,
    openapi_extra=body(StageStateRequest),
)
def stage_state(
    request: Request,
    org: OrgId,
    caller: Caller,
    body: Body,
    action: Annotated[StateAction, Query(description="get the state, or delete it")],
) -> EnvelopeResponse:
    req = parse_request(body)
    pipelines: PipelineService = request.app.state.pipelines
    if action == "get":
        return envelope(request, {"items": pipelines.get_state(org, req)})
    deleted = pipelines.delete_state(org, req)
    detail = {
        "stage": req.stage,
        "assets": len(req.asset_ids),
        "points": len(req.point_ids),
        "keysRequested": len(req.asset_ids) * len(req.point_ids),
        "keysDeleted": deleted,
    }
    opened = backends(request)
    opened.catalog.audit(
        AuditEntry(org, caller.app_key, "deleteStageState", req.pipeline_id, detail, opened.clock.wall_ms())
    )
    log.info(
        "org %s: %s deleted %d state keys of %s/%s", org, caller.app_key, deleted, req.pipeline_id, req.stage
    )
    return envelope(request, True)
