"""The StateStore and StateBackend contracts (state/base.py), run against every state backend.

Each test runs once per backend in STATE_BACKENDS, opened as a service would open it (through
the composition root, from its URL). What only one backend can show (durability across a
reopen, readers in other processes) is in that backend's own test module.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_support import commit, fill, snapshot

from streamcalc.backends import Backends
from streamcalc.state import (
    Checkpoint,
    OffsetRegression,
    StaleCheckpoint,
    StateBackend,
    StateError,
    StateStore,
)

STATE_BACKENDS = ["memory", "lmdb", "redis"]
pytestmark = pytest.mark.parametrize("state_backend", STATE_BACKENDS, indirect=True)


@pytest.fixture
def state_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    """The backend named by the test's parameter, from its bare URL under tmp_path (a private
    redis-server's database for redis); closed after."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else request.param
    backends = Backends.resolve(tmp_path, state=url)
    yield backends.state
    backends.close()


@pytest.fixture
def store(state_backend: StateBackend) -> StateStore:
    return state_backend.store("p1")


def _public_methods(protocol: type) -> list[str]:
    return [n for n, m in vars(protocol).items() if callable(m) and not n.startswith("_")]


def test_the_backend_and_its_stores_have_every_method_of_the_protocols(
    state_backend: StateBackend, store: StateStore
) -> None:
    for protocol, implementation in ((StateStore, store), (StateBackend, state_backend)):
        methods = _public_methods(protocol)
        assert "close" in methods
        for name in methods:
            expected = list(inspect.signature(getattr(protocol, name)).parameters)
            actual = list(inspect.signature(getattr(type(implementation), name)).parameters)
            assert actual == expected, name


# reads


def test_a_new_store_is_empty(store: StateStore) -> None:
    assert store.checkpoint() == Checkpoint(0, 0, {})
    assert store.get_many("s", [("a", "p")]) == [None]
    assert list(store.scan("s")) == []
    assert store.stages() == []


def test_get_many_returns_values_in_the_order_asked_with_none_for_missing(store: StateStore) -> None:
    commit(store, {"s": {("a1", "p1"): b"11", ("a1", "p2"): b"12", ("a2", "p1"): b"21"}})
    commit(store, {"other": {("a1", "p1"): b"other"}})
    keys = [("a2", "p1"), ("nope", "p1"), ("a1", "p2"), ("a1", "p1"), ("a2", "p1"), ("a1", "nope")]
    assert store.get_many("s", keys) == [b"21", None, b"12", b"11", b"21", None]
    assert store.get_many("other", keys) == [None, None, None, b"other", None, None]
    assert store.get_many("s", []) == []
    assert store.get_many("s", iter([("a1", "p1")])) == [b"11"]


ODD_IDS = ["a", "a:b", "a:", ":a", "a/b", "a/", "a\x00b", "ab", "b", "aa", "ä", "ü/ü:ü", "日本", "A", "a b"]


def test_ids_with_separators_and_unicode_never_collide(store: StateStore) -> None:
    writes = {(a, p): f"{a}|{p}".encode() for a in ODD_IDS for p in ODD_IDS}
    commit(store, {"s": writes, "s:a": {("b", "c"): b"x"}, "s/a": {("b", "c"): b"y"}})
    keys = list(writes)
    assert store.get_many("s", keys) == [writes[k] for k in keys]
    assert store.get_many("s:a", [("b", "c"), ("a:b", "c")]) == [b"x", None]
    assert store.get_many("s", [("s:a", "b"), ("a", "b:c")]) == [None, None]
    assert sorted(store.scan("s")) == sorted((a, p, v) for (a, p), v in writes.items())
    assert sorted(store.stages()) == ["s", "s/a", "s:a"]


