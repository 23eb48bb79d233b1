"""The internal record: one measurement point of one asset at one time.

A msgspec Struct so the data path decodes and encodes without per-field Python work.
Unknown fields are refused rather than dropped, so nothing is lost silently.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

MAX_ID_LENGTH = 128
"""Ids become parts of state keys; this keeps every key within LMDB's 511-byte limit."""

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
EpochMs = Annotated[int, msgspec.Meta(ge=0)]
Value = bool | int | float | str | None
"""A point value as the device sent it; the type is kept, never coerced."""


class Record(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, frozen=True, gc=False
):
    """Frozen: one record may feed several stages (fan-out), so stages derive new records.
    Untracked by the cyclic GC (gc=False): records hold no cycles, and millions of tracked
    short-lived objects made collections a third of the data-path time."""

    orgId: Id
    modelId: Id
    modelIdPath: NonEmpty
    assetId: Id
    pointId: Id
    time: EpochMs
    value: Value
    quality: int | None = None
    dq: int | None = None
    attr: dict[str, Any] = {}

    @property
    def key(self) -> tuple[str, str]:
        """The (assetId, pointId) pair that stateful stages key their state by."""
        return (self.assetId, self.pointId)
