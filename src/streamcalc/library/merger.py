"""LatestRecordMerger: keep the latest record of each input point per group; when a trigger
point arrives, emit it renamed to its output point with the group's records attached.

The group tag comes from `mergedBy`, a record field (`assetId` by default, or `orgId`,
`modelId`, `modelIdPath`, `pointId`) or a path into `attr` (`attr.tslParentLookup.assetId`
style, e.g. a tag an upstream lookup wrote). No expression language. A tag that is missing,
not a string or integer, empty or longer than an id may be sends the record to the error lane.

State (kind `record`) is per group, not per (asset, point): it is stored under the key
(groupTag, "__merged__") and holds, per (assetId, pointId) of the group's input points, the
last record that arrived (arrival order, which the log fixes per key; a late record still
replaces an earlier arrival). A trigger first updates the group, then drops every cached
record whose time is older than `trigger.time - cacheExpireMinutes` (event time; the
trigger itself is never dropped) and emits one record: the trigger renamed to its rule's
outputPoint, with `attr.latestRecordMerger = {mergedTag, mergedRecords}` where
`mergedRecords` are the remaining cached records (trigger included) sorted by (assetId,
pointId), each shaped as `point_rules.record_fields`. A group left empty is deleted.

outputPoint is required on trigger rows and optional (accepted, unused) on other rows: EnOS
asks for it on every row, but only triggers emit.

Get Stage State item (ask for assetIds=<groupTag>, pointIds=__merged__): record fields of the
group's latest cached record (by time) with assetId/pointId replaced by the state key, and
`attr = {"latestRecordMerger": {mergedTag, mergedRecords}}` (what a trigger would attach now,
before expiry).
"""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.keys import StateKey
from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.attrs import MERGER_ATTR
from streamcalc.library.common.durations import MS_PER_MINUTE
from streamcalc.library.common.point_rules import (
    Output,
    RuleIndex,
    check_rule_points,
    record_fields,
    with_attr,
)
from streamcalc.library.common.points import PointRef
from streamcalc.library.common.record_paths import ID_FIELDS, getter
from streamcalc.records import MAX_ID_LENGTH, Record

MERGED_POINT = "__merged__"
"""The pointId part of a group's state key."""
GROUP_TAG_FIELDS = ("assetId", *(f for f in ID_FIELDS if f != "assetId"))
"""The record fields `mergedBy` may name, the default first: a record's ids, strings on every record."""
_MERGED_BY = rf"^({'|'.join(GROUP_TAG_FIELDS)}|attr(\.[^.\s]+)+)$"


class MergerRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputPoint: PointRef
    isTrigger: bool = False
    outputPoint: PointRef | None = None

    @model_validator(mode="after")
    def _output(self) -> MergerRule:
        if self.outputPoint is None:
            if self.isTrigger:
                raise ValueError("a trigger rule needs an outputPoint")
        else:
            check_rule_points(self.inputPoint, self.outputPoint)
        return self


class LatestRecordMergerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[MergerRule] = Field(min_length=1)
    mergedBy: str = Field(default="assetId", pattern=_MERGED_BY)
    cacheExpireMinutes: int = Field(ge=1)

    @model_validator(mode="after")
    def _rules(self) -> LatestRecordMergerConfig:
        inputs = [r.inputPoint for r in self.rules]
        if len(set(inputs)) != len(inputs):
            raise ValueError("each inputPoint may appear in one rule only")
        if not any(r.isTrigger for r in self.rules):
            raise ValueError("at least one rule needs isTrigger: true")
        return self


class MergedGroup(msgspec.Struct, array_like=True, gc=False):
    """Latest record per assetId, then per pointId, of one group. Untracked by the cyclic GC."""

    assets: dict[str, dict[str, Record]]


def _tag(raw: object) -> str | None:
    if type(raw) is str:
        tag = raw
    elif type(raw) is int:
        tag = str(raw)
    else:
        return None
    return tag if 0 < len(tag) <= MAX_ID_LENGTH else None


class LatestRecordMerger:
    def __init__(self, config: LatestRecordMergerConfig) -> None:
        self._index = RuleIndex(
            (r.inputPoint, Output(r.outputPoint) if r.isTrigger and r.outputPoint else None)
            for r in config.rules
        )
        self._tag_of = getter(config.mergedBy)  # validated by the config pattern
        self._expire_ms = config.cacheExpireMinutes * MS_PER_MINUTE

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        rules_for, tag_of = self._index.rules_for, self._tag_of
        matched: list[tuple[Record, str, Output | None]] = []
        for r in batch:
            rules = rules_for(r)
            if not rules:
                continue
            tag = _tag(tag_of(r))
            if tag is None:
                ctx.reject(r, f"no usable group tag in {r.pointId} of {r.assetId}: {tag_of(r)!r}")
                continue
            matched.append((r, tag, rules[0]))
        working: dict[StateKey, MergedGroup | None] = ctx.state.load(
            {(t, MERGED_POINT) for _, t, _ in matched}
        )
        changed: dict[StateKey, MergedGroup | None] = {}
        out: list[Record] = []
        for record, tag, trigger in matched:
            key = (tag, MERGED_POINT)
            group = working[key]
            if group is None:
                group = working[key] = MergedGroup({})
            group.assets.setdefault(record.assetId, {})[record.pointId] = record
            changed[key] = group
            if trigger is not None:
                _expire(group, record.time - self._expire_ms)
                attached = {"mergedTag": tag, "mergedRecords": merged_records(group)}
                out.append(trigger.emit(record, attr=with_attr(record, MERGER_ATTR, attached)))
        ctx.state.save({k: (g if g is not None and g.assets else None) for k, g in changed.items()})
        return out


def _expire(group: MergedGroup, cutoff: int) -> None:
    """Drop cached records older than `cutoff` (event time), and assets left with none."""
    for asset_id in list(group.assets):
        points = group.assets[asset_id]
        for point_id in [p for p, r in points.items() if r.time < cutoff]:
            del points[point_id]
        if not points:
            del group.assets[asset_id]


def merged_records(group: MergedGroup) -> list[dict[str, Any]]:
    return [
        record_fields(points[p])
        for a in sorted(group.assets)
        for points in (group.assets[a],)
        for p in sorted(points)
    ]


def merged_group_item(asset_id: str, point_id: str, state: MergedGroup) -> dict[str, Any]:
    """Get Stage State item (kind `record`) of a group key; see the module docstring."""
    records = [r for points in state.assets.values() for r in points.values()]
    latest = max(records, key=lambda r: r.time, default=None)
    item: dict[str, Any] = {} if latest is None else record_fields(latest)
    item["assetId"], item["pointId"] = asset_id, point_id
    item["attr"] = {MERGER_ATTR: {"mergedTag": asset_id, "mergedRecords": merged_records(state)}}
    return item


LATEST_RECORD_MERGER = OperatorType(
    "LatestRecordMerger",
    LatestRecordMergerConfig,
    LatestRecordMerger,
    state_kind="record",
    state_type=MergedGroup,
    state_view=merged_group_item,
    across_assets=lambda c: (
        None
        if c.mergedBy == "assetId"
        else f"mergedBy {c.mergedBy} merges the records of several assets into one group"
    ),
)
