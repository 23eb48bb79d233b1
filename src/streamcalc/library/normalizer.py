"""Normalizer: the Cal normalizer of EnOS (stateless).

`{"type": "cal", "points": ["{modelId}::{pointId}", ...]}` keeps only the records of the
listed points (matched like PointSelector: the record's modelId or a model in its modelIdPath)
and strips their `attr`, the operators' working data, so what reaches the CAL topic is the
measurement itself (orgId, model, asset, point, time, value, quality, dq). EnOS filters by
the pipeline's lineage (its output points); we have no lineage, so the points are listed.

`{"type": "origin"}` is refused: records on the data path are already internal records (a
source decodes each message into one), so an origin message can never reach a stage. Origin
messages are normalised at ingest instead - `POST .../topics/{topic}/records` and
`streamcalc log append --origin` split them into internal records (`records.normalise_origin`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.points import PointRef, matches_model, split_ref
from streamcalc.library.registry import register_operator
from streamcalc.records import Record

ORIGIN_REFUSED = (
    "the origin normalizer cannot run in a pipeline: stages only ever see internal records; "
    "send origin messages to POST .../topics/{topic}/records or `streamcalc log append --origin`, "
    "which normalise them at ingest"
)
_replace = msgspec.structs.replace


class NormalizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["cal"]
    points: list[PointRef] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _no_origin(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") == "origin":
            raise ValueError(ORIGIN_REFUSED)
        return data


class Normalizer:
    def __init__(self, config: NormalizerConfig) -> None:
        self._models_by_point: dict[str, list[str]] = {}
        for ref in config.points:
            model_id, point_id = split_ref(ref)
            self._models_by_point.setdefault(point_id, []).append(model_id)

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        by_point = self._models_by_point
        out = []
        for r in batch:
            models = by_point.get(r.pointId)
            if models and any(matches_model(r, m) for m in models):
                out.append(_replace(r, attr={}) if r.attr else r)
        return out


NORMALIZER = register_operator(OperatorType("Normalizer", NormalizerConfig, Normalizer))
