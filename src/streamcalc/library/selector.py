"""PointSelector: keep only the records of the configured points (stateless)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.points import PointRef, matches_model, split_ref
from streamcalc.records import Record


class PointSelectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[PointRef] = Field(min_length=1)


class PointSelector:
    def __init__(self, config: PointSelectorConfig) -> None:
        self._models_by_point: dict[str, frozenset[str]] = {}
        for ref in config.points:
            model_id, point_id = split_ref(ref)
            self._models_by_point[point_id] = self._models_by_point.get(point_id, frozenset()) | {model_id}

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        by_point = self._models_by_point
        out = []
        for r in batch:
            models = by_point.get(r.pointId)
            if models and (r.modelId in models or any(matches_model(r, m) for m in models)):
                out.append(r)
        return out


POINT_SELECTOR = OperatorType("PointSelector", PointSelectorConfig, PointSelector)
