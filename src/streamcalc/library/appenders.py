"""LastRecordAppender and LastChangedRecordAppender: attach a cached record of the same
(asset, input point) to each record's `attr` and emit it renamed to the rule's output point.

State (kind `record`), per (assetId, input pointId), holding input records as they arrived:
- LastRecordAppender keeps, per rule (by outputPoint), the last record that matched the
  rule's `condition`. A record first gets the *previous* stored record attached under
  `attr.lastRecordAppender` (nothing is attached when there is none), then, if it matches
  the condition, it replaces the stored record.
- LastChangedRecordAppender keeps one record per key: the last one whose value changed. The
  first record of a key is cached before it is attached (so it carries itself, as EnOS
  documents); later records carry the cache, which is refreshed only when the value differs.
  "Differs" is type-strict, as in Java's `equals`: 1 and 1.0, or 1 and True, differ.

A rule's `condition` is a `library.expressions.conditions.Condition` (data, never evaluated code).
With `onlyNewer`, a record older (by time) than the stored one never replaces it; it is still
emitted with the stored record attached. Out-of-order data then cannot move the cache back in
time, which the energy templates need (an older baseline would count an interval twice).

Get Stage State item: the stored record's fields (see `point_rules.record_fields`). If several
LastRecordAppender rules read one point, the item shows the latest (by time) of their records.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.keys import StateKey
from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.attrs import LAST_CHANGED_ATTR, LAST_RECORD_ATTR
from streamcalc.library.common.point_rules import (
    Output,
    PointRule,
    RuleIndex,
    UniqueOutputs,
    record_fields,
    with_attr,
)
from streamcalc.library.common.values import strictly_equal
from streamcalc.library.expressions.conditions import Condition, compile_condition
from streamcalc.records import Record


class LastRecordRule(PointRule):
    condition: Condition = "*"

    @model_validator(mode="after")
    def _non_empty(self) -> LastRecordRule:
        if isinstance(self.condition, list) and not self.condition:
            raise ValueError("condition: a list of comparisons needs at least one")
        return self


class LastRecordAppenderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[LastRecordRule], Field(min_length=1), UniqueOutputs]
    onlyNewer: bool = False


class LastChangedRecordAppenderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[PointRule], Field(min_length=1), UniqueOutputs]
    onlyNewer: bool = False


class LastRecords(msgspec.Struct, array_like=True, gc=False):
    """The last qualifying input record of each rule reading the key, by the rule's outputPoint.
    Untracked by the cyclic GC: a worker caches one per key and no cycle forms through it."""

    records: dict[str, Record]


class LastChanged(msgspec.Struct, array_like=True, gc=False):
    """The last input record of the key whose value changed."""

    record: Record


# --- LastRecordAppender -----------------------------------------------------------------------


class _LastRecordRule:
    __slots__ = ("accepts", "output")

    def __init__(self, rule: LastRecordRule) -> None:
        self.output = Output(rule.outputPoint)
        self.accepts = compile_condition(rule.condition)


class LastRecordAppender:
    def __init__(self, config: LastRecordAppenderConfig) -> None:
        self._index = RuleIndex((r.inputPoint, _LastRecordRule(r)) for r in config.rules)
        self._only_newer = config.onlyNewer

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        only_newer = self._only_newer
        matched = self._index.matched(batch)
        working: dict[StateKey, LastRecords | None] = ctx.state.load(
            {(r.assetId, r.pointId) for r, _ in matched}
        )
        changed: dict[StateKey, LastRecords | None] = {}
        out: list[Record] = []
        append = out.append
        for record, rules in matched:
            key = (record.assetId, record.pointId)
            state = working[key]
            for rule in rules:
                output = rule.output
                last = None if state is None else state.records.get(output.ref)
                if last is None:
                    append(output.emit(record))
                else:
                    append(output.emit(record, attr=with_attr(record, LAST_RECORD_ATTR, record_fields(last))))
                if (rule.accepts is None or rule.accepts(record)) and not (
                    only_newer and last is not None and record.time < last.time
                ):
                    if state is None:
                        state = working[key] = LastRecords({})
                    state.records[output.ref] = record
                    changed[key] = state
        ctx.state.save(changed)
        return out


def last_records_item(asset_id: str, point_id: str, state: LastRecords) -> dict[str, Any]:
    """Get Stage State item (kind `record`): the latest stored record of the key's rules."""
    latest = max(state.records.values(), key=lambda r: r.time, default=None)
    if latest is None:
        return {"assetId": asset_id, "pointId": point_id}
    return record_fields(latest)


# --- LastChangedRecordAppender ----------------------------------------------------------------


class LastChangedRecordAppender:
    def __init__(self, config: LastChangedRecordAppenderConfig) -> None:
        self._index = RuleIndex((r.inputPoint, Output(r.outputPoint)) for r in config.rules)
        self._only_newer = config.onlyNewer

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        only_newer = self._only_newer
        matched = self._index.matched(batch)
        working: dict[StateKey, LastChanged | None] = ctx.state.load(
            {(r.assetId, r.pointId) for r, _ in matched}
        )
        changed: dict[StateKey, LastChanged | None] = {}
        out: list[Record] = []
        append = out.append
        for record, outputs in matched:
            key = (record.assetId, record.pointId)
            state = working[key]
            if state is None:
                state = working[key] = changed[key] = LastChanged(record)
                cached = record
            else:
                cached = state.record
                if not strictly_equal(record.value, cached.value) and not (
                    only_newer and record.time < cached.time
                ):
                    state = working[key] = changed[key] = LastChanged(record)
            attached = {
                "lastChangedTs": cached.time,
                "lastChangedValue": cached.value,
                "lastChangedRecord": record_fields(cached),
            }
            attr = with_attr(record, LAST_CHANGED_ATTR, attached)
            for output in outputs:
                append(output.emit(record, attr=attr))
        ctx.state.save(changed)
        return out


def last_changed_item(asset_id: str, point_id: str, state: LastChanged) -> dict[str, Any]:
    """Get Stage State item (kind `record`): the cached last-changed record."""
    return record_fields(state.record)


LAST_RECORD_APPENDER = OperatorType(
    "LastRecordAppender",
    LastRecordAppenderConfig,
    LastRecordAppender,
    state_kind="record",
    state_type=LastRecords,
    state_view=last_records_item,
)

LAST_CHANGED_RECORD_APPENDER = OperatorType(
    "LastChangedRecordAppender",
    LastChangedRecordAppenderConfig,
    LastChangedRecordAppender,
    state_kind="record",
    state_type=LastChanged,
    state_view=last_changed_item,
)