@pytest.mark.parametrize("asset", ODD_IDS)
def test_scan_of_one_asset_returns_only_that_asset(store: StateStore, asset: str) -> None:
    commit(store, {"s": {(a, p): f"{a}|{p}".encode() for a in ODD_IDS for p in ("p1", "p:2")}})
    commit(store, {"t": {(asset, "p1"): b"other stage"}})
    assert sorted(store.scan("s", asset)) == [
        (asset, "p1", f"{asset}|p1".encode()),
        (asset, "p:2", f"{asset}|p:2".encode()),
    ]
    assert list(store.scan("s", "missing")) == []
    assert list(store.scan("t", asset)) == [(asset, "p1", b"other stage")]


def test_scan_of_a_stage_does_not_include_stages_sharing_its_prefix(store: StateStore) -> None:
    commit(store, {"s": {("a", "p"): b"1"}, "s2": {("a", "p"): b"2"}, "s:x": {("a", "p"): b"3"}})
    assert list(store.scan("s")) == [("a", "p", b"1")]
    assert list(store.scan("s2")) == [("a", "p", b"2")]
    assert list(store.scan("s:x", "a")) == [("a", "p", b"3")]


def test_scan_is_in_key_order(store: StateStore) -> None:
    # Key order is the order of the (assetId, pointId) keys, the same for every backend.
    writes = {(a, p): b"v" for a in ("b", "aa", "a", "a:1", "ab", "B") for p in ("10", "9", "x", "ab")}
    commit(store, {"s": writes})
    assert [(a, p) for a, p, _ in store.scan("s")] == sorted(writes)
    assert [p for _, p, _ in store.scan("s", "aa")] == sorted(["10", "9", "x", "ab"])


def test_a_scan_reads_one_snapshot_even_across_a_delete(store: StateStore) -> None:
    fill(store, "s", ["a"], [f"p{i}" for i in range(5)])
    scan = store.scan("s", "a")
    first = next(scan)
    assert store.delete_keys("s", ["a"], [f"p{i}" for i in range(5)]) == 5
    assert [first, *scan] == [("a", f"p{i}", f"a|p{i}".encode()) for i in range(5)]
    assert list(store.scan("s")) == []


def test_stages_lists_stages_that_hold_state(store: StateStore) -> None:
    commit(store, {"window": {("a", "p"): b"1"}, "w": {("a", "p"): b"1"}, "cache:1": {("b", "q"): b"2"}})
    commit(store, {"empty": {("a", "p"): None}})
    assert sorted(store.stages()) == ["cache:1", "w", "window"]
    store.delete_keys("w", ["a"], ["p"])
    assert sorted(store.stages()) == ["cache:1", "window"]


# commit


def test_commit_applies_puts_deletes_offsets_and_seq(store: StateStore) -> None:
    first = commit(
        store,
        {"s": {("a", "p1"): b"1", ("a", "p2"): b"2"}, "t": {("b", "q"): b"3"}},
        {("topic", 0): 10, ("topic", 1): 4},
    )
    assert first == Checkpoint(1, 0, {("topic", 0): 10, ("topic", 1): 4})
    assert store.checkpoint() == first

    second = Checkpoint(2, 0, {("topic", 0): 12, ("other", 3): 1})
    store.commit({"s": {("a", "p1"): None, ("a", "p2"): b"2'", ("a", "never"): None}}, first, second)
    assert store.get_many("s", [("a", "p1"), ("a", "p2")]) == [None, b"2'"]
    assert store.get_many("t", [("b", "q")]) == [b"3"]
    assert store.checkpoint() == Checkpoint(2, 0, {("topic", 0): 12, ("topic", 1): 4, ("other", 3): 1})


def test_commit_with_no_writes_still_records_offsets_and_seq(store: StateStore) -> None:
    commit(store, {}, {("t", 0): 3})
    commit(store, {"s": {}}, {("t", 0): 3})
    assert store.checkpoint() == Checkpoint(2, 0, {("t", 0): 3})


