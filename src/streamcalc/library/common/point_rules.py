"""Shared pieces of the rule-based record operators: rule rows, memoised matching, renaming.

A rule row maps an input point to an output point of the same model. Matching a record to
the rows reading its point depends only on (pointId, modelId, modelIdPath), so it is
memoised per operator instance, as are the records' state keys; renaming derives a new frozen
record without validation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import msgspec
from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from streamcalc.keys import StateKey
from streamcalc.library.common.points import PointRef, matches_model, split_ref
from streamcalc.records import Record

R = TypeVar("R")

_MAX_MATCH_MEMO = 10_000
_MAX_KEYS_PER_POINT = 1_000_000
_replace = msgspec.structs.replace


class PointRule(BaseModel):
    """One `{inputPoint, outputPoint}` row; both points belong to the same modelId."""

    model_config = ConfigDict(extra="forbid")

    inputPoint: PointRef
    outputPoint: PointRef

    @model_validator(mode="after")
    def _same_model(self) -> PointRule:
        check_rule_points(self.inputPoint, self.outputPoint)
        return self


def _unique_outputs(rules: list[Any]) -> list[Any]:
    outputs = [r.outputPoint for r in rules if r.outputPoint is not None]
    if len(set(outputs)) != len(outputs):
        raise ValueError("each rule needs its own outputPoint")
    return rules


UniqueOutputs = AfterValidator(_unique_outputs)
"""For a `rules` list: no two rules may write the same output point."""


def check_rule_points(input_point: str, output_point: str) -> None:
    if split_ref(input_point)[0] != split_ref(output_point)[0]:
        raise ValueError("inputPoint and outputPoint must belong to the same modelId")
    if input_point == output_point:
        raise ValueError("outputPoint must differ from inputPoint")


class RuleIndex(Generic[R]):
    """The compiled rules reading each point, with a bounded memo of model matches."""

    __slots__ = ("_by_point", "_memo", "_own_model")

    def __init__(self, rules: Iterable[tuple[str, R]]) -> None:
        """`rules`: (inputPoint ref, compiled rule), in config order."""
        self._by_point: dict[str, list[tuple[str, R]]] = {}
        for ref, rule in rules:
            model_id, point_id = split_ref(ref)
            self._by_point.setdefault(point_id, []).append((model_id, rule))
        self._memo: dict[tuple[str, str, str], list[R]] = {}
        self._own_model: dict[str, tuple[str | None, list[R]]] = {}
        """pointId -> (the one model all its rules belong to, else None; its rules): a record of
        exactly that model matches all of them, the common case `select` answers without the memo."""
        for point_id, rows in self._by_point.items():
            models = {m for m, _ in rows}
            self._own_model[point_id] = (models.pop() if len(models) == 1 else None, [r for _, r in rows])

    def rules_for(self, record: Record) -> list[R]:
        memo_key = (record.pointId, record.modelId, record.modelIdPath)
        rules = self._memo.get(memo_key)
        if rules is None:
            rules = [r for m, r in self._by_point.get(record.pointId, ()) if matches_model(record, m)]
            if len(self._memo) >= _MAX_MATCH_MEMO:
                self._memo.clear()
            self._memo[memo_key] = rules
        return rules

    def select(self, batch: Iterable[Record]) -> tuple[list[Record], list[list[R]]]:
        """The records some rule reads and, in step, the rules of each, in batch order; column-
        wise, as it runs once per record: no pair per record, and a record of its rules' own
        model (the common case) does not need the memo of `rules_for`."""
        get, rules_for = self._own_model.get, self.rules_for
        records: list[Record] = []
        rules_of: list[list[R]] = []
        keep, add = records.append, rules_of.append
        for record in batch:
            own = get(record.pointId)
            if own is None:
                continue
            model_id, rules = own
            if record.modelId != model_id:
                rules = rules_for(record)
                if not rules:
                    continue
            keep(record)
            add(rules)
        return records, rules_of

    def matched(self, batch: Iterable[Record]) -> list[tuple[Record, list[R]]]:
        """`select` as (record, rules) pairs."""
        records, rules_of = self.select(batch)
        return list(zip(records, rules_of, strict=True))


class StateKeys:
    """The state key of each record as one tuple object per (assetId, pointId), batch after batch.

    A decoded record's ids are fresh strings, so a tuple built from them matches the worker's
    cached key only by comparing both strings, once per probe on the way (dedup, the multi-get's
    missing keys, dirty marking, the operator's lookups). The cache keeps the key objects it was
    first given: handing it the same ones makes each of those probes an identity check, and
    finding them costs a probe of a dict keyed by assetId. Kept per operator instance, for at
    most `_MAX_KEYS_PER_POINT` assets of a point, like the worker's cache of a stage.
    """

    __slots__ = ("_by_point",)

    def __init__(self, point_ids: Iterable[str]) -> None:
        """`point_ids`: the points the records can have."""
        self._by_point: dict[str, dict[str, StateKey]] = {p: {} for p in point_ids}

    def of(self, records: list[Record]) -> list[StateKey]:
        """The key of each record; each record's point must be one of those given."""
        by_point = self._by_point
        if len(by_point) == 1:  # the common case, one point: one probe per record
            (assets,) = by_point.values()
            keys = [
                assets.get(r.assetId) or assets.setdefault(r.assetId, (r.assetId, r.pointId)) for r in records
            ]
        else:
            keys = [
                by_point[r.pointId].get(r.assetId)
                or by_point[r.pointId].setdefault(r.assetId, (r.assetId, r.pointId))
                for r in records
            ]
        for assets in by_point.values():
            if len(assets) > _MAX_KEYS_PER_POINT:
                assets.clear()  # bounded like the cache; later probes compare strings again
        return keys


class Output:
    """Where a rule's output goes: the output point's modelId and pointId."""

    __slots__ = ("model_id", "point_id", "ref")

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.model_id, self.point_id = split_ref(ref)

    def emit(self, record: Record, **changes: Any) -> Record:
        """`record` renamed to this output point (modelIdPath kept), with `changes` applied."""
        return _replace(record, modelId=self.model_id, pointId=self.point_id, **changes)


def record_fields(record: Record) -> dict[str, Any]:
    """A record as the Get Stage State item of kind `record` shows it (and as operators attach
    it under `attr`): no orgId (the stage's org), `dq` only when the record has one."""
    fields: dict[str, Any] = {
        "modelId": record.modelId,
        "modelIdPath": record.modelIdPath,
        "assetId": record.assetId,
        "pointId": record.pointId,
        "time": record.time,
        "value": record.value,
        "quality": record.quality,
    }
    if record.dq is not None:
        fields["dq"] = record.dq
    fields["attr"] = record.attr
    return fields


def with_attr(record: Record, key: str, value: Any) -> dict[str, Any]:
    """The record's attr plus `key`; the input's dict is never changed (records may fan out)."""
    attr = dict(record.attr)
    attr[key] = value
    return attr
