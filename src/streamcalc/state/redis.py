"""The Redis StateStore: stage state shared by every machine that reaches one Redis (or Valkey).

Key layout (documented for operators in docs/redis-state.md), one pipeline `P` per hash tag,
so all of a pipeline's keys are in one slot of a Redis Cluster and every script and
transaction below touches one slot:

| key | type | holds |
|---|---|---|
| `streamcalc:{P}:meta` | hash | `generation`, `seq:<worker>`, `token:<worker>`, `lastdelete` |
| `streamcalc:{P}:offsets` | hash | `<topic>:<partition>` -> committed source offset |
| `streamcalc:{P}:versions` | hash | stage -> state encoding version |
| `streamcalc:{P}:stages` | set | stages that hold state |
| `streamcalc:{P}:assets:<stage>` | sorted set | assetIds that hold state in the stage (score 0: by name) |
| `streamcalc:{P}:state:<stage>:<assetId>` | hash | pointId -> the key's state bytes |

`:` and `%` inside a stage or asset id are written `%3A` and `%25`, so a key names one
(stage, asset) only. A commit is one Lua script given every key it touches (as Cluster
requires): it checks (seq, generation) and the offsets first and writes only if all hold, so
a zombie worker or a stale cache is fenced and nothing is half-written. Reads of several keys
are one MULTI/EXEC, so they see all of a commit or none of it.

Durability is Redis's own: a commit is durable once Redis has it on disk, which with AOF and
`appendfsync always` is before it answers. `volatility()` reads the server's settings so the
runtime can refuse to run pipelines on a Redis that would lose acknowledged commits.

A lost connection is retried with backoff for about `RETRY_BUDGET_S`, then the call fails with
`StateUnavailable`. A commit retried after its reply was lost is recognised by its token and
not applied twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from streamcalc.clock import Clock
from streamcalc.errors import translate_errors
from streamcalc.ids import check_pipeline_id
from streamcalc.keys import StateKey, TopicPartition
from streamcalc.state.base import Checkpoint, StateWrites, check_seq_forward
from streamcalc.state.errors import OffsetRegression, StaleCheckpoint, StateUnavailable

RETRIES = 8
BACKOFF_CAP_S = 1.0
SOCKET_TIMEOUT_S = 5.0
"""How long a server that accepted a connection may stay silent (e.g. stopped with SIGSTOP):
a command is then failed, not retried; a new connection's handshake is, so a hung server fails
a call after at most about RETRIES x SOCKET_TIMEOUT_S."""
CONNECT_TIMEOUT_S = 2.0
RETRY_BUDGET_S = 6.0
"""About how long a call keeps retrying a refused connection: 8 jittered backoffs of at most 1 s.
A worker that still fails is restarted by its supervisor, so the pipeline rides out longer
outages too, until its restarts are exhausted (RUN_ERROR)."""
_ARGS_PER_CALL = 4000  # Lua's unpack() is limited to a few thousand values at a time

_COMMIT = """
local meta, offsets, stages = KEYS[1], KEYS[2], KEYS[3]
local worker, token = ARGV[1], ARGV[5]
local seq = tonumber(redis.call('HGET', meta, 'seq:' .. worker) or '0')
local gen = tonumber(redis.call('HGET', meta, 'generation') or '0')
if seq ~= tonumber(ARGV[2]) or gen ~= tonumber(ARGV[3]) then
  if seq == tonumber(ARGV[4]) and redis.call('HGET', meta, 'token:' .. worker) == token then
    return {'done'}
  end
  return {'stale', seq, gen}
end
local a = 6
local n = tonumber(ARGV[a])
for i = 1, n do
  local committed = tonumber(redis.call('HGET', offsets, ARGV[a + 2 * i - 1]) or '0')
  if tonumber(ARGV[a + 2 * i]) < committed then
    return {'regress', ARGV[a + 2 * i - 1], committed}
  end
end
for i = 1, n do
  redis.call('HSET', offsets, ARGV[a + 2 * i - 1], ARGV[a + 2 * i])
