"""State keys: (stage) < (stage, asset) < (stage, asset, point) as byte prefixes."""

from __future__ import annotations

from streamcalc.keycodec import part, parts


def stage_prefix(stage: str) -> bytes:
    return part(stage)


def asset_prefix(stage: str, asset_id: str) -> bytes:
    return part(stage) + part(asset_id)


def state_key(stage: str, asset_id: str, point_id: str) -> bytes:
    return part(stage) + part(asset_id) + part(point_id)


def split_key(key: bytes) -> tuple[str, str, str]:
    """(stage, assetId, pointId) of an encoded key."""
    (stage, asset_id, point_id), _ = parts(key, 3)
    return stage, asset_id, point_id