@pytest.mark.parametrize(
    "stale", [Checkpoint(0, 0), Checkpoint(2, 0), Checkpoint(1, 1), Checkpoint(5, 3, {("t", 0): 100})]
)
def test_commit_on_a_stale_checkpoint_raises_and_writes_nothing(store: StateStore, stale: Checkpoint) -> None:
    commit(store, {"s": {("a", "p"): b"kept"}}, {("t", 0): 5})
    before = snapshot(store)
    with pytest.raises(StaleCheckpoint) as info:
        store.commit(
            {"s": {("a", "p"): b"lost", ("b", "p"): b"lost"}, "new": {("a", "p"): b"lost"}},
            stale,
            stale.advance({("t", 0): 50}),
        )
    assert info.value.expected == (stale.seq, stale.generation)
    assert info.value.found == (1, 0)
    assert snapshot(store) == before
    assert isinstance(info.value, StateError)


def test_a_commit_must_move_seq_forward(store: StateStore) -> None:
    held = commit(store, {"s": {("a", "p"): b"kept"}}, {("t", 0): 1})
    before = snapshot(store)
    for seq in (held.seq, held.seq - 1):
        with pytest.raises(ValueError, match="seq forward"):
            store.commit({"s": {("a", "p"): b"lost"}}, held, Checkpoint(seq, held.generation, {("t", 0): 2}))
    assert snapshot(store) == before


def test_each_worker_has_its_own_seq_and_all_share_the_generation(store: StateStore) -> None:
    w0, w1 = store.checkpoint(0), store.checkpoint(1)
    store.commit({"s": {("a", "p"): b"0"}}, w0, w0.advance({("t", 0): 4}), worker=0)
    store.commit({"s": {("b", "p"): b"1"}}, w1, w1.advance({("t", 1): 6}), worker=1)
    store.commit({}, store.checkpoint(1), Checkpoint(5, 0, {("t", 1): 7}), worker=1)
    assert store.checkpoint(0) == Checkpoint(1, 0, {("t", 0): 4, ("t", 1): 7})
    assert store.checkpoint(1) == Checkpoint(5, 0, {("t", 0): 4, ("t", 1): 7})
    assert store.checkpoint(2) == Checkpoint(0, 0, {("t", 0): 4, ("t", 1): 7})
    with pytest.raises(StaleCheckpoint):  # worker 1's checkpoint is no good for worker 0
        store.commit({}, store.checkpoint(1), Checkpoint(6, 0), worker=0)

    held0, held1 = store.checkpoint(0), store.checkpoint(1)
    store.delete_keys("s", ["a"], ["p"])  # one generation fences every worker
    for worker, held in ((0, held0), (1, held1)):
        with pytest.raises(StaleCheckpoint):
            store.commit({}, held, held.advance({}), worker=worker)
    store.clear()  # and clear keeps every worker's seq
    assert (store.checkpoint(0).seq, store.checkpoint(1).seq, store.checkpoint(0).generation) == (1, 5, 2)


def test_a_zombie_writer_is_fenced(state_backend: StateBackend) -> None:
    live, zombie = state_backend.store("p1"), state_backend.store("p1")
    shared = live.checkpoint()
    live.commit({"s": {("a", "p"): b"live"}}, shared, shared.advance({("t", 0): 1}))
    with pytest.raises(StaleCheckpoint):
        zombie.commit({"s": {("a", "p"): b"zombie"}}, shared, shared.advance({("t", 0): 1}))
    assert live.get_many("s", [("a", "p")]) == [b"live"]


def test_offsets_never_move_backwards_through_commit(store: StateStore) -> None:
    commit(store, {"s": {("a", "p"): b"1"}}, {("t", 0): 10, ("t", 1): 3})
    before = snapshot(store)
    expected = store.checkpoint()
    with pytest.raises(OffsetRegression) as info:
        store.commit(
            {"s": {("a", "p"): b"lost"}},
            expected,
            Checkpoint(expected.seq + 1, expected.generation, {("t", 1): 7, ("t", 0): 9}),
        )
    assert (info.value.topic, info.value.partition, info.value.committed, info.value.proposed) == (
        "t",
        0,
        10,
        9,
    )
    assert snapshot(store) == before
    with pytest.raises(OffsetRegression):
        store.commit({}, expected, Checkpoint(expected.seq + 1, expected.generation, {("new", 0): -1}))
    assert snapshot(store) == before
    # equal offsets and offsets left out are not regressions
    store.commit({}, expected, Checkpoint(expected.seq + 1, expected.generation, {("t", 0): 10}))
    assert store.checkpoint().offsets == {("t", 0): 10, ("t", 1): 3}


