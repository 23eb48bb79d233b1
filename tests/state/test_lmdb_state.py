"""The StateStore contract (state/base.py), end to end on the LMDB store in tmp dirs."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import lmdb
import pytest

from streamcalc.state import (
    Checkpoint,
    OffsetRegression,
    StaleCheckpoint,
    StateError,
    StateStore,
    StateWrites,
    TopicPartition,
)
from streamcalc.state.lmdb import LmdbStateStore, open_pipeline_state

StoreFactory = Callable[..., LmdbStateStore]


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    """Open a pipeline's store (default: pipeline "p1" under tmp_path/"data"); all closed at teardown."""
    opened: list[LmdbStateStore] = []

    def make(pipeline_id: str = "p1", data_dir: Path | None = None) -> LmdbStateStore:
        store = open_pipeline_state(data_dir or tmp_path / "data", pipeline_id)
        opened.append(store)
        return store

    yield make
    for store in reversed(opened):
        store.close()  # close() is idempotent: a test may have closed it already


@pytest.fixture
def store(store_factory: StoreFactory) -> LmdbStateStore:
    return store_factory()


def commit(
    store: LmdbStateStore, writes: StateWrites, offsets: Mapping[TopicPartition, int] | None = None
) -> Checkpoint:
    """Commit one batch on top of the store's current checkpoint; returns the new checkpoint."""
    expected = store.checkpoint()
    new = expected.advance(offsets or {})
    store.commit(writes, expected, new)
    return new


def snapshot(store: LmdbStateStore) -> tuple[Checkpoint, dict[str, list[tuple[str, str, bytes]]]]:
    return store.checkpoint(), {stage: list(store.scan(stage)) for stage in store.stages()}


def test_lmdb_store_has_every_method_of_the_protocol() -> None:
    methods = [n for n, m in vars(StateStore).items() if callable(m) and not n.startswith("_")]
    assert "commit" in methods
    for name in methods:
        expected = list(inspect.signature(getattr(StateStore, name)).parameters)
        assert list(inspect.signature(getattr(LmdbStateStore, name)).parameters) == expected, name


# reads


def test_a_new_store_is_empty(store: LmdbStateStore) -> None:
    assert store.checkpoint() == Checkpoint(0, 0, {})
    assert store.get_many("s", [("a", "p")]) == [None]
    assert list(store.scan("s")) == []
    assert store.stages() == []


def test_get_many_returns_values_in_the_order_asked_with_none_for_missing(store: LmdbStateStore) -> None:
    commit(store, {"s": {("a1", "p1"): b"11", ("a1", "p2"): b"12", ("a2", "p1"): b"21"}})
    commit(store, {"other": {("a1", "p1"): b"other"}})
    keys = [("a2", "p1"), ("nope", "p1"), ("a1", "p2"), ("a1", "p1"), ("a2", "p1"), ("a1", "nope")]
    assert store.get_many("s", keys) == [b"21", None, b"12", b"11", b"21", None]
    assert store.get_many("other", keys) == [None, None, None, b"other", None, None]
    assert store.get_many("s", []) == []
    assert store.get_many("s", iter([("a1", "p1")])) == [b"11"]


ODD_IDS = ["a", "a:b", "a:", ":a", "a/b", "a/", "a\x00b", "ab", "b", "aa", "ä", "ü/ü:ü", "日本", "A", "a b"]


def test_ids_with_separators_and_unicode_never_collide(store: LmdbStateStore) -> None:
    writes = {(a, p): f"{a}|{p}".encode() for a in ODD_IDS for p in ODD_IDS}
    commit(store, {"s": writes, "s:a": {("b", "c"): b"x"}, "s/a": {("b", "c"): b"y"}})
    keys = list(writes)
    assert store.get_many("s", keys) == [writes[k] for k in keys]
    assert store.get_many("s:a", [("b", "c"), ("a:b", "c")]) == [b"x", None]
    assert store.get_many("s", [("s:a", "b"), ("a", "b:c")]) == [None, None]
    assert sorted(store.scan("s")) == sorted((a, p, v) for (a, p), v in writes.items())
    assert sorted(store.stages()) == ["s", "s/a", "s:a"]


@pytest.mark.parametrize("asset", ODD_IDS)
def test_scan_of_one_asset_returns_only_that_asset(store: LmdbStateStore, asset: str) -> None:
    commit(store, {"s": {(a, p): f"{a}|{p}".encode() for a in ODD_IDS for p in ("p1", "p:2")}})
    commit(store, {"t": {(asset, "p1"): b"other stage"}})
    assert sorted(store.scan("s", asset)) == [
        (asset, "p1", f"{asset}|p1".encode()),
        (asset, "p:2", f"{asset}|p:2".encode()),
    ]
    assert list(store.scan("s", "missing")) == []
    assert list(store.scan("t", asset)) == [(asset, "p1", b"other stage")]


