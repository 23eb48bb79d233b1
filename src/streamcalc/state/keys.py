"""State keys: (stage) < (stage, asset) < (stage, asset, point) as byte prefixes."""

from __future__ import annotations

from collections.abc import Callable

from streamcalc.keycodec import part, parts


def stage_prefix(stage: str) -> bytes:
    return part(stage)


def asset_prefix(stage: str, asset_id: str) -> bytes:
    return part(stage) + part(asset_id)


def key_encoder(stage: str) -> Callable[[str, str], bytes]:
    """(assetId, pointId) -> key of one stage; the stage part is encoded once, not per key."""
    prefix = part(stage)

    def encode(asset_id: str, point_id: str) -> bytes:
        return prefix + part(asset_id) + part(point_id)

    return encode


def split_key(key: bytes) -> tuple[str, str, str]:
    """(stage, assetId, pointId) of an encoded key."""
    (stage, asset_id, point_id), _ = parts(key, 3)
    return stage, asset_id, point_id
