"""StageState.edit, the live working set, read-only: it commits what load + save would (values
are replaced through save), fetches missing keys in one multi-get, and a failed batch's changes
go with the discarded cache."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcalc.keys import StateKey
from streamcalc.runtime.keyed_state import StageState
from streamcalc.state.lmdb import LmdbStateStore

A, B, C = ("a1", "p"), ("a2", "p"), ("a3", "p")


class Counter(msgspec.Struct):
    n: int


class CountingStore(LmdbStateStore):
    """The real LMDB store, counting the multi-gets and the keys they asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gets: list[list[StateKey]] = []

    def get_many(self, stage: str, keys: Sequence[StateKey]) -> list[bytes | None]:
        self.gets.append(sorted(keys))
        return super().get_many(stage, keys)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    s = CountingStore(tmp_path / "state")
    yield s
    s.close()


def commit(store: LmdbStateStore, *states: tuple[str, StageState]) -> None:
    cp = store.checkpoint()
    store.commit({stage: state.drain() for stage, state in states}, cp, cp.advance({}))


def stored(store: LmdbStateStore, stage: str) -> dict[StateKey, int]:
    return {(a, p): msgspec.msgpack.decode(raw, type=Counter).n for a, p, raw in store.scan(stage)}


def test_edit_is_the_live_working_set_and_commits_every_key_it_was_given(store: CountingStore) -> None:
    state = StageState(store, "s", Counter)
    state.save({A: Counter(1), B: Counter(2)})
    commit(store, ("s", state))

    state = StageState(store, "s", Counter)  # a fresh cache, as after a restart
    working = state.edit([A, C, A])
    assert (working[A], working[C]) == (Counter(1), None)
    assert store.gets == [[A, C]]
    working[A].n = 5  # changed in place
    state.save({C: Counter(7)})  # a new value, seen in the working set
    assert working[C] == Counter(7)
    assert state.edit([A, C]) is working and store.gets == [[A, C]]  # cached: no second get
    writes = state.drain()
    assert set(writes) == {A, C}  # B was not edited: not written
    cp = store.checkpoint()
    store.commit({"s": writes}, cp, cp.advance({}))
    assert stored(store, "s") == {A: 5, B: 2, C: 7}

    state.edit([B, C])
    state.save({C: None})  # None deletes; B, left alone, is written as it is
    commit(store, ("s", state))
    assert stored(store, "s") == {A: 5, B: 2}


def test_no_key_can_be_written_into_the_working_set(store: CountingStore) -> None:
    """Writing a key there, asked for or not, would change the cache and not the store: the
    working set refuses it; a value is replaced with save, which commits it."""
    state = StageState(store, "s", Counter)
    state.save({B: Counter(2)})
    commit(store, ("s", state))  # B cached and stored

    working = state.edit([A])
    for key in (A, B, C):
        with pytest.raises(TypeError):
            working[key] = Counter(9)  # type: ignore[index]
    state.save({A: Counter(1), C: Counter(3)})
    commit(store, ("s", state))

    assert stored(store, "s") == {A: 1, B: 2, C: 3}
    assert state.load([A, B, C]) == StageState(store, "s", Counter).load([A, B, C])


def test_a_failed_batch_leaves_nothing_behind_once_the_cache_is_discarded(store: CountingStore) -> None:
    state = StageState(store, "s", Counter)
    state.save({A: Counter(1)})
    commit(store, ("s", state))

    working = state.edit([A, B])
    working[A].n = 99
    state.save({B: Counter(3)})
    state.discard()  # what the runner does after any failure

    assert state.load([A, B]) == {A: Counter(1), B: None}
    assert state.drain() == {}
    assert stored(store, "s") == {A: 1}


Op = tuple[int, Literal["add", "replace", "delete", "read", "write-unasked"], int]
"""(key index, what the batch does to the key, amount); write-unasked saves a key of its own
(`b<i>`) that the operator never asked `edit` for."""

batches = st.lists(
    st.tuples(
        st.lists(
            st.tuples(
                st.integers(0, 3),
                st.sampled_from(["add", "replace", "delete", "read", "write-unasked"]),
                st.integers(1, 9),
            ),
            max_size=8,
        ),
        st.booleans(),  # the batch fails: its cache is discarded instead of committed
    ),
    max_size=8,
)


def by_load_and_save(state: StageState, ops: list[Op]) -> None:
    working = state.load({(f"a{i}", "p") for i, op, _ in ops if op != "write-unasked"})
    changed: dict[StateKey, Counter | None] = {}
    for i, op, n in ops:
        key = (f"a{i}", "p")
        if op == "write-unasked":
            changed[(f"b{i}", "p")] = Counter(n)
        elif op != "read":
            value = working[key]
            if op == "add" and value is not None:
                value.n += n
            else:
                value = None if op == "delete" else Counter(n)
            working[key] = changed[key] = value
    state.save(changed)


def by_edit(state: StageState, ops: list[Op]) -> None:
    working = state.edit([(f"a{i}", "p") for i, op, _ in ops if op != "write-unasked"])
    for i, op, n in ops:
        key = (f"a{i}", "p")
        if op == "write-unasked":
            state.save({(f"b{i}", "p"): Counter(n)})
            continue
        value = working[key]
        if op == "add" and value is not None:
            value.n += n
        elif op != "read":
            state.save({key: None if op == "delete" else Counter(n)})


@settings(max_examples=150, deadline=None)
@given(batches=batches, max_cached=st.sampled_from([1, 2, 100]))
def test_edit_commits_what_load_and_save_commit(
    tmp_path_factory: pytest.TempPathFactory, batches: list[tuple[list[Op], bool]], max_cached: int
) -> None:
    store = LmdbStateStore(tmp_path_factory.mktemp("edit") / "state")
    try:
        saved = StageState(store, "saved", Counter, max_cached_keys=max_cached)
        edited = StageState(store, "edited", Counter, max_cached_keys=max_cached)
        for ops, fails in batches:
            by_load_and_save(saved, ops)
            by_edit(edited, ops)
            if fails:
                saved.discard()
                edited.discard()
            else:
                commit(store, ("saved", saved), ("edited", edited))
            assert stored(store, "edited") == stored(store, "saved")
    finally:
        store.close()