# delete


def test_delete_keys_deletes_the_cross_product_and_counts_existing_keys(store: StateStore) -> None:
    assets, points = ["a1", "a2", "a3"], ["p1", "p2", "p3"]
    fill(store, "s", assets, points)
    fill(store, "t", assets, points)
    deleted = store.delete_keys("s", iter(["a1", "a2", "a1", "ghost"]), iter(["p1", "p2", "ghost", "p2"]))
    assert deleted == 4
    assert sorted((a, p) for a, p, _ in store.scan("s")) == [
        ("a1", "p3"),
        ("a2", "p3"),
        ("a3", "p1"),
        ("a3", "p2"),
        ("a3", "p3"),
    ]
    assert len(list(store.scan("t"))) == 9
    assert store.delete_keys("s", ["a1", "a2"], ["p1", "p2"]) == 0
    assert store.delete_keys("s", [], ["p3"]) == 0
    assert store.delete_keys("unknown", ["a3"], ["p3"]) == 0
    assert len(list(store.scan("s"))) == 5


def test_delete_keys_bumps_the_generation_and_fences_old_checkpoints(store: StateStore) -> None:
    fill(store, "s", ["a"], ["p", "q"])
    held = store.checkpoint()
    assert store.delete_keys("s", ["a"], ["p"]) == 1
    after = store.checkpoint()
    assert (after.seq, after.generation, after.offsets) == (held.seq, held.generation + 1, held.offsets)
    # a worker with a cached value from before the delete cannot bring it back
    with pytest.raises(StaleCheckpoint):
        store.commit({"s": {("a", "p"): b"resurrected"}}, held, held.advance({}))
    assert store.get_many("s", [("a", "p"), ("a", "q")]) == [None, b"a|q"]
    assert store.delete_keys("s", ["none"], ["none"]) == 0  # found nothing: changed nothing
    assert store.checkpoint().generation == held.generation + 1


def test_delete_of_100k_keys(store: StateStore) -> None:
    assets = [f"asset-{i:03d}" for i in range(316)]
    points = [f"point:{i}" for i in range(316)]
    commit(store, {"s": {(a, p): b"v" for a in assets for p in points}, "t": {(assets[0], points[0]): b"t"}})
    commit(store, {"s": {("outside", points[0]): b"keep", (assets[0], "outside"): b"keep"}})
    generation = store.checkpoint().generation
    assert store.delete_keys("s", assets, points) == 316 * 316
    assert sorted(store.scan("s")) == [(assets[0], "outside", b"keep"), ("outside", points[0], b"keep")]
    assert store.get_many("s", [(assets[-1], points[-1]), (assets[157], points[3])]) == [None, None]
    assert store.get_many("t", [(assets[0], points[0])]) == [b"t"]
    assert store.checkpoint().generation == generation + 1


def test_a_kept_delete_restores_exactly_its_values_bumps_the_generation_and_leaves_seq_and_offsets(
    store: StateStore,
) -> None:
    fill(store, "s", ["a1", "a2"], ["p1", "p2"])
    commit(store, {}, {("t", 0): 7})
    before = list(store.scan("s"))
    assert store.delete_keys("s", ["a1", "ghost"], ["p1", "p2", "ghost"], keep="d1") == 2
    assert [a for a, _, _ in store.scan("s")] == ["a2", "a2"]
    held = store.checkpoint()

    assert store.restore_kept("d1") == 2

    after = store.checkpoint()
    assert (after.seq, after.generation, after.offsets) == (held.seq, held.generation + 1, held.offsets)
    assert list(store.scan("s")) == before
    with pytest.raises(StaleCheckpoint):  # a worker that read before the restore is fenced
        store.commit({"s": {("a1", "p1"): b"stale"}}, held, held.advance({}))
    # restored once: the values are no longer kept, and nothing changes
    assert store.restore_kept("d1") == 0
    assert store.checkpoint().generation == after.generation


