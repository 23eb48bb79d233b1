"""What only the Redis state backend can show: its key layout (one Cluster slot per pipeline),
durability across a SIGKILL of redis-server, a lost reply retried without a double commit,
a server that goes away, its persistence settings read, and no password in any message.
The StateStore contract itself runs on Redis in test_state_contract.py."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from state_support import commit, fill, snapshot

from redis_server import CuttingProxy, RedisServer, free_port
from streamcalc.backends import Backends, BackendUnavailable, VolatileState
from streamcalc.state import Checkpoint, StaleCheckpoint, StateStore, StateUnavailable
from streamcalc.state.redis import RedisStateBackend


@pytest.fixture
def backend(redis_url: str) -> Iterator[RedisStateBackend]:
    b = RedisStateBackend(redis_url)
    yield b
    b.close()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill, stop or reconfigure."""
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def test_keys_follow_the_documented_layout_and_share_one_cluster_slot_per_pipeline(
    backend: RedisStateBackend, redis_url: str
) -> None:
    for pipeline in ("p1", "p2"):
        store = backend.store(pipeline)
        commit(store, {"Sliding:1": {("a:1", "v"): b"x", ("a%2", "v:w"): b"y"}}, {("IN", 0): 5})
        store.record_state_versions({"Sliding:1": 2})
    raw = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in raw.keys("streamcalc:*"))
    assert keys == [
        f"streamcalc:{{{p}}}:{suffix}"
        for p in ("p1", "p2")
        for suffix in ("meta", "offsets", "stages", "state:Sliding%3A1", "versions")
    ]
    assert raw.hgetall("streamcalc:{p1}:state:Sliding%3A1") == {b"a%3A1:v": b"x", b"a%252:v%3Aw": b"y"}
    assert raw.hgetall("streamcalc:{p1}:offsets") == {b"IN:0": b"5"}
    assert raw.smembers("streamcalc:{p1}:stages") == {b"Sliding:1"}
    assert raw.hgetall("streamcalc:{p1}:versions") == {b"Sliding:1": b"2"}
    for pipeline in ("p1", "p2"):
        slots = {key_slot(k.encode()) for k in keys if k.startswith(f"streamcalc:{{{pipeline}}}")}
        assert len(slots) == 1
    raw.close()


def test_a_scan_of_one_asset_takes_its_id_literally(backend: RedisStateBackend) -> None:
    store = backend.store("p1")
    ids = ["a*", "a?", "a[1]", "a\\", "a", "a:b", "a%3A"]
    commit(store, {"s": {(a, "p"): a.encode() for a in ids}})
    for a in ids:
        assert list(store.scan("s", a)) == [(a, "p", a.encode())]


def test_an_emptied_asset_and_stage_leave_no_keys_behind(backend: RedisStateBackend, redis_url: str) -> None:
    store = backend.store("p1")
    fill(store, "s", ["a1", "a2"], ["p1", "p2"])
    commit(store, {"s": {("a1", "p1"): None, ("a1", "p2"): None}})
    store.delete_keys("s", ["a2"], ["p1", "p2"])
    raw = redis.Redis.from_url(redis_url)
    assert sorted(k.decode() for k in raw.keys("streamcalc:*")) == ["streamcalc:{p1}:meta"]
    assert store.stages() == []
    raw.close()


def test_a_commit_is_durable_across_a_sigkill_of_redis_server(private_server: RedisServer) -> None:
    backend = RedisStateBackend(private_server.url())
    store = backend.store("p1")
    fill(store, "s", [f"a{i}" for i in range(50)], ["p1", "p2"])
    commit(store, {"s": {("a0", "p1"): b"last"}}, {("IN", 0): 99})
    before = snapshot(store)
    private_server.kill()
    private_server.start()
    assert snapshot(store) == before  # the same client: it reconnects
    backend.close()


@pytest.fixture
def through_proxy(redis_url: str, redis_server: RedisServer) -> Iterator[tuple[StateStore, CuttingProxy]]:
    """A store on the session's redis-server (the test's database) behind a `CuttingProxy`."""
    proxy = CuttingProxy(redis_server.port)
    backend = RedisStateBackend(f"redis://127.0.0.1:{proxy.port}/{redis_url.rpartition('/')[2]}")
    yield backend.store("p1"), proxy
    backend.close()
    proxy.close()


def test_a_commit_whose_reply_was_lost_is_retried_and_applied_once(
    through_proxy: tuple[StateStore, CuttingProxy],
) -> None:
    store, proxy = through_proxy
    commit(store, {"s": {("a", "p"): b"1"}}, {("IN", 0): 1})
    proxy.cut_next(b"EVALSHA")
    expected = store.checkpoint()
    new = expected.advance({("IN", 0): 2})
    store.commit({"s": {("a", "p"): b"2"}}, expected, new)  # no StaleCheckpoint from its own retry
    assert proxy.cuts == 1
    assert store.checkpoint() == new
    assert store.get_many("s", [("a", "p")]) == [b"2"]
    with pytest.raises(StaleCheckpoint):  # a real second writer of the same seq is still fenced
        store.commit({"s": {("a", "p"): b"3"}}, expected, new)


