"""The LMDB state store and backend beyond the contract (test_state_contract.py runs that on
LMDB too): what lives in the directory, durability across reopening, handles, and readers and
writers in other processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb
import pytest
from state_support import commit, fill, snapshot

from streamcalc.clock import ManualClock
from streamcalc.state import Checkpoint, StateError
from streamcalc.state.lmdb import LmdbStateBackend, LmdbStateStore, open_pipeline_state, open_url

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


def test_a_commit_that_fails_part_way_writes_nothing(store: LmdbStateStore) -> None:
    commit(store, {"s": {("a", "p"): b"kept"}}, {("t", 0): 1})
    before = snapshot(store)
    too_long = "x" * 600  # LMDB refuses keys over 511 bytes: the last put of the batch fails
    with pytest.raises((StateError, lmdb.Error)):
        commit(store, {"s": {("a", "p"): b"lost", ("b", "p"): b"lost", (too_long, "p"): b"v"}}, {("t", 0): 2})
    assert snapshot(store) == before


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


def test_the_backend_opens_one_dir_per_pipeline_under_its_root_and_closes_them(tmp_path: Path) -> None:
    backend = open_url(str(tmp_path / "state"), ManualClock())
    assert isinstance(backend, LmdbStateBackend)
    commit(backend.store("one"), {"s": {("a", "p"): b"1"}}, {("t", 0): 3})
    commit(backend.store("two"), {"s": {("a", "p"): b"2"}})
    backend.close()
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["one", "two"]

    reopened = LmdbStateBackend(tmp_path / "state")
    try:
        assert reopened.store("one").get_many("s", [("a", "p")]) == [b"1"]
        assert reopened.store("one").checkpoint() == Checkpoint(1, 0, {("t", 0): 3})
        # a handle of its own on the same directory shares the environment, and closes alone
        own = open_pipeline_state(tmp_path, "two")
        own.close()
        assert reopened.store("two").get_many("s", [("a", "p")]) == [b"2"]
    finally:
        reopened.close()


# concurrency across processes


ASSETS = [f"a{i}" for i in range(20)]
POINTS = [f"p:{i}" for i in range(25)]

BATCH_WRITER = """
    import pathlib, sys
    from streamcalc.state.lmdb import open_pipeline_state
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
    from streamcalc.state import StaleCheckpoint
    from streamcalc.state.lmdb import open_pipeline_state
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
from streamcalc.log.embedded import open_log
from streamcalc.state import Checkpoint
from streamcalc.state.lmdb import open_pipeline_state

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
