"""Normaliser for the EnOS origin format into internal records.

An origin message carries many points of one or more devices:
`{"orgId", "modelId", "modelIdPath", "payload": [{"assetId", "time", "measurepoints":
{pointId: value | {"value", "quality"}}}]}`. Each (payload item, point) becomes one record.
A message-level fault rejects the whole message; a point-level fault rejects that point
only, so good points of a message are never lost with a bad one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from streamcalc.records.codec import Rejected
from streamcalc.records.model import EpochMs, NonEmpty, Record

_SCALARS = (bool, int, float, str, type(None))


class _PointWithQuality(msgspec.Struct, forbid_unknown_fields=True):
    value: bool | int | float | str | None
    quality: int | None = None
    dq: int | None = None


class _PayloadItem(msgspec.Struct):
    assetId: NonEmpty
    time: EpochMs
    measurepoints: Annotated[dict[NonEmpty, Any], msgspec.Meta(min_length=1)]
    modelId: NonEmpty | None = None
    modelIdPath: NonEmpty | None = None


class OriginMessage(msgspec.Struct):
    orgId: NonEmpty
    modelId: NonEmpty
    payload: Annotated[list[_PayloadItem], msgspec.Meta(min_length=1)]
    modelIdPath: NonEmpty | None = None


_origin_decoder = msgspec.json.Decoder(OriginMessage)


class OriginError(ValueError):
    """One point (or the whole message) that could not be normalised, and why."""

    def __init__(self, reason: str, asset_id: str | None = None, point_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.asset_id = asset_id
        self.point_id = point_id


def normalise_origin(raw: bytes | OriginMessage) -> tuple[list[Record], list[OriginError]]:
    """Split one origin message into internal records; returns (records, point errors).

    Raises OriginError when the message itself is malformed (nothing can be recovered).
    """
    if isinstance(raw, OriginMessage):
        msg = raw
    else:
        try:
            msg = _origin_decoder.decode(raw)
        except msgspec.DecodeError as e:
            raise OriginError(f"invalid origin message: {e}") from e
    records: list[Record] = []
    errors: list[OriginError] = []
    for item in msg.payload:
        model_id = item.modelId or msg.modelId
        model_path = item.modelIdPath or msg.modelIdPath or f"/{model_id}"
        for point_id, point in item.measurepoints.items():
            try:
                value, quality, dq = _point_value(point)
            except OriginError as e:
                errors.append(OriginError(e.reason, item.assetId, point_id))
                continue
            records.append(
                Record(
                    orgId=msg.orgId,
                    modelId=model_id,
                    modelIdPath=model_path,
                    assetId=item.assetId,
                    pointId=point_id,
                    time=item.time,
                    value=value,
                    quality=quality,
                    dq=dq,
                )
            )
    return records, errors


def decode_origin_messages(messages: Sequence[bytes]) -> tuple[list[Record], list[Rejected]]:
    """Like `decode_records`, for a topic of origin messages: a malformed message is rejected
    whole, a bad point alone (its reason names the asset and point; `raw` is the message)."""
    records: list[Record] = []
    rejected: list[Rejected] = []
    for i, raw in enumerate(messages):
        try:
            good, bad = normalise_origin(raw)
        except OriginError as e:
            rejected.append(Rejected(i, e.reason, bytes(raw)))
            continue
        records.extend(good)
        rejected.extend(
            Rejected(i, f"asset {e.asset_id} point {e.point_id}: {e.reason}", bytes(raw)) for e in bad
        )
    return records, rejected


def _point_value(point: Any) -> tuple[bool | int | float | str | None, int | None, int | None]:
    if isinstance(point, _SCALARS):
        return point, None, None
    if isinstance(point, dict):
        try:
            p = msgspec.convert(point, _PointWithQuality)
        except msgspec.ValidationError as e:
            raise OriginError(f"invalid point value: {e}") from e
        return p.value, p.quality, p.dq
    raise OriginError(
        f"invalid point value: expected a scalar or {{value, quality}}, got {type(point).__name__}"
    )
