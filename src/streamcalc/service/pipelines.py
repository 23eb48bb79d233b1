"""Pipeline lifecycle for the API: the catalog holds status, the supervisor runs workers.

The status machine follows EnOS: save (DRAFT or any) -> release (not RUNNING; 61169) ->
PUBLISHED -> start (PUBLISHED/STOPPED/PAUSED/RUN_ERROR; 61165) -> RUNNING -> pause
(RUNNING only; 61152) -> PAUSED -> start resumes; stop (RUNNING/PAUSED/RUN_ERROR; 61152)
-> STOPPED with state and offsets cleared; reset offset (not RUNNING).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from streamcalc.backends import Backends, VolatileState
from streamcalc.catalog import Deletion, PipelineBusy, PipelineRecord
from streamcalc.errors import StreamcalcError
from streamcalc.library import OperatorType
from streamcalc.log import ResetTarget
from streamcalc.pipeline import PipelineError, build_graph, load_pipeline_document
from streamcalc.pipeline.templates import is_template_document
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import BackendsNotShared, Supervisor, WorkerStatus
from streamcalc.service import codes
from streamcalc.service.errors import ApiError
from streamcalc.service.offsets import partition_offsets, source_topics
from streamcalc.service.schemas import SaveRequest, StartRequest
from streamcalc.service.settings import DEFAULT_DELETION_RETENTION_S
from streamcalc.service.stage_state import StateRequest, get_items, state_name, stateful_stage
from streamcalc.service.undo import StateUndo, held_count

log = logging.getLogger(__name__)
LAG_SAMPLES_KEPT = 360


LIFECYCLE_WAIT_S = 30.0
"""How long a lifecycle action waits for another one on the same pipeline (a start that
spawns workers, a pause that waits for their last commit) before it answers 61121."""


class PipelineService:
    """On the catalog, log and state of `backends` (the supervisor's too), opened as used."""

    def __init__(
        self,
        backends: Backends,
        supervisor: Supervisor,
        *,
        deletion_retention_s: int = DEFAULT_DELETION_RETENTION_S,
    ) -> None:
        self._backends = backends
        self._catalog = backends.catalog
        self._supervisor = supervisor
        self._undo = StateUndo(backends.catalog, backends.state.store, backends.clock, deletion_retention_s)
        self._lag: dict[str, _LagSeries] = {}

    # queries

    def find(self, org_id: str, pipeline_id: str) -> PipelineRecord | None:
        """The pipeline if it is in `org_id`, with its status brought up to date."""
        record = self._catalog.pipeline(org_id, pipeline_id)
        return None if record is None else self._reconciled(record)

    def require(self, org_id: str, pipeline_id: str) -> PipelineRecord:
        record = self.find(org_id, pipeline_id)
        if record is None:
            raise ApiError(codes.PIPELINE_NOT_FOUND, "Stream processing pipeline does not exist.")
        return record

    def details(self, org_id: str, pipeline_id: str, released: bool) -> dict[str, Any]:
        record = self.require(org_id, pipeline_id)
        definition = record.released if released else record.design
        if released and definition is None:
            raise ApiError(codes.PIPELINE_NOT_FOUND, "Stream processing pipeline has no released version.")
        return {**self._summary(record), "pipelineJson": definition}

    def list_pipelines(self, org_id: str, *, released: bool, page_no: int, page_size: int) -> dict[str, Any]:
        count, page = self._catalog.pipelines(
            org_id, released=released, offset=(page_no - 1) * page_size, limit=page_size
        )
        return {"count": count, "pipelines": [self._summary(self._reconciled(r)) for r in page]}

    def every_pipeline(self, org_id: str) -> list[PipelineRecord]:
        """The org's pipelines, drafts and released, with their status brought up to date."""
        found: list[PipelineRecord] = []
        for released in (False, True):
            count, _ = self._catalog.pipelines(org_id, released=released, offset=0, limit=1)
            _, page = self._catalog.pipelines(org_id, released=released, offset=0, limit=max(count, 1))
            found.extend(self._reconciled(r) for r in page)
        return found

    def offset_lag(self, org_id: str, pipeline_id: str) -> dict[str, Any]:
        record = self.require(org_id, pipeline_id)
        definition = record.released or record.design
        return {
            "pipelineId": pipeline_id,
            "topicName": _source_topics(definition)[0],
            "lagAndOffset": list(series.samples) if (series := self._lag.get(pipeline_id)) else [],
        }

    # actions

    def save(self, org_id: str, pipeline_id: str | None, body: SaveRequest) -> str:
        name = body.pipeline_name()
        design = _pipeline_json(body.pipelineJson) if "pipelineJson" in body.model_fields_set else None
        meta = _meta(body.meta(), design)
        if pipeline_id is None:
            if design is None:
                raise ApiError(
                    codes.CONFIG_INVALID,
                    "The Stream configuration JSON is invalid: pipelineJson is missing",
                )
            return self._catalog.create_pipeline(org_id, name or "", design, meta).pipeline_id
        with self._lifecycle(org_id, pipeline_id):
            saved = self._catalog.save_pipeline(org_id, pipeline_id, name=name, design=design, meta=meta)
        if saved is None:
            raise ApiError(codes.PIPELINE_NOT_FOUND, "Stream processing pipeline does not exist.")
        return saved.pipeline_id

    def release(self, org_id: str, pipeline_id: str) -> None:
        with self._lifecycle(org_id, pipeline_id):
            record = self.require(org_id, pipeline_id)
            if record.status == "RUNNING":
                raise ApiError(
                    codes.RELEASE_DENIED,
                    "Failed to release the stream processing pipeline because it is not stopped or paused.",
                )
            _pipeline_json(record.design)
            self._catalog.release_pipeline(org_id, pipeline_id)

    def start(self, org_id: str, pipeline_id: str, body: StartRequest) -> None:
        """Run the released version with the body's kafkaRate and resourceConfig, creating
        missing source topics with a partition per worker."""
        options = RunnerOptions(rate_limit=body.kafkaRate, workers=body.workers)
        with self._lifecycle(org_id, pipeline_id):
            record = self.require(org_id, pipeline_id)
            if record.status in ("DRAFT", "RUNNING") or record.released is None:
                raise ApiError(
                    codes.CANNOT_START,
                    f"Stream processing job with status [{record.status}] cannot be started.",
                )
            definition = _runnable(record.released)
            try:
                self._supervisor.start(pipeline_id, definition, options)
            except PipelineError as e:  # a source topic whose partitions the workers cannot share
                raise ApiError(codes.CONFIG_INVALID, f"resourceConfig {options.workers}: {e}") from e
            except (BackendsNotShared, VolatileState) as e:
                raise ApiError(codes.CANNOT_START, str(e)) from e
            self._catalog.set_status(org_id, pipeline_id, "RUNNING")
            self._track_lag(pipeline_id, definition)

    def pause(self, org_id: str, pipeline_id: str) -> None:
        """Answers once every worker committed and exited: no batch in flight."""
        with self._lifecycle(org_id, pipeline_id):
            record = self.require(org_id, pipeline_id)
            if record.status != "RUNNING":
                raise ApiError(
                    codes.STATUS_CHANGE_DENIED,
                    f"Status of the stream processing job cannot be changed "
                    f"from [{record.status}] to Paused.",
                )
            self._require_runs_here(record, "Paused")
            self._supervisor.pause(pipeline_id)
            self._catalog.set_status(org_id, pipeline_id, "PAUSED")

    def stop(self, org_id: str, pipeline_id: str) -> None:
        with self._lifecycle(org_id, pipeline_id):
            record = self.require(org_id, pipeline_id)
            if record.status not in ("RUNNING", "PAUSED", "RUN_ERROR"):
                raise ApiError(
                    codes.STATUS_CHANGE_DENIED,
                    f"Status of the stream processing job cannot be changed "
                    f"from [{record.status}] to Stopped.",
                )
            self._require_runs_here(record, "Stopped")
            self._supervisor.stop(pipeline_id)
            self._catalog.set_status(org_id, pipeline_id, "STOPPED")

    def reset_offset(self, org_id: str, pipeline_id: str, to: ResetTarget) -> None:
        with self._lifecycle(org_id, pipeline_id):
            record = self.require(org_id, pipeline_id)
            if record.status not in ("PAUSED", "STOPPED") or record.released is None:
                raise ApiError(
                    codes.RESET_FAILED,
                    f"The offset of a [{record.status}] pipeline cannot be reset; pause or stop it first.",
                )
            self._supervisor.reset_offsets(pipeline_id, to, _runnable(record.released))

    def resume_running(self) -> None:
        """After a service restart: pipelines the catalog says are RUNNING get their workers back,
        with the options they were last started with (kafkaRate, resourceConfig): the same
        workers, so each finds its own uncommitted batches to redo.

        One that cannot be started goes to RUN_ERROR; it never keeps the service from starting.
        """
        for record in self._catalog.running_pipelines():
            try:
                released = _runnable(_pipeline_json(record.released))
                self._supervisor.start(
                    record.pipeline_id, released, self._supervisor.last_options(record.pipeline_id)
                )
            except (ApiError, StreamcalcError, ValueError, TypeError) as e:  # the last two: a bad spec
                log.error("pipeline %s could not be resumed: %s", record.pipeline_id, e)
                self._catalog.set_status(record.org_id, record.pipeline_id, "RUN_ERROR", "resume failed")
                continue
            self._track_lag(record.pipeline_id, released)

    # stage state

    def get_state(self, org_id: str, request: StateRequest) -> list[Any]:
        """Items of the stage's state (while running: as last committed)."""
        _, op = self._stateful_stage(org_id, request)
        return get_items(self._backends.state.store(request.pipeline_id), op, request)

    def count_state(self, org_id: str, request: StateRequest) -> int:
        """How many of the keys hold state: what a delete would delete (while running: as last
        committed, so a delete after it may find more or fewer)."""
        _, op = self._stateful_stage(org_id, request)
        store = self._backends.state.store(request.pipeline_id)
        return held_count(store, state_name(op, request.stage), request)

    def delete_state(self, org_id: str, request: StateRequest, actor: str) -> tuple[int, str | None]:
        """Delete assets x points of the stage, atomically, only while PAUSED, keeping the values
        for undo (`undo.StateUndo`); returns (keys deleted, the deletion's id or None if none held state).

        Under the lifecycle lock, so no start can slip in between the check and the delete.
        """
        with self._lifecycle(org_id, request.pipeline_id):
            record, op = self._stateful_stage(org_id, request)
            if record.status != "PAUSED":
                raise ApiError(
                    codes.STAGE_STATE_OTHER,
                    f"Stage state can only be deleted while the pipeline is PAUSED; it is {record.status}",
                )
            store = self._backends.state.store(request.pipeline_id)
            return self._undo.delete(record, store, state_name(op, request.stage), request, actor)

    def deletions(self, org_id: str, pipeline_id: str) -> list[dict[str, Any]]:
        """The pipeline's deletions kept for undo, newest first, without their values (not under
        the lifecycle lock: a pause must not hold it up; restore checks again under the lock)."""
        record = self._in_org(org_id, pipeline_id)
        return self._undo.deletions(record, self._backends.state.store(pipeline_id))

    def restore_state(self, org_id: str, pipeline_id: str, deletion_id: str, actor: str) -> Deletion:
        """Put a deletion's values back while the pipeline is still PAUSED since it (61199 otherwise)."""
        with self._lifecycle(org_id, pipeline_id):
            record = self._in_org(org_id, pipeline_id)
            return self._undo.restore(record, self._backends.state.store(pipeline_id), deletion_id, actor)

    def drop_expired_deletions(self) -> None:
        """Deletions past their retention go, with their kept values (`StateUndo.drop_expired`)."""
        self._undo.drop_expired()

    def _require_runs_here(self, record: PipelineRecord, to: str) -> None:
        """A RUNNING pipeline whose workers this service does not run was started by another
        replica on the same catalog (standalone workers run beside the replica that started
        them; every RUNNING pipeline of this replica's catalog is resumed when it starts).
        Only that replica can pause or stop them: here a pause cannot reach them (it was an
        internal error), and a stop would clear state and offsets under them."""
        if record.status == "RUNNING" and self._supervisor.info(record.pipeline_id) is None:
            raise ApiError(
                codes.STATUS_CHANGE_DENIED,
                f"Status of the stream processing job cannot be changed from [RUNNING] to {to} here: "
                "its workers run beside another streamcalc serve replica; ask that one.",
            )

    @contextmanager
    def _lifecycle(self, org_id: str, pipeline_id: str) -> Iterator[None]:
        """One lifecycle action (save, release, start, pause, stop, reset, delete or restore
        of state) on a pipeline at a time, among every thread and every replica on this
        catalog (`Catalog.pipeline_lock`): a check of the status and the change it allows are
        never split by another. A wait past LIFECYCLE_WAIT_S answers 61121."""
        with ExitStack() as held:
            try:
                held.enter_context(self._catalog.pipeline_lock(org_id, pipeline_id, LIFECYCLE_WAIT_S))
            except PipelineBusy as e:
                raise ApiError(
                    codes.PIPELINE_BUSY,
                    f"Another operation on pipeline {pipeline_id} is in progress. Please try again later.",
                ) from e
            yield

    def _in_org(self, org_id: str, pipeline_id: str) -> PipelineRecord:
        record = self.find(org_id, pipeline_id)
        if record is None:
            raise ApiError(codes.WRONG_PIPELINE_OR_ORG, "Wrong pipelineId or OU has no privilege")
        return record

    def _stateful_stage(self, org_id: str, request: StateRequest) -> tuple[PipelineRecord, OperatorType[Any]]:
        record = self._in_org(org_id, request.pipeline_id)
        return record, stateful_stage(record.released or record.design, request.stage)

    def sample_lag(self) -> None:
        """One {lag, offset, ts} sample per running pipeline, from its committed offsets."""
        for pipeline_id, series in list(self._lag.items()):
            info = self._supervisor.info(pipeline_id)
            if info is not None and info.status == WorkerStatus.RUNNING:
                self._sample(pipeline_id, series)

    def _track_lag(self, pipeline_id: str, definition: dict[str, Any]) -> None:
        """A new lag series for a pipeline just started, with its first sample at once: Offset
        and Lag has a row from the start, not only after the first sampling interval."""
        series = self._lag[pipeline_id] = _LagSeries(_source_topics(definition)[0])
        self._sample(pipeline_id, series)

    def _sample(self, pipeline_id: str, series: _LagSeries) -> None:
        partitions = partition_offsets(self._backends, pipeline_id, [series.topic])
        offset = sum(p.committed for p in partitions)
        lag = sum(p.lag for p in partitions)
        series.samples.append({"lag": lag, "offset": offset, "ts": self._backends.clock.wall_ms()})

    # internals

    def _reconciled(self, record: PipelineRecord) -> PipelineRecord:
        """A RUNNING pipeline whose worker gave up is RUN_ERROR; the catalog learns it here."""
        if record.status == "RUNNING":
            info = self._supervisor.info(record.pipeline_id)
            if info is not None and info.status == WorkerStatus.RUN_ERROR:
                self._catalog.set_status(
                    record.org_id, record.pipeline_id, "RUN_ERROR", "worker failed repeatedly"
                )
                return self._catalog.pipeline(record.org_id, record.pipeline_id) or record
        return record

    @staticmethod
    def _summary(record: PipelineRecord) -> dict[str, Any]:
        return {
            "orgId": record.org_id,
            "pipelineId": record.pipeline_id,
            "pipelineName": record.name,
            "status": record.status,
            "updateTime": record.updated_ms,
            "templateType": record.meta.get("templateType", 1),
            "executionMode": record.meta.get("executionMode", 0),
            **{k: v for k, v in record.meta.items() if k not in ("templateType", "executionMode")},
        }


@dataclass
class _LagSeries:
    topic: str
    """The first source topic (EnOS reports one topicName)."""
    samples: deque[dict[str, int]] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES_KEPT))