def test_a_delete_whose_reply_was_lost_counts_once(through_proxy: tuple[StateStore, CuttingProxy]) -> None:
    store, proxy = through_proxy
    fill(store, "s", ["a1", "a2"], ["p1", "p2"])
    generation = store.checkpoint().generation
    proxy.cut_next(b"EVALSHA")
    assert store.delete_keys("s", ["a1", "a2"], ["p1"]) == 2
    assert proxy.cuts == 1
    assert store.checkpoint().generation == generation + 1


def test_a_server_that_is_gone_fails_calls_with_state_unavailable(private_server: RedisServer) -> None:
    backend = RedisStateBackend(private_server.url(), retries=2)
    store = backend.store("p1")
    commit(store, {"s": {("a", "p"): b"1"}})
    private_server.stop()
    for call in (
        lambda: store.get_many("s", [("a", "p")]),
        lambda: store.checkpoint(),
        lambda: store.commit({}, Checkpoint(1), Checkpoint(2)),
        lambda: store.delete_keys("s", ["a"], ["p"]),
        lambda: list(store.scan("s")),
        lambda: store.clear(),
    ):
        with pytest.raises(StateUnavailable, match="Redis") as info:
            call()
        assert isinstance(info.value.__cause__, redis.ConnectionError)
    backend.close()


def test_a_server_back_within_the_retries_loses_nothing(private_server: RedisServer) -> None:
    backend = RedisStateBackend(private_server.url())
    store = backend.store("p1")
    commit(store, {"s": {("a", "p"): b"1"}}, {("IN", 0): 1})
    private_server.kill()
    restarted = threading.Timer(0.5, private_server.start)
    restarted.start()
    new = commit(store, {"s": {("a", "p"): b"2"}}, {("IN", 0): 2})  # retried until the server is back
    restarted.join()
    assert store.checkpoint() == new and store.get_many("s", [("a", "p")]) == [b"2"]
    backend.close()


def test_opening_an_unreachable_server_fails_at_start_with_the_url_and_no_password(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://user:s3cret@127.0.0.1:{port}/0"
    backends = Backends.resolve(tmp_path, state=url)
    with pytest.raises(BackendUnavailable) as info:
        backends.check("state")
    assert "s3cret" not in str(info.value) and f"user:***@127.0.0.1:{port}" in str(info.value)


def test_a_wrong_password_fails_at_start_without_printing_it(
    private_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=private_server.port).config_set("requirepass", "right-one")
    backends = Backends.resolve(tmp_path, state=f"redis://:wrong-one@127.0.0.1:{private_server.port}/0")
    with pytest.raises(BackendUnavailable) as info:
        backends.check("state")
    assert "wrong-one" not in str(info.value)
    ok = Backends.resolve(tmp_path, state=f"redis://:right-one@127.0.0.1:{private_server.port}/0")
    ok.check("state")
    ok.close()


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("appendonly", "no", "appendonly is not yes"),
        ("appendfsync", "everysec", "appendfsync is everysec, not always"),
        ("appendfsync", "no", "appendfsync is no, not always"),
        ("maxmemory-policy", "allkeys-lru", "maxmemory-policy is allkeys-lru"),
    ],
)
def test_volatility_names_the_setting_that_can_lose_a_commit(
    private_server: RedisServer, setting: str, value: str, reason: str
) -> None:
    backend = RedisStateBackend(private_server.url())
    assert backend.volatility() is None
    redis.Redis(port=private_server.port).config_set(setting, value)
    found = backend.volatility()
    assert found is not None and reason in found
    backend.close()


def test_volatile_lru_eviction_is_not_volatile_because_state_keys_never_expire(
    private_server: RedisServer,
) -> None:
    redis.Redis(port=private_server.port).config_set("maxmemory-policy", "volatile-lru")
    backend = RedisStateBackend(private_server.url())
    assert backend.volatility() is None
    backend.close()


def test_pipelines_refuse_volatile_state_unless_it_is_allowed(
    private_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=private_server.port).config_set("appendfsync", "everysec")
    url = f"redis://:pw@127.0.0.1:{private_server.port}/0"
    redis.Redis(port=private_server.port).config_set("requirepass", "pw")
    strict = Backends.resolve(tmp_path, state=url)
    with pytest.raises(
        VolatileState, match=r"appendfsync is everysec, not always.*--allow-volatile-state"
    ) as info:
        strict.require_durable_state()
    assert "pw@" not in str(info.value)
    strict.close()
    allowed = Backends.resolve(tmp_path, state=url, allow_volatile_state=True)
    allowed.require_durable_state()
    assert allowed.urls.allow_volatile_state
    allowed.close()


def test_lmdb_state_is_durable_and_memory_state_is_not(tmp_path: Path) -> None:
    Backends.resolve(tmp_path).require_durable_state()
    with pytest.raises(VolatileState, match="memory state ends with its process"):
        Backends.resolve(tmp_path, state="memory").require_durable_state()


def test_a_server_that_hangs_fails_the_call_with_state_unavailable(
    private_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streamcalc.state.redis.SOCKET_TIMEOUT_S", 0.3)
    backend = RedisStateBackend(private_server.url(), retries=2)
    store = backend.store("p1")
    assert private_server.process is not None
    private_server.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(StateUnavailable) as info:
            store.checkpoint()
        assert isinstance(info.value.__cause__, redis.TimeoutError)
    finally:
        private_server.process.send_signal(signal.SIGCONT)
    assert store.checkpoint() == Checkpoint()
    backend.close()