def test_scan_of_a_stage_does_not_include_stages_sharing_its_prefix(store: LmdbStateStore) -> None:
    commit(store, {"s": {("a", "p"): b"1"}, "s2": {("a", "p"): b"2"}, "s:x": {("a", "p"): b"3"}})
    assert list(store.scan("s")) == [("a", "p", b"1")]
    assert list(store.scan("s2")) == [("a", "p", b"2")]
    assert list(store.scan("s:x", "a")) == [("a", "p", b"3")]


def test_scan_is_in_key_order(store: LmdbStateStore) -> None:
    # Key order is the order of the (assetId, pointId) keys, the same for every backend.
    writes = {(a, p): b"v" for a in ("b", "aa", "a", "a:1", "ab", "B") for p in ("10", "9", "x", "ab")}
    commit(store, {"s": writes})
    assert [(a, p) for a, p, _ in store.scan("s")] == sorted(writes)
    assert [p for _, p, _ in store.scan("s", "aa")] == sorted(["10", "9", "x", "ab"])


def test_a_scan_reads_one_snapshot_even_across_a_delete(store: LmdbStateStore) -> None:
    fill(store, "s", ["a"], [f"p{i}" for i in range(5)])
    scan = store.scan("s", "a")
    first = next(scan)
    assert store.delete_keys("s", ["a"], [f"p{i}" for i in range(5)]) == 5
    assert [first, *scan] == [("a", f"p{i}", f"a|p{i}".encode()) for i in range(5)]
    assert list(store.scan("s")) == []


def test_stages_lists_stages_that_hold_state(store: LmdbStateStore) -> None:
    commit(store, {"window": {("a", "p"): b"1"}, "w": {("a", "p"): b"1"}, "cache:1": {("b", "q"): b"2"}})
    commit(store, {"empty": {("a", "p"): None}})
    assert sorted(store.stages()) == ["cache:1", "w", "window"]
    store.delete_keys("w", ["a"], ["p"])
    assert sorted(store.stages()) == ["cache:1", "window"]


# commit


def test_commit_applies_puts_deletes_offsets_and_seq(store: LmdbStateStore) -> None:
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


def test_commit_with_no_writes_still_records_offsets_and_seq(store: LmdbStateStore) -> None:
    commit(store, {}, {("t", 0): 3})
    commit(store, {"s": {}}, {("t", 0): 3})
    assert store.checkpoint() == Checkpoint(2, 0, {("t", 0): 3})


@pytest.mark.parametrize(
    "stale", [Checkpoint(0, 0), Checkpoint(2, 0), Checkpoint(1, 1), Checkpoint(5, 3, {("t", 0): 100})]
)
def test_commit_on_a_stale_checkpoint_raises_and_writes_nothing(
    store: LmdbStateStore, stale: Checkpoint
) -> None:
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


def test_a_zombie_writer_is_fenced(store_factory: StoreFactory) -> None:
    live, zombie = store_factory(), store_factory()
    shared = live.checkpoint()
    live.commit({"s": {("a", "p"): b"live"}}, shared, shared.advance({("t", 0): 1}))
    with pytest.raises(StaleCheckpoint):
        zombie.commit({"s": {("a", "p"): b"zombie"}}, shared, shared.advance({("t", 0): 1}))
    assert live.get_many("s", [("a", "p")]) == [b"live"]


def test_offsets_never_move_backwards_through_commit(store: LmdbStateStore) -> None:
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


def test_a_commit_that_fails_part_way_writes_nothing(store: LmdbStateStore) -> None:
    commit(store, {"s": {("a", "p"): b"kept"}}, {("t", 0): 1})
    before = snapshot(store)
    too_long = "x" * 600  # LMDB refuses keys over 511 bytes: the last put of the batch fails
    with pytest.raises((StateError, lmdb.Error)):
        commit(store, {"s": {("a", "p"): b"lost", ("b", "p"): b"lost", (too_long, "p"): b"v"}}, {("t", 0): 2})
    assert snapshot(store) == before


# delete


def fill(store: LmdbStateStore, stage: str, assets: list[str], points: list[str]) -> None:
    commit(store, {stage: {(a, p): f"{a}|{p}".encode() for a in assets for p in points}})