def _pipeline_json(raw: Any) -> dict[str, Any]:
    """pipelineJson as an object or a JSON string, native, StreamSets or a template; 61100 if
    invalid. Returns what is stored: a template document as written (expanded whenever it
    runs, see `_runnable`), any other document as its native definition."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ApiError(codes.CONFIG_INVALID, f"The Stream configuration JSON is invalid: {e}") from e
    if not isinstance(raw, dict):
        raise ApiError(codes.CONFIG_INVALID, "The Stream configuration JSON is invalid: expected an object")
    native = _runnable(raw)
    return raw if is_template_document(raw) else native


def _runnable(document: dict[str, Any]) -> dict[str, Any]:
    """The native definition a stored (or saved) document runs as; 61100 if invalid."""
    try:
        definition = load_pipeline_document(document).model_dump(exclude_unset=True)
        build_graph(definition)
    except PipelineError as e:
        raise ApiError(codes.CONFIG_INVALID, f"The Stream configuration JSON is invalid: {e}") from e
    return definition


def _meta(meta: dict[str, Any], design: dict[str, Any] | None) -> dict[str, Any]:
    """The body's fields kept with the pipeline, and a template document's templateType unless the
    body gives it (61100 if the two differ), so List Pipelines tells templates from operator pipelines."""
    if design is not None and is_template_document(design):
        declared = meta.setdefault("templateType", design["templateType"])
        if str(declared) != str(design["templateType"]):  # EnOS SDKs send numbers as strings too
            raise ApiError(
                codes.CONFIG_INVALID,
                f"templateType {declared!r} differs from the pipelineJson's {design['templateType']!r}",
            )
    return meta


def _source_topics(definition: dict[str, Any]) -> list[str]:
    return source_topics(build_graph(load_pipeline_document(definition)))
