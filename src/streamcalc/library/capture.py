"""RecordCapturer and RecordRestorer: park the latest record of chosen points, and bring it
back, renamed, when a trigger point of the same asset arrives.

EnOS keeps the captures of a whole pipeline in one Redis hash per asset
(`pipelineId::commonRedisStage::assetId`, field = point), shared by every capturer of the
pipeline; the restorer reads it. Here that is one pipeline-wide state (`SharedState`) keyed
by (assetId, pointId), committed with the offsets like any stage state, so captures survive
pauses, restarts and crashes exactly once.

RecordCapturer `{"points": ["{modelId}::{pointId}", ...]}` (kind `record`): stores each
record of the listed points as the latest capture of its (asset, point), replacing the
previous one, whatever their times; it emits nothing (EnOS's preview shows "No output records
produced"), so give it a branch of its own ending in a destination. Get/Delete Stage State on
any capturer addresses the shared captures: deleting (asset, point) through one capturer
deletes it for all of them. Get item: the captured record.

RecordRestorer `{"rules": [{"inputPoint", "restorePoint", "outputPoint"}]}` (stateless; reads
the captures): each record of a rule's inputPoint (the trigger) brings out the capture of
(its assetId, restorePoint), if there is one whose model matches, renamed to outputPoint (same
model as restorePoint), with the captured time, value, quality and attr. Triggers themselves
are not passed on. What a restorer sees in a batch is the captures committed before it plus
those this batch made in capturers that run before it (upstream, or listed earlier among
parallel branches) - fixed by the pipeline, so a replayed batch restores the same records.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.keys import StateKey
from streamcalc.library.base import OperatorType, SharedState, StageContext
from streamcalc.library.common.point_rules import Output, RuleIndex, UniqueOutputs, record_fields
from streamcalc.library.common.points import PointRef, matches_model, split_ref
from streamcalc.records import Record


class Captured(msgspec.Struct, array_like=True, gc=False):
    """The latest captured record of an (asset, point)."""

    record: Record


CAPTURES = SharedState("#commonRedisStage", Captured)


class RecordCapturerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[PointRef] = Field(min_length=1)


class RestoreRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputPoint: PointRef
    """The trigger."""
    restorePoint: PointRef
    outputPoint: PointRef

    @model_validator(mode="after")
    def _same_model(self) -> RestoreRule:
        if split_ref(self.restorePoint)[0] != split_ref(self.outputPoint)[0]:
            raise ValueError("restorePoint and outputPoint must belong to the same modelId")
        return self


class RecordRestorerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[RestoreRule], Field(min_length=1), UniqueOutputs]


class RecordCapturer:
    def __init__(self, config: RecordCapturerConfig) -> None:
        self._index = RuleIndex((ref, True) for ref in config.points)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        latest: dict[StateKey, Captured | None] = {
            (r.assetId, r.pointId): Captured(r) for r, _ in self._index.matched(batch)
        }
        ctx.state.save(latest)
        return []


class _Restore:
    __slots__ = ("model_id", "output", "point_id")

    def __init__(self, rule: RestoreRule) -> None:
        self.model_id, self.point_id = split_ref(rule.restorePoint)
        self.output = Output(rule.outputPoint)


class RecordRestorer:
    def __init__(self, config: RecordRestorerConfig) -> None:
        self._index = RuleIndex((r.inputPoint, _Restore(r)) for r in config.rules)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        triggers = [(r.assetId, rules) for r, rules in self._index.matched(batch)]
        captures: dict[StateKey, Captured | None] = ctx.state.load(
            {(asset, rule.point_id) for asset, rules in triggers for rule in rules}
        )
        out: list[Record] = []
        for asset, rules in triggers:
            for rule in rules:
                captured = captures[(asset, rule.point_id)]
                if captured is not None and matches_model(captured.record, rule.model_id):
                    out.append(rule.output.emit(captured.record))
        return out


def captured_item(asset_id: str, point_id: str, state: Captured) -> dict[str, Any]:
    """Get Stage State item (kind `record`): the captured record."""
    return record_fields(state.record)


RECORD_CAPTURER = OperatorType(
    "RecordCapturer",
    RecordCapturerConfig,
    RecordCapturer,
    state_kind="record",
    state_type=Captured,
    state_view=captured_item,
    shared_state=CAPTURES,
)
RECORD_RESTORER = OperatorType("RecordRestorer", RecordRestorerConfig, RecordRestorer, shared_state=CAPTURES)
