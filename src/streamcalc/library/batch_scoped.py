"""Operators that work on one batch as a whole: RecordSorterByTime, BatchMerger and Trash
(stateless). Their outputs depend on where batches are cut - as in EnOS, where a batch is
whatever the source delivered at once - so they are deterministic per batch, not per record.

RecordSorterByTime: the batch sorted ascending by `time`; records with equal times keep their
batch order (a stable sort). Config `{}`.

BatchMerger: the batch's records of the `inputPoints` are grouped by the values of `fields`
(record fields, or `attr.<key>...` paths; a missing path is null); every other record is
dropped. Values are compared by their JSON form, so 1, 1.0 and true are three groups. Each
group gives one record, in the order of the groups' first records: the group's first record,
renamed to `outputPoint` (modelIdPath kept when the record belongs to the output's model,
otherwise `/{modelId}`), with `attr.crossBatch = {groupedRecords, enableCache, key}` added:
the members in batch order as `point_rules.record_fields` shows them, `enableCache` always
false (nothing is kept across batches; EnOS's Fixed Batch Pivotor did that), and `key` the
group's values, strings as they are and others as JSON, joined with `::`. The key and
field names are those of EnOS's output example, whose merged record is its first member's.
EnOS's "By EL Expression" key method is not offered.

Trash: drops every record; its output lane is always empty. It is a processor, so a pipeline
must still end in a destination: `Trash_01 -> EDHKafkaProducer_01` runs and writes nothing,
while a pipeline whose branch ends in Trash is refused by pipeline validation ("the output of
Trash is not read by any stage", or "a pipeline needs at least one destination stage").
Config `{}`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.attrs import BATCH_MERGER_ATTR
from streamcalc.library.common.point_rules import record_fields, with_attr
from streamcalc.library.common.points import PointRef, matches_model, split_ref
from streamcalc.library.common.record_paths import FieldPath, getter
from streamcalc.records import Record

_KEY_SEPARATOR = "::"
_replace = msgspec.structs.replace
_json = msgspec.json.Encoder(order="sorted")


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordSorterByTime:
    def __init__(self, config: EmptyConfig) -> None:
        pass

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        return sorted(batch, key=lambda r: r.time)


class Trash:
    def __init__(self, config: EmptyConfig) -> None:
        pass

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        return []


class BatchMergerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputPoints: list[PointRef] = Field(min_length=1)
    outputPoint: PointRef
    fields: list[FieldPath] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a field is listed twice")
        return v


class BatchMerger:
    def __init__(self, config: BatchMergerConfig) -> None:
        self._inputs: dict[str, list[str]] = {}
        for ref in config.inputPoints:
            model_id, point_id = split_ref(ref)
            self._inputs.setdefault(point_id, []).append(model_id)
        self._model_id, self._point_id = split_ref(config.outputPoint)
        self._getters = [getter(f) for f in config.fields]

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        groups: dict[bytes, tuple[list[Any], list[Record]]] = {}
        for record in batch:
            models = self._inputs.get(record.pointId)
            if not models or not any(matches_model(record, m) for m in models):
                continue
            values = [get(record) for get in self._getters]
            groups.setdefault(_json.encode(values), (values, []))[1].append(record)
        return [self._merged(values, members) for values, members in groups.values()]

    def _merged(self, values: list[Any], members: list[Record]) -> Record:
        first = members[0]
        merged = {
            "groupedRecords": [record_fields(m) for m in members],
            "enableCache": False,
            "key": _KEY_SEPARATOR.join(v if isinstance(v, str) else _json.encode(v).decode() for v in values),
        }
        path = first.modelIdPath if matches_model(first, self._model_id) else f"/{self._model_id}"
        return _replace(
            first,
            modelId=self._model_id,
            modelIdPath=path,
            pointId=self._point_id,
            attr=with_attr(first, BATCH_MERGER_ATTR, merged),
        )


RECORD_SORTER_BY_TIME = OperatorType("RecordSorterByTime", EmptyConfig, RecordSorterByTime)
BATCH_MERGER = OperatorType("BatchMerger", BatchMergerConfig, BatchMerger)
TRASH = OperatorType("Trash", EmptyConfig, Trash)