def test_kept_values_are_kept_apart_per_deletion_and_bring_back_a_stage_that_had_gone(
    store: StateStore,
) -> None:
    commit(store, {"w": {("a:1", "p%"): b"x", ("a", "p"): b""}, "v": {("a", "p"): b"v"}})
    assert store.delete_keys("w", ["a:1"], ["p%"], keep="first") == 1
    assert store.delete_keys("w", ["a"], ["p"], keep="second") == 1
    assert store.delete_keys("v", ["a"], ["p"]) == 1  # not kept
    assert store.delete_keys("w", ["a"], ["p"], keep="nothing") == 0
    assert store.stages() == []
    assert store.restore_kept("nothing") == 0
    assert store.restore_kept("second") == 1
    assert store.stages() == ["w"]
    assert store.get_many("w", [("a:1", "p%"), ("a", "p")]) == [None, b""]
    assert store.restore_kept("first") == 1
    assert store.get_many("w", [("a:1", "p%"), ("a", "p")]) == [b"x", b""]
    assert store.get_many("v", [("a", "p")]) == [None]


@pytest.mark.parametrize(
    ("assets", "points", "deleted"),
    [
        (["a1"], ["p1"], 1),
        (["a1", "a2"], ["p1", "p2"], 4),
        (["a1", "a2", "a3"], ["p1", "nothing"], 3),
        (["a1", "a2", "a3"], ["p1", "p2", "p3"], 9),
    ],
    ids=["1 of 9", "4 of 9", "3 of 9 asked as 6", "all 9"],
)
def test_a_kept_delete_keeps_exactly_what_it_deleted_whatever_part_of_the_stage(
    store: StateStore, assets: list[str], points: list[str], deleted: int
) -> None:
    """(Redis keeps a large part of a stage by copying all of it and trimming the copy.)"""
    fill(store, "s", ["a1", "a2", "a3"], ["p1", "p2", "p3"])
    before = list(store.scan("s"))

    assert store.delete_keys("s", assets, points, keep="d") == deleted
    assert len(list(store.scan("s"))) == 9 - deleted
    assert store.restore_kept("d") == deleted
    assert list(store.scan("s")) == before


def test_drop_kept_and_clear_forget_kept_values(store: StateStore) -> None:
    fill(store, "s", ["a1", "a2"], ["p"])
    store.delete_keys("s", ["a1"], ["p"], keep="dropped")
    store.delete_keys("s", ["a2"], ["p"], keep="cleared")
    store.drop_kept("dropped")
    store.drop_kept("never-kept")
    assert store.restore_kept("dropped") == 0
    store.clear()
    assert store.restore_kept("cleared") == 0
    assert store.stages() == []


def test_a_kept_delete_and_its_restore_of_100k_keys(store: StateStore) -> None:
    items = {(f"asset-{i:03d}", f"point:{j}"): b"v%d" % j for i in range(316) for j in range(316)}
    commit(store, {"s": items})
    assets, points = sorted({a for a, _ in items}), sorted({p for _, p in items})
    assert store.delete_keys("s", assets, points, keep="big") == len(items)
    assert store.stages() == []
    assert store.restore_kept("big") == len(items)
    assert store.get_many("s", list(items)) == list(items.values())


# reset and clear


def test_reset_offsets_moves_offsets_either_way_keeps_state_and_bumps_generation(
    store: StateStore,
) -> None:
    fill(store, "s", ["a"], ["p"])
    held = commit(store, {}, {("t", 0): 50, ("t", 1): 7})
    store.reset_offsets({("t", 0): 0, ("u", 0): 99})
    after = store.checkpoint()
    assert after == Checkpoint(held.seq, held.generation + 1, {("t", 0): 0, ("t", 1): 7, ("u", 0): 99})
    assert store.get_many("s", [("a", "p")]) == [b"a|p"]
    with pytest.raises(StaleCheckpoint):
        store.commit({}, held, held.advance({("t", 0): 51}))
    store.commit({}, after, after.advance({("t", 0): 5}))
    assert store.checkpoint().offsets[("t", 0)] == 5


