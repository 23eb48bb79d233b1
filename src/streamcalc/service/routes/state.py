"""Get / Delete Stage State (the stage of a pipeline, for assets x points), and ours: a dry-run
delete, the deletions kept for undo, and restoring one."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from streamcalc.catalog import AuditEntry
from streamcalc.service import codes
from streamcalc.service.deps import Body, Caller, OrgId, backends
from streamcalc.service.envelope import EnvelopeResponse, envelope
from streamcalc.service.errors import ApiError
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.schemas import (
    ENVELOPE,
    DeletionsQuery,
    RestoreRequest,
    StageStateRequest,
    StateQuery,
    body,
)
from streamcalc.service.stage_state import parse_request
from streamcalc.service.validation import parse_body

router = APIRouter(prefix="/streaming/v2.0", tags=["stage state"])
log = logging.getLogger(__name__)


@router.post(
    "/stage-state",
    summary="Get or Delete Stage State (action=get | delete), or restore a deletion (ours)",
    description="get: data.items, one per (asset, point) with state; delete (PAUSED only): data true, "
    "the values kept for undo; delete&dryRun=true (ours, any status): data = keys that hold state, "
    "nothing deleted; restore (ours, body {pipelineId, deletionId}): data = keys put back.",
    responses=ENVELOPE,
    openapi_extra=body(StageStateRequest),
)
def stage_state(
    request: Request, org: OrgId, caller: Caller, body: Body, query: Annotated[StateQuery, Query()]
) -> EnvelopeResponse:
    pipelines: PipelineService = request.app.state.pipelines
    if query.dryRun and query.action != "delete":
        raise ApiError(codes.MISSING_PARAM, "Missing param dryRun: only action=delete has a dry run")
    if query.action == "restore":
        return _restore(request, org, caller.app_key, parse_body(RestoreRequest, body, codes.MISSING_PARAM))
    req = parse_request(body)
    if query.action == "get":
        return envelope(request, {"items": pipelines.get_state(org, req)})
    if query.dryRun:
        return envelope(request, pipelines.count_state(org, req))
    deleted, deletion_id = pipelines.delete_state(org, req, caller.app_key)
    _audit(
        request,
        org,
        caller.app_key,
        "deleteStageState",
        req.pipeline_id,
        {
            "stage": req.stage,
            "assets": len(req.asset_ids),
            "points": len(req.point_ids),
            "keysRequested": len(req.asset_ids) * len(req.point_ids),
            "keysDeleted": deleted,
            "deletionId": deletion_id,
        },
    )
    log.info(
        "org %s: %s deleted %d state keys of %s/%s (deletion %s)",
        org,
        caller.app_key,
        deleted,
        req.pipeline_id,
        req.stage,
        deletion_id,
    )
    return envelope(request, True)


@router.get(
    "/stage-state/deletions",
    summary="The deletions of a pipeline's stage state kept for undo (ours)",
    description="data.deletions, newest first: {deletionId, stageInstanceName, keys, assets, points, by, "
    "time, restorable, restoredAt?}; the values are not listed.",
    responses=ENVELOPE,
)
def deletions(request: Request, org: OrgId, query: Annotated[DeletionsQuery, Query()]) -> EnvelopeResponse:
    pipelines: PipelineService = request.app.state.pipelines
    return envelope(request, {"deletions": pipelines.deletions(org, query.pipelineId)})


def _restore(request: Request, org: str, actor: str, req: RestoreRequest) -> EnvelopeResponse:
    pipelines: PipelineService = request.app.state.pipelines
    deletion = pipelines.restore_state(org, req.pipeline_id, req.deletion_id, actor)
    detail = {"deletionId": deletion.deletion_id, "stage": deletion.stage, "keysRestored": deletion.keys}
    _audit(request, org, actor, "restoreStageState", req.pipeline_id, detail)
    log.info("org %s: %s restored deletion %s of %s", org, actor, deletion.deletion_id, req.pipeline_id)
    return envelope(request, deletion.keys)


def _audit(
    request: Request, org: str, actor: str, action: str, pipeline_id: str, detail: dict[str, Any]
) -> None:
    opened = backends(request)
    opened.catalog.audit(AuditEntry(org, actor, action, pipeline_id, detail, opened.clock.wall_ms()))
