"""Ours, for the console (and any client): a pipeline's activity (stages with their counts,
workers, partition offsets, last error), its latest rejected records, and the org's audit log.
Same auth and envelope as the EnOS APIs; another org's pipeline does not exist (61108)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from streamcalc.catalog import PipelineRecord
from streamcalc.service.activity import Activity
from streamcalc.service.deps import OrgId, backends
from streamcalc.service.envelope import EnvelopeResponse, envelope
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.schemas import ENVELOPE, AuditQuery, RejectedQuery

router = APIRouter(prefix="/streaming/v2.0", tags=["activity (ours)"])


def _pipeline(request: Request, org: str, pipeline_id: str) -> tuple[PipelineRecord, Activity]:
    pipelines: PipelineService = request.app.state.pipelines
    activity: Activity = request.app.state.activity
    return pipelines.require(org, pipeline_id), activity


@router.get(
    "/streaming/pipeline/{pipeline_id}/activity",
    summary="A pipeline's stages with their counts, workers, source offsets and last error (ours)",
    description="data: {pipelineId, status, stages: [{name, stageName, role, inputs, stateful, stateKeys, "
    "recordsIn, recordsOut, rejected}], workers: {status, pids, restarts, failures, lastExitCode}, "
    "partitions: [{topic, partition, offset, endOffset, lag}], lag, checkpoints: {count, seconds}, "
    "lastError: {reason, time} | null}. Counts are committed ones, kept across restarts.",
    responses=ENVELOPE,
)
def pipeline_activity(request: Request, pipeline_id: str, org: OrgId) -> EnvelopeResponse:
    record, activity = _pipeline(request, org, pipeline_id)
    partitions = activity.offsets(record)
    stats = activity.stats(pipeline_id)
    failures = [
        c for c in backends(request).catalog.status_history(org, pipeline_id) if c.status == "RUN_ERROR"
    ]
    data: dict[str, Any] = {
        "pipelineId": pipeline_id,
        "status": record.status,
        "stages": activity.stages(record),
        "workers": activity.workers(pipeline_id),
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "offset": p.committed,
                "endOffset": p.end,
                "lag": p.lag,
            }
            for p in partitions
        ],
        "lag": sum(p.lag for p in partitions),
        "checkpoints": {"count": stats.checkpoints, "seconds": stats.checkpoint_seconds},
        "lastError": {"reason": failures[-1].reason, "time": failures[-1].at_ms} if failures else None,
    }
    return envelope(request, data)


@router.get(
    "/streaming/pipeline/{pipeline_id}/rejected",
    summary="The latest records a pipeline's stages rejected, with the reasons (ours)",
    description="data.records, newest first: {errorOffset, pipelineId, stage, reason, record | raw "
    "(base64), topic?, partition?, offset?}: the error lane's entries.",
    responses=ENVELOPE,
)
def rejected(
    request: Request, pipeline_id: str, org: OrgId, query: Annotated[RejectedQuery, Query()]
) -> EnvelopeResponse:
    _, activity = _pipeline(request, org, pipeline_id)
    return envelope(request, {"records": activity.rejected(pipeline_id, query.limit)})


@router.get(
    "/audit",
    summary="The org's audit log: stage-state deletes and restores (ours)",
    description="data.entries, newest first: {actor (appKey), action, pipelineId, detail, time}.",
    responses=ENVELOPE,
)
def audit(request: Request, org: OrgId, query: Annotated[AuditQuery, Query()]) -> EnvelopeResponse:
    entries = backends(request).catalog.audit_log(org, query.pipelineId)[-query.limit :]
    return envelope(
        request,
        {
            "entries": [
                {
                    "actor": e.actor,
                    "action": e.action,
                    "pipelineId": e.pipeline_id,
                    "detail": e.detail,
                    "time": e.at_ms,
                }
                for e in reversed(entries)
            ]
        },
    )
