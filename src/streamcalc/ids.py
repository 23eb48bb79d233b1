"""Pipeline ids: they name directories, keys and producer stamps, so only safe names pass."""

from __future__ import annotations

import re

_PIPELINE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


def check_pipeline_id(pipeline_id: str) -> str:
    """The id itself; ValueError naming the rule otherwise."""
    if not _PIPELINE_ID.fullmatch(pipeline_id):
        raise ValueError(f"invalid pipeline id {pipeline_id!r}: use letters, digits, '_', '-', '.'")
    return pipeline_id
