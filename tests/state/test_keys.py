"""State keys: the fast encoder is exactly the parts joined, for any ids (NULs included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamcalc.keycodec import part
from streamcalc.state.keys import cross_keys, key_encoder, split_key

ids = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "\0", "a\0b", "\0\xff"]
)


@given(ids, ids, ids)
def test_key_encoder_joins_the_parts_and_splits_back(stage: str, asset_id: str, point_id: str) -> None:
    key = key_encoder(stage)(asset_id, point_id)
    assert key == part(stage) + part(asset_id) + part(point_id)
    assert split_key(key) == (stage, asset_id, point_id)


@given(ids, st.lists(ids, max_size=5), st.lists(ids, max_size=5))
def test_cross_keys_are_each_key_once_in_key_order(stage: str, assets: list[str], points: list[str]) -> None:
    encode = key_encoder(stage)
    assert cross_keys(stage, assets, points) == sorted({encode(a, p) for a in assets for p in points})
