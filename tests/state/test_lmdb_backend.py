"""The LMDB state backend: one shared store per pipeline, and only our errors reach a caller."""

from __future__ import annotations

import threading
from pathlib import Path

import lmdb
import pytest

from streamcalc.clock import SYSTEM_CLOCK
from streamcalc.state import Checkpoint, StateUnavailable
from streamcalc.state.lmdb import LmdbStateBackend, LmdbStateStore, open_url


def filled(path: Path) -> LmdbStateStore:
    store = LmdbStateStore(path)
    store.commit({"s": {("a1", "p"): b"1", ("a2", "p"): b"2"}}, Checkpoint(), Checkpoint(1))
    return store


def test_a_closed_store_raises_state_unavailable_with_the_lmdb_error_chained(tmp_path: Path) -> None:
    store = filled(tmp_path / "s")
    store.close()

    for call in (
        lambda: store.get_many("s", [("a1", "p")]),
        lambda: store.checkpoint(),
        lambda: store.commit({}, Checkpoint(1), Checkpoint(2)),
        lambda: store.delete_keys("s", ["a1"], ["p"]),
        lambda: list(store.scan("s")),
    ):
        with pytest.raises(StateUnavailable, match="LMDB") as info:
            call()
        assert isinstance(info.value.__cause__, lmdb.Error)


def test_a_scan_failing_while_it_is_iterated_raises_state_unavailable(tmp_path: Path) -> None:
    store = filled(tmp_path / "s")
    scan = store.scan("s")
    assert next(scan) == ("a1", "p", b"1")
    store.close()

    with pytest.raises(StateUnavailable) as info:
        next(scan)
    assert isinstance(info.value.__cause__, lmdb.Error)


def test_the_backend_hands_out_one_store_per_pipeline_and_closes_them_all(tmp_path: Path) -> None:
    backend = open_url(str(tmp_path / "state"), SYSTEM_CLOCK)
    assert isinstance(backend, LmdbStateBackend)
    got: list[LmdbStateStore] = []
    threads = [threading.Thread(target=lambda: got.append(backend.store("p1"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert all(s is got[0] for s in got) and backend.store("p2") is not got[0]
    assert (tmp_path / "state" / "p1").is_dir()
    with pytest.raises(ValueError, match="invalid pipeline id"):
        backend.store("../p1")
    backend.close()
    with pytest.raises(StateUnavailable):
        got[0].checkpoint()
    assert backend.store("p1") is not got[0]  # reopened after a close
    backend.close()


def test_a_root_that_cannot_be_made_fails_when_the_backend_opens(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(OSError):
        LmdbStateBackend(tmp_path / "file" / "state")