def test_clear_drops_state_and_offsets_keeps_seq_and_bumps_generation(store: StateStore) -> None:
    fill(store, "s", ["a", "b"], ["p"])
    fill(store, "t", ["a"], ["q"])
    held = commit(store, {}, {("t", 0): 50, ("t", 1): 7})
    store.clear()
    assert store.checkpoint() == Checkpoint(held.seq, held.generation + 1, {})
    assert store.stages() == []
    assert list(store.scan("s")) == []
    assert store.get_many("t", [("a", "q")]) == [None]
    with pytest.raises(StaleCheckpoint):
        store.commit({}, held, held.advance({}))
    # the store goes on from the cleared checkpoint, with offsets starting over
    commit(store, {"s": {("a", "p"): b"fresh"}}, {("t", 0): 1})
    assert snapshot(store) == (
        Checkpoint(held.seq + 1, held.generation + 1, {("t", 0): 1}),
        {"s": [("a", "p", b"fresh")]},
    )
    store.clear()
    store.clear()
    assert store.checkpoint() == Checkpoint(held.seq + 1, held.generation + 3, {})


def test_state_versions_are_recorded_per_stage_and_cleared_with_the_state(store: StateStore) -> None:
    assert store.state_versions() == {}
    store.record_state_versions({"s": 2, "#shared": 1})
    store.record_state_versions({"s": 3})
    held = commit(store, {"s": {("a", "p"): b"x"}}, {("t", 0): 1})
    assert store.state_versions() == {"s": 3, "#shared": 1}
    assert store.checkpoint() == held  # versions are no part of the checkpoint
    store.clear()
    assert store.state_versions() == {}


# the backend: one store per pipeline


def test_store_hands_out_one_long_lived_store_per_pipeline(state_backend: StateBackend) -> None:
    one = state_backend.store("one")
    assert state_backend.store("one") is one
    assert state_backend.store("two") is not one


def test_threads_asking_at_once_get_the_same_store(state_backend: StateBackend) -> None:
    barrier = threading.Barrier(8)
    got: list[StateStore] = []

    def ask() -> None:
        barrier.wait()
        got.append(state_backend.store("p1"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(s is got[0] for s in got)


@pytest.mark.parametrize(
    "pipeline_id", ["../x", "..", ".", "", "a/b", "/abs", "a\\b", ".hidden", "a b", "x" * 129, "p\n", "ü"]
)
def test_store_rejects_unsafe_pipeline_ids(state_backend: StateBackend, pipeline_id: str) -> None:
    with pytest.raises(ValueError, match="invalid pipeline id"):
        state_backend.store(pipeline_id)


@pytest.mark.parametrize("pipeline_id", ["p1", "pipe-1.v2", "_", "x" * 128, "a..b", "0"])
def test_store_accepts_safe_pipeline_ids(state_backend: StateBackend, pipeline_id: str) -> None:
    store = state_backend.store(pipeline_id)
    commit(store, {"s": {("a", "p"): b"1"}})
    assert store.get_many("s", [("a", "p")]) == [b"1"]


def test_pipelines_have_separate_stores(state_backend: StateBackend) -> None:
    one, two = state_backend.store("one"), state_backend.store("two")
    commit(one, {"s": {("a", "p"): b"1"}}, {("t", 0): 3})
    assert two.get_many("s", [("a", "p")]) == [None]
    assert two.checkpoint() == Checkpoint()
    two.clear()
    assert one.get_many("s", [("a", "p")]) == [b"1"]


def test_closing_the_backend_twice_is_a_no_op(state_backend: StateBackend) -> None:
    commit(state_backend.store("p1"), {"s": {("a", "p"): b"1"}})
    state_backend.close()
    state_backend.close()


def test_volatility_is_none_or_a_reason(state_backend: StateBackend) -> None:
    reason = state_backend.volatility()
    assert reason is None or (isinstance(reason, str) and reason)
