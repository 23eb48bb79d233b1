"""Point references as EnOS writes them in operator config: `{modelId}::{pointId}`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from streamcalc.records import Record


def _check_point_ref(ref: str) -> str:
    model_id, sep, point_id = ref.partition("::")
    if not sep or not model_id or not point_id or "::" in point_id:
        raise ValueError(f"expected '{{modelId}}::{{pointId}}', got {ref!r}")
    return ref


PointRef = Annotated[str, AfterValidator(_check_point_ref)]


def split_ref(ref: str) -> tuple[str, str]:
    model_id, _, point_id = ref.partition("::")
    return model_id, point_id


def matches_model(record: Record, model_id: str) -> bool:
    """A record belongs to `model_id` if it is its model or a model it derives from (modelIdPath)."""
    return record.modelId == model_id or model_id in record.modelIdPath.split("/")