end
a = a + 2 * n + 1
local k = 4
local chunk = tonumber(ARGV[a])
local stage_count = tonumber(ARGV[a + 1])
a = a + 2
for s = 1, stage_count do
  local stage, asset_count = ARGV[a], tonumber(ARGV[a + 1])
  local assets = KEYS[k]
  a = a + 2
  k = k + 1
  for j = 1, asset_count do
    local asset, sets, dels = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local hash = KEYS[k]
    a = a + 3
    k = k + 1
    local stop = a + 2 * sets - 1
    while a <= stop do
      redis.call('HSET', hash, unpack(ARGV, a, math.min(a + chunk - 1, stop)))
      a = a + chunk
    end
    a = stop + 1
    stop = a + dels - 1
    while a <= stop do
      redis.call('HDEL', hash, unpack(ARGV, a, math.min(a + chunk - 1, stop)))
      a = a + chunk
    end
    a = stop + 1
    if redis.call('EXISTS', hash) == 1 then
      redis.call('ZADD', assets, 'NX', 0, asset)
    else
      redis.call('ZREM', assets, asset)
    end
  end
  if redis.call('EXISTS', assets) == 1 then
    redis.call('SADD', stages, stage)
  else
    redis.call('SREM', stages, stage)
  end
end
redis.call('HSET', meta, 'seq:' .. worker, ARGV[4], 'token:' .. worker, token)
return {'ok'}
"""

_DELETE = """
local meta, stages, assets = KEYS[1], KEYS[2], KEYS[3]
local token, stage, chunk, point_count = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local last = redis.call('HGET', meta, 'lastdelete')
if last and string.sub(last, 1, #token + 1) == token .. ':' then
  return tonumber(string.sub(last, #token + 2))
end
local deleted = 0
for i = 4, #KEYS do
  local asset = ARGV[4 + point_count + i - 3]
  local p = 5
  while p <= 4 + point_count do
    deleted = deleted + redis.call('HDEL', KEYS[i], unpack(ARGV, p, math.min(p + chunk - 1, 4 + point_count)))
    p = p + chunk
  end
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('ZREM', assets, asset)
  end
end
if redis.call('EXISTS', assets) == 0 then
  redis.call('SREM', stages, stage)
end
redis.call('HINCRBY', meta, 'generation', 1)
redis.call('HSET', meta, 'lastdelete', token .. ':' .. deleted)
return deleted
"""


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace(":", "%3A")


class _Keys:
    """The key names of one pipeline (see the module doc)."""

    def __init__(self, pipeline_id: str) -> None:
        self.root = f"streamcalc:{{{pipeline_id}}}"
        self.meta = f"{self.root}:meta"
        self.offsets = f"{self.root}:offsets"
        self.versions = f"{self.root}:versions"
        self.stages = f"{self.root}:stages"

    def assets(self, stage: str) -> str:
        return f"{self.root}:assets:{_escape(stage)}"

    def state_prefix(self, stage: str) -> str:
        return f"{self.root}:state:{_escape(stage)}:"


@translate_errors(redis.RedisError, StateUnavailable, "Redis")
class RedisStateStore:
    def __init__(self, client: redis.Redis, pipeline_id: str) -> None:
        self._client: Any = client  # replies are bytes (no decode_responses); redis-py types them bytes | str
        self._keys = _Keys(check_pipeline_id(pipeline_id))
        self._commit = client.register_script(_COMMIT)
        self._delete = client.register_script(_DELETE)

    def get_many(self, stage: str, keys: Iterable[StateKey]) -> list[bytes | None]:
        keys = list(keys)
        if not keys:
            return []
        by_asset: dict[str, list[str]] = {}
        for a, p in keys:
            by_asset.setdefault(a, []).append(p)
        prefix = self._keys.state_prefix(stage)
        pipe = self._client.pipeline(transaction=True)
        for a, points in by_asset.items():
            pipe.hmget(prefix + _escape(a), points)
        found = {a: iter(values) for a, values in zip(by_asset, pipe.execute(), strict=True)}
        return [next(found[a]) for a, _ in keys]

    def scan(self, stage: str, asset_id: str | None = None) -> Iterator[tuple[str, str, bytes]]:
        prefix = self._keys.state_prefix(stage)
        if asset_id is not None:
            rows = self._client.hgetall(prefix + _escape(asset_id))
            for point in sorted(rows):
                yield asset_id, point.decode(), rows[point]
            return
        for asset, values in self._snapshot(stage, prefix):
            for point in sorted(values):
                yield asset, point.decode(), values[point]

    def delete_keys(self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str]) -> int:
        assets, points = sorted(set(asset_ids)), sorted(set(point_ids))
        prefix = self._keys.state_prefix(stage)
        keys = [self._keys.meta, self._keys.stages, self._keys.assets(stage)]
        keys += [prefix + _escape(a) for a in assets]
        args: list[Any] = [_token(), stage, _ARGS_PER_CALL, len(points), *points, *assets]
        if not points:
            keys = keys[:3]  # nothing to delete, but the generation still moves (as everywhere)
        deleted: int = self._delete(keys=keys, args=args)
        return deleted

    def checkpoint(self, worker: int = 0) -> Checkpoint:
        pipe = self._client.pipeline(transaction=True)
        pipe.hmget(self._keys.meta, [f"seq:{worker}", "generation"])
        pipe.hgetall(self._keys.offsets)
        (seq, gen), offsets = pipe.execute()
        return Checkpoint(int(seq or 0), int(gen or 0), _offsets(offsets))

    def commit(self, writes: StateWrites, expected: Checkpoint, new: Checkpoint, worker: int = 0) -> None:
        check_seq_forward(expected, new)  # the rest of `check_commit` is in the script
        keys = [self._keys.meta, self._keys.offsets, self._keys.stages]
        args: list[Any] = [worker, expected.seq, expected.generation, new.seq, _token(), len(new.offsets)]
        for (topic, partition), offset in new.offsets.items():
            args += (f"{topic}:{partition}", offset)
        args += (_ARGS_PER_CALL, len(writes))
        for stage, changes in writes.items():
            by_asset: dict[str, tuple[list[Any], list[str]]] = {}
            for (a, p), value in changes.items():
                sets, dels = by_asset.setdefault(a, ([], []))
                if value is None:
                    dels.append(p)
                else:
                    sets += (p, bytes(value))
            keys.append(self._keys.assets(stage))
            args += (stage, len(by_asset))
            prefix = self._keys.state_prefix(stage)
            for a, (sets, dels) in by_asset.items():
                keys.append(prefix + _escape(a))
                args += (a, len(sets) // 2, len(dels), *sets, *dels)
        reply = self._commit(keys=keys, args=args)
        outcome = reply[0].decode()
        if outcome == "stale":
            raise StaleCheckpoint((expected.seq, expected.generation), (int(reply[1]), int(reply[2])))
        if outcome == "regress":
            topic, _, partition = reply[1].decode().rpartition(":")
            tp = (topic, int(partition))
            raise OffsetRegression(topic, tp[1], int(reply[2]), new.offsets[tp])

    def reset_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        pipe = self._client.pipeline(transaction=True)
        if offsets:
            pipe.hset(self._keys.offsets, mapping={f"{t}:{p}": o for (t, p), o in offsets.items()})
        pipe.hincrby(self._keys.meta, "generation", 1)
        pipe.execute()

    def clear(self) -> None:
        def clear_all(pipe: Any) -> None:
            stages = sorted(s.decode() for s in pipe.smembers(self._keys.stages))
            doomed = [self._keys.stages, self._keys.offsets, self._keys.versions]
            for stage in stages:
                assets_key = self._keys.assets(stage)
                pipe.watch(assets_key)
                prefix = self._keys.state_prefix(stage)
                doomed += [
                    assets_key,
                    *(prefix + _escape(a.decode()) for a in pipe.zrange(assets_key, 0, -1)),
                ]
            pipe.multi()
            pipe.delete(*doomed)
            pipe.hincrby(self._keys.meta, "generation", 1)

        self._client.transaction(clear_all, self._keys.stages)

    def stages(self) -> list[str]:
        return sorted(s.decode() for s in self._client.smembers(self._keys.stages))

    def state_versions(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self._client.hgetall(self._keys.versions).items()}

    def record_state_versions(self, versions: Mapping[str, int]) -> None:
        if versions:
            self._client.hset(self._keys.versions, mapping=dict(versions))

    def close(self) -> None:
        """Nothing to release: the connections belong to the backend, which hands this store out again."""

    def _snapshot(self, stage: str, prefix: str) -> list[tuple[str, dict[bytes, bytes]]]:
        """Every asset of `stage` with its values, as of one moment: the asset list is watched,
        the hashes read in one MULTI, and the whole is read again if a commit added or removed
        an asset meanwhile."""
        assets_key = self._keys.assets(stage)
        assets: list[str] = []

        def read(pipe: Any) -> None:
            assets[:] = [a.decode() for a in pipe.zrange(assets_key, 0, -1)]
            pipe.multi()
            for a in assets:
                pipe.hgetall(prefix + _escape(a))

        values = self._client.transaction(read, assets_key)
        return list(zip(assets, values, strict=True))


def _token() -> str:
    return os.urandom(12).hex()


def _offsets(raw: Mapping[bytes, bytes]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for field, value in raw.items():
        topic, _, partition = field.decode().rpartition(":")
        offsets[(topic, int(partition))] = int(value)
    return offsets


@translate_errors(redis.RedisError, StateUnavailable, "Redis")
class RedisStateBackend:
    """Every pipeline's store on one Redis database, through one connection pool (thread-safe)
    shared by all of them."""

    def __init__(self, url: str, *, retries: int = RETRIES) -> None:
        with _client(url, Retry(NoBackoff(), 0)) as first_contact:
            first_contact.ping()  # a wrong address or password fails at start, at once
        self._client = _client(
            url, Retry(ExponentialWithJitterBackoff(cap=BACKOFF_CAP_S, base=0.05), retries)
        )
        self._lock = threading.Lock()
        self._stores: dict[str, RedisStateStore] = {}

    def store(self, pipeline_id: str) -> RedisStateStore:
        with self._lock:
            if pipeline_id not in self._stores:
                self._stores[pipeline_id] = RedisStateStore(self._client, pipeline_id)
            return self._stores[pipeline_id]

    def volatility(self) -> str | None:
        """Why a commit Redis acknowledged could be lost (no AOF, AOF without fsync on every
        write, or keys evicted under memory pressure), or None if it cannot."""
        try:
            config = self._client.config_get("appendonly")
            config.update(self._client.config_get("appendfsync"))
            config.update(self._client.config_get("maxmemory-policy"))
        except redis.ResponseError as e:  # CONFIG renamed or disabled, as on some managed services
            return f"its persistence settings cannot be read (CONFIG GET: {e})"
        settings = {k.decode() if isinstance(k, bytes) else k: _text(v) for k, v in config.items()}
        if settings.get("appendonly") != "yes":
            return "appendonly is not yes: a commit lives in memory until the next snapshot"
        if settings.get("appendfsync") != "always":
            return f"appendfsync is {settings.get('appendfsync')}, not always: the last commits may be lost"
        if settings.get("maxmemory-policy", "noeviction").startswith("allkeys-"):
            return f"maxmemory-policy is {settings['maxmemory-policy']}: Redis may evict state"
        return None

    def close(self) -> None:
        with self._lock:
            self._stores.clear()
        self._client.close()


def _client(url: str, retry: Retry) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        retry=retry,
        retry_on_error=[redis.ConnectionError],  # a timeout is not retried: the server hangs
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=0,  # its PING would retry inside the retries above
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def open_url(place: str, clock: Clock) -> RedisStateBackend:
    """The backend of a `redis://` or `rediss://` URL (`place` is the whole URL)."""
    return RedisStateBackend(place)


__all__ = ["RedisStateBackend", "RedisStateStore", "open_url"]
