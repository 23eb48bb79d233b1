"""Normalizer: EnOS's Origin and Cal normalizers (stateless).

Origin `{"type": "origin", "points"?: [...]}` reads a topic of origin messages (many points of
one or more devices per message). It must read straight from a source, and a source it reads
feeds only origin normalizers: that source then decodes each message into one internal record
per (payload item, point) - `records.decode_origin_messages`, a bad point rejected alone with
the message - so the normalizer itself receives internal records. It keeps those of the listed
points (EnOS keeps the points of its published lineage; we have no lineage, so they are listed),
or every point when `points` is absent.

Cal `{"type": "cal", "points": [...]}` keeps only the records of the listed points and strips
their `attr`, the operators' working data, so what reaches the CAL topic is the measurement
itself (orgId, model, asset, point, time, value, quality, dq).

Points are matched like PointSelector: the record's modelId or a model in its modelIdPath.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.points import PointRef, matches_model, split_ref
from streamcalc.records import Record

_replace = msgspec.structs.replace


class NormalizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["origin", "cal"]
    points: list[PointRef] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _cal_lists_points(self) -> NormalizerConfig:
        if self.type == "cal" and self.points is None:
            raise ValueError("points: the cal normalizer needs the points it keeps")
        return self


class Normalizer:
    def __init__(self, config: NormalizerConfig) -> None:
        self._strip_attr = config.type == "cal"
        self._models_by_point: dict[str, list[str]] | None = None
        if config.points is not None:
            self._models_by_point = {}
            for ref in config.points:
                model_id, point_id = split_ref(ref)
                self._models_by_point.setdefault(point_id, []).append(model_id)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        by_point = self._models_by_point
        kept = (
            batch
            if by_point is None
            else [
                r
                for r in batch
                if (models := by_point.get(r.pointId)) and any(matches_model(r, m) for m in models)
            ]
        )
        if not self._strip_attr:
            return kept
        return [_replace(r, attr={}) if r.attr else r for r in kept]


NORMALIZER = OperatorType(
    "Normalizer", NormalizerConfig, Normalizer, reads_origin=lambda c: c.type == "origin"
)
