"""The error lane: records a stage rejected, with the reason, in a topic of the pipeline.

Rejections are written in the same exactly-once step as the batch's outputs, so each bad
record appears there once, with where it came from when that is known.
"""

from __future__ import annotations

import msgspec

from streamcalc.records import Record


class ErrorEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    pipelineId: str
    stage: str
    reason: str
    record: Record | None = None
    raw: bytes | None = None
    """The undecodable message itself (base64 in JSON) when there is no record."""
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


def error_topic(pipeline_id: str) -> str:
    return f"STREAMCALC_ERROR_{pipeline_id}"


encode_error = msgspec.json.Encoder().encode
decode_error = msgspec.json.Decoder(ErrorEntry).decode
