"""LatePointTagger: tag each record late or on time against the latest event time seen for its
(asset, input point), and emit it renamed to the rule's output point.

A record is late when its `time` is strictly older than the latest time seen before it for
its key (EnOS's text says "later", which cannot be meant: a record later than the latest is
simply new). The first record of a key is on time and seeds the reference; a record with the
same time as the reference is on time; late records never move the reference back.

The result goes into `quality`, replacing the input's: QUALITY_LATE (1) or QUALITY_ON_TIME
(0). EnOS leaves the codes open; `dq` (the device's quality bits) is kept as it is.

State (kind `timestamp`) per (assetId, input pointId): the latest event time seen, shared by
every rule reading that point. Get Stage State item: `{assetId, pointId, time}`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from streamcalc.keys import StateKey
from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.point_rules import Output, PointRule, RuleIndex, UniqueOutputs
from streamcalc.records import Record

QUALITY_ON_TIME = 0
QUALITY_LATE = 1


class LatePointTaggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[PointRule], Field(min_length=1), UniqueOutputs]


class LatestTime(msgspec.Struct, array_like=True, gc=False):
    """The latest event time (ms) seen for the key. Untracked by the cyclic GC."""

    time: int


class LatePointTagger:
    def __init__(self, config: LatePointTaggerConfig) -> None:
        self._index = RuleIndex((r.inputPoint, Output(r.outputPoint)) for r in config.rules)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        matched = self._index.matched(batch)
        working: dict[StateKey, LatestTime | None] = ctx.state.load(
            {(r.assetId, r.pointId) for r, _ in matched}
        )
        changed: dict[StateKey, LatestTime | None] = {}
        out: list[Record] = []
        append = out.append
        for record, outputs in matched:
            key = (record.assetId, record.pointId)
            latest = working[key]
            t = record.time
            if latest is None:
                working[key] = changed[key] = LatestTime(t)
                quality = QUALITY_ON_TIME
            elif t < latest.time:
                quality = QUALITY_LATE
            else:
                if t > latest.time:
                    latest.time = t
                    changed[key] = latest
                quality = QUALITY_ON_TIME
            for output in outputs:
                append(output.emit(record, quality=quality))
        ctx.state.save(changed)
        return out


def latest_time_item(asset_id: str, point_id: str, state: LatestTime) -> dict[str, Any]:
    """Get Stage State item (kind `timestamp`)."""
    return {"assetId": asset_id, "pointId": point_id, "time": state.time}


LATE_POINT_TAGGER = OperatorType(
    "LatePointTagger",
    LatePointTaggerConfig,
    LatePointTagger,
    state_kind="timestamp",
    state_type=LatestTime,
    state_view=latest_time_item,
)