def test_delete_keys_deletes_the_cross_product_and_counts_existing_keys(store: LmdbStateStore) -> None:
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


def test_delete_keys_bumps_the_generation_and_fences_old_checkpoints(store: LmdbStateStore) -> None:
    fill(store, "s", ["a"], ["p", "q"])
    held = store.checkpoint()
    assert store.delete_keys("s", ["a"], ["p"]) == 1
    after = store.checkpoint()
    assert (after.seq, after.generation, after.offsets) == (held.seq, held.generation + 1, held.offsets)
    # a worker with a cached value from before the delete cannot bring it back
    with pytest.raises(StaleCheckpoint):
        store.commit({"s": {("a", "p"): b"resurrected"}}, held, held.advance({}))
    assert store.get_many("s", [("a", "p"), ("a", "q")]) == [None, b"a|q"]
    assert store.delete_keys("s", ["none"], ["none"]) == 0
    assert store.checkpoint().generation == held.generation + 2


def test_delete_of_100k_keys(store: LmdbStateStore) -> None:
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


# reset and clear


def test_reset_offsets_moves_offsets_either_way_keeps_state_and_bumps_generation(
    store: LmdbStateStore,
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


def test_clear_drops_state_and_offsets_keeps_seq_and_bumps_generation(store: LmdbStateStore) -> None:
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


def test_state_versions_are_recorded_per_stage_and_cleared_with_the_state(store: LmdbStateStore) -> None:
    assert store.state_versions() == {}
    store.record_state_versions({"s": 2, "#shared": 1})
    store.record_state_versions({"s": 3})
    held = commit(store, {"s": {("a", "p"): b"x"}}, {("t", 0): 1})
    assert store.state_versions() == {"s": 3, "#shared": 1}
    assert store.checkpoint() == held  # versions are no part of the checkpoint
    store.clear()
    assert store.state_versions() == {}


# pipelines, paths, durability


@pytest.mark.parametrize(
    "pipeline_id", ["../x", "..", ".", "", "a/b", "/abs", "a\\b", ".hidden", "a b", "x" * 129, "p\n", "ü"]
)
def test_open_pipeline_state_rejects_unsafe_ids(tmp_path: Path, pipeline_id: str) -> None:
    data = tmp_path / "data"
    with pytest.raises(ValueError, match="invalid pipeline id"):
        open_pipeline_state(data, pipeline_id)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("pipeline_id", ["p1", "pipe-1.v2", "_", "x" * 128, "a..b", "0"])
def test_open_pipeline_state_accepts_safe_ids(
    store_factory: StoreFactory, tmp_path: Path, pipeline_id: str
) -> None:
    store = store_factory(pipeline_id)
    commit(store, {"s": {("a", "p"): b"1"}})
    assert (tmp_path / "data" / "state" / pipeline_id).is_dir()


def test_pipelines_have_separate_stores(store_factory: StoreFactory) -> None:
    one, two = store_factory("one"), store_factory("two")
    commit(one, {"s": {("a", "p"): b"1"}}, {("t", 0): 3})
    assert two.get_many("s", [("a", "p")]) == [None]
    assert two.checkpoint() == Checkpoint()
    two.clear()
    assert one.get_many("s", [("a", "p")]) == [b"1"]


def test_state_and_checkpoint_survive_close_and_reopen(store_factory: StoreFactory) -> None:
    store = store_factory()
    fill(store, "s", ["a", "b"], ["p", "q"])
    commit(store, {"t": {("x", "y"): b"z"}}, {("t", 0): 9})
    store.delete_keys("s", ["b"], ["q"])
    before = snapshot(store)
    store.close()
    reopened = store_factory()
    assert snapshot(reopened) == before
    assert before[0] == Checkpoint(2, 1, {("t", 0): 9})
    commit(reopened, {"s": {("b", "q"): b"again"}})
    assert reopened.get_many("s", [("b", "q")]) == [b"again"]


def test_closing_a_store_twice_does_not_close_another_handle(store_factory: StoreFactory) -> None:
    first, second = store_factory(), store_factory()
    first.close()
    first.close()  # a no-op, not an error
    commit(second, {"s": {("a", "p"): b"1"}})
    assert second.get_many("s", [("a", "p")]) == [b"1"]


# concurrency across processes


ASSETS = [f"a{i}" for i in range(20)]
POINTS = [f"p:{i}" for i in range(25)]

BATCH_WRITER = """
    import pathlib, sys
    from streamcalc.state import open_pipeline_state
    data, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    assets = [f"a{i}" for i in range(20)]
    points = [f"p:{i}" for i in range(25)]
    store = open_pipeline_state(data, "p1")
    batch = 0
    while not stop.exists() and batch < 100_000:
        batch += 1
        if batch % 5 == 0:
            store.delete_keys("s", assets, points)
            continue
        cp = store.checkpoint()
        value = b"%d" % batch
        writes = {"s": {(a, p): value for a in assets for p in points}}
        store.commit(writes, cp, cp.advance({("t", 0): cp.seq + 1}))
    store.close()
    print(batch, flush=True)
"""


def test_readers_in_another_process_never_see_half_a_commit_or_half_a_delete(
    store_factory: StoreFactory, tmp_path: Path, python_process_factory
) -> None:
    data, stop = tmp_path / "data", tmp_path / "stop"
    reader = store_factory(data_dir=data)
    keys = [(a, p) for a in ASSETS for p in POINTS]
    writer = python_process_factory(BATCH_WRITER, data, stop)
    seen: set[bytes | None] = set()
    deadline = time.monotonic() + 30
    while len(seen) < 25 or None not in seen:
        assert time.monotonic() < deadline, f"the writer made no progress; seen {len(seen)} states"
        assert writer.poll() is None, writer.communicate()[1]
        values = set(reader.get_many("s", keys))
        assert len(values) == 1, f"one get_many saw several batches: {sorted(map(repr, values))[:5]}"
        seen |= values
        scanned = list(reader.scan("s"))
        assert len(scanned) in (0, len(keys)), f"a scan saw {len(scanned)} of {len(keys)} keys"
        assert len({v for _, _, v in scanned}) <= 1, "one scan saw several batches"
        one_asset = list(reader.scan("s", ASSETS[7]))
        assert len(one_asset) in (0, len(POINTS))
        assert len({v for _, _, v in one_asset}) <= 1
        cp = reader.checkpoint()
        assert cp.offsets.get(("t", 0), 0) == cp.seq, "checkpoint seq and offsets from different commits"
    stop.touch()
    batches = int(python_process_factory.finish(writer))
    final = set(reader.get_many("s", keys))
    assert final == ({None} if batches % 5 == 0 else {b"%d" % batches})


COUNTER = """
    import pathlib, sys
    from streamcalc.state import StaleCheckpoint, open_pipeline_state
    data, increments = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    store = open_pipeline_state(data, "p1")
    print("ready", flush=True)
    sys.stdin.readline()
    done = conflicts = 0
    while done < increments:
        cp = store.checkpoint()
        (raw,) = store.get_many("s", [("counter", "n")])
        n = int(raw or b"0")
        try:
            store.commit({"s": {("counter", "n"): b"%d" % (n + 1)}}, cp, cp.advance({}))
        except StaleCheckpoint:
            conflicts += 1
            continue
        done += 1
    store.close()
    print(conflicts, flush=True)
"""


def test_compare_and_set_serialises_writers_in_different_processes(
    store_factory: StoreFactory, tmp_path: Path, python_process_factory
) -> None:
    data, increments = tmp_path / "data", 300
    store = store_factory(data_dir=data)
    workers = [python_process_factory(COUNTER, data, increments) for _ in range(2)]
    for proc in workers:
        assert proc.stdout.readline().strip() == "ready"
    for proc in workers:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in workers:
        python_process_factory.finish(proc)
    assert store.get_many("s", [("counter", "n")]) == [b"%d" % (2 * increments)]
    assert store.checkpoint().seq == 2 * increments


CHURN = """
import sys, threading
from pathlib import Path
from streamcalc.log import open_log
from streamcalc.state import Checkpoint, open_pipeline_state

data = Path(sys.argv[1])
held = open_pipeline_state(data, "p1")  # keeps the environment open and shared throughout


def opener() -> None:  # what API requests do: a handle per request
    for _ in range(300):
        open_pipeline_state(data, "p1").close()
        open_log(data).close()


def writer() -> None:  # what a commit or delete does: hold LMDB's write lock
    for seq in range(1, 601):
        held.commit({"s": {("a", "p"): b"x"}}, Checkpoint(seq - 1), Checkpoint(seq))


threads = [threading.Thread(target=f) for f in (opener, opener, writer)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_threads_opening_handles_while_another_writes_do_not_deadlock(tmp_path: Path) -> None:
    """The API opens a store or log handle per request on threads while others write: opening
    must not hold the GIL while it waits for LMDB's write lock. Run apart, as a deadlocked
    process holds the GIL and no timeout inside it could fire."""
    done = subprocess.run(
        [sys.executable, "-c", CHURN, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
