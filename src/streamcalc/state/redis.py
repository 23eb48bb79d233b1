"""The Redis StateStore: stage state shared by every machine that reaches one Redis (or Valkey).

Key layout (documented for operators in docs/redis-state.md), one pipeline `P` per hash tag,
so all of a pipeline's keys are in one slot of a Redis Cluster and every script and
transaction below touches one slot:

| key | type | holds |
|---|---|---|
| `streamcalc:{P}:meta` | hash | `generation`, `seq:<worker>`, `token:<worker>`, `lastdelete`, `lastrestore` |
| `streamcalc:{P}:offsets` | hash | `<topic>:<partition>` -> committed source offset |
| `streamcalc:{P}:versions` | hash | stage -> state encoding version |
| `streamcalc:{P}:stages` | set | stages that hold state |
| `streamcalc:{P}:state:<stage>` | hash | `<assetId>:<pointId>` -> the key's state bytes |
| `streamcalc:{P}:kept` | hash | deletion id -> the stage whose values it keeps |
| `streamcalc:{P}:kept:<id>` | hash | the fields a kept delete removed, as they were |

`:` and `%` inside a stage, asset or point id are written `%3A` and `%25`, so a field names
one (asset, point) only. One hash per stage keeps a batch's reads and writes to a few
commands whatever the number of assets (a read of 100,000 keys is one HMGET). A commit is one
Lua script given every key it touches (as Cluster requires): it checks (seq, generation) and
the offsets first and writes only if all hold, so a zombie worker or a stale cache is fenced
and nothing is half-written. Scripts and MULTI/EXEC run whole, so a reader sees all of a
commit or none of it.

Durability is Redis's own: a commit is durable once Redis has it on disk, which with AOF and
`appendfsync always` is before it answers. `volatility()` reads the server's settings so the
runtime can refuse to run pipelines on a Redis that would lose acknowledged commits.

A refused connection is retried with backoff for about `RETRY_BUDGET_S`, then the call fails
with `StateUnavailable`. A commit retried after its reply was lost is recognised by its token
and not applied twice.
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
RETRY_BUDGET_S = 6.0
"""About how long a call keeps retrying a refused connection: 8 jittered backoffs of at most 1 s.
A worker that still fails is restarted by its supervisor, so the pipeline rides out longer
outages too, until its restarts are exhausted (RUN_ERROR)."""
SOCKET_TIMEOUT_S = 5.0
"""How long a server that accepted a connection may stay silent (e.g. stopped with SIGSTOP):
a command is then failed, not retried; a new connection's handshake is, so a hung server fails
a call after at most about RETRIES x SOCKET_TIMEOUT_S."""
CONNECT_TIMEOUT_S = 2.0
_CHUNK = 4000
"""Values per HSET/HDEL inside a script: Lua's unpack() takes a few thousand at a time."""
_FIELDS_PER_COMMAND = 50_000
"""Fields per HMGET or HSET outside a script: more are several commands in one MULTI."""

# KEYS: meta, offsets, stages, then one state hash per stage written.
# ARGV: worker, expected seq, expected generation, new seq, token, n offsets, (field, offset) x n,
#       chunk, n stages, then per stage: its name, n sets, n deletes, (field, value) x sets,
#       field x deletes.
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
local n = tonumber(ARGV[6])
for i = 1, n do
  local committed = tonumber(redis.call('HGET', offsets, ARGV[5 + 2 * i]) or '0')
  if tonumber(ARGV[6 + 2 * i]) < committed then
    return {'regress', ARGV[5 + 2 * i], committed}
  end
end
for i = 1, n do
  redis.call('HSET', offsets, ARGV[5 + 2 * i], ARGV[6 + 2 * i])
end
local a = 7 + 2 * n
local chunk = tonumber(ARGV[a])
local stage_count = tonumber(ARGV[a + 1])
a = a + 2
for s = 1, stage_count do
  local hash, stage, sets, dels = KEYS[3 + s], ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
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
    redis.call('SADD', stages, stage)
  else
    redis.call('SREM', stages, stage)
  end
end
redis.call('HSET', meta, 'seq:' .. worker, ARGV[4], 'token:' .. worker, token)
return {'ok'}
"""

# KEYS: meta, stages, the stage's state hash, the kept index, the kept hash of `keep`.
# ARGV: token, stage, chunk, keep ('' keeps nothing), n points, point x n, asset x m (escaped,
# each once): the cross product is built here, so 100,000 keys are 632 arguments.
# Keeping copies the values: where the request is at least half the hash, by COPY of the
# whole hash (C speed) trimmed afterwards of what was not deleted; otherwise field by field.
_DELETE = """
local meta, stages, hash, index, kept = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, stage, chunk, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local point_count = tonumber(ARGV[5])
local last = redis.call('HGET', meta, 'lastdelete')
if last and string.sub(last, 1, #token + 1) == token .. ':' then
  return tonumber(string.sub(last, #token + 2))
end
local requested = (#ARGV - 5 - point_count) * point_count
local copied = keep ~= '' and redis.call('HLEN', hash) <= 2 * requested
  and redis.call('COPY', hash, kept, 'REPLACE') == 1
local deleted, fields = 0, {}
local function flush()
  if keep ~= '' and not copied then
    local values, held = redis.call('HMGET', hash, unpack(fields)), {}
    for i = 1, #fields do
      if values[i] then
        held[#held + 1] = fields[i]
        held[#held + 1] = values[i]
      end
    end
    for i = 1, #held, chunk do
      redis.call('HSET', kept, unpack(held, i, math.min(i + chunk - 1, #held)))
    end
  end
  deleted = deleted + redis.call('HDEL', hash, unpack(fields))
  fields = {}
end
for a = 6 + point_count, #ARGV do
  local prefix = ARGV[a] .. ':'
  for p = 6, 5 + point_count do
    fields[#fields + 1] = prefix .. ARGV[p]
    if #fields == chunk then flush() end
  end
end
if #fields > 0 then flush() end
if copied then
  if deleted == 0 then
    redis.call('DEL', kept)
  else
    local rest = redis.call('HKEYS', hash)
    for i = 1, #rest, chunk do
      redis.call('HDEL', kept, unpack(rest, i, math.min(i + chunk - 1, #rest)))
    end
  end
end
if redis.call('EXISTS', hash) == 0 then
  redis.call('SREM', stages, stage)
end
if deleted > 0 then
  if keep ~= '' then
    redis.call('HSET', index, keep, stage)
  end
  redis.call('HINCRBY', meta, 'generation', 1)
end
redis.call('HSET', meta, 'lastdelete', token .. ':' .. deleted)
return deleted
"""

# KEYS: meta, stages, the kept index, the kept hash, the state hash of its stage.
# ARGV: token, keep, stage, chunk. Moves the kept fields back and forgets them.
_RESTORE = """
local meta, stages, index, kept, hash = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, keep, stage, chunk = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local last = redis.call('HGET', meta, 'lastrestore')
if last and string.sub(last, 1, #token + 1) == token .. ':' then
  return tonumber(string.sub(last, #token + 2))
end
if redis.call('HGET', index, keep) ~= stage then
  return 0
end
local flat = redis.call('HGETALL', kept)
for i = 1, #flat, chunk do
  redis.call('HSET', hash, unpack(flat, i, math.min(i + chunk - 1, #flat)))
end
local restored = #flat / 2
if restored > 0 then
  redis.call('SADD', stages, stage)
end
redis.call('DEL', kept)
redis.call('HDEL', index, keep)
redis.call('HINCRBY', meta, 'generation', 1)
redis.call('HSET', meta, 'lastrestore', token .. ':' .. restored)
return restored
"""

# KEYS: the stage's state hash. ARGV: the glob of one asset's fields. One asset's rows, atomically.
_SCAN_ASSET = """
local rows, cursor = {}, '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for i = 1, #page[2] do rows[#rows + 1] = page[2][i] end
until cursor == '0'
return rows
"""


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace(":", "%3A")


def _unescape(name: str) -> str:
    return name.replace("%3A", ":").replace("%25", "%")


def _field(asset_id: str, point_id: str) -> str:
    return f"{_escape(asset_id)}:{_escape(point_id)}"


def _glob(text: str) -> str:
    """`text` matched literally by Redis's glob patterns."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _rows(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str, bytes]]:
    """(assetId, pointId, value) of a hash's fields, sorted."""
    rows = []
    for field, value in pairs:
        asset, _, point = field.decode().partition(":")
        rows.append((_unescape(asset), _unescape(point), value))
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


class _Keys:
    """The key names of one pipeline (see the module doc)."""

    def __init__(self, pipeline_id: str) -> None:
        self.root = f"streamcalc:{{{pipeline_id}}}"
        self.meta = f"{self.root}:meta"
        self.offsets = f"{self.root}:offsets"
        self.versions = f"{self.root}:versions"
        self.stages = f"{self.root}:stages"
        self.kept_index = f"{self.root}:kept"

    def state(self, stage: str) -> str:
        return f"{self.root}:state:{_escape(stage)}"

    def kept(self, keep: str) -> str:
        return f"{self.root}:kept:{keep}"


@translate_errors(redis.RedisError, StateUnavailable, "Redis")
class RedisStateStore:
    def __init__(self, client: redis.Redis, pipeline_id: str) -> None:
        self._client: Any = client  # replies are bytes (no decode_responses); redis-py types them bytes | str
        self._keys = _Keys(check_pipeline_id(pipeline_id))
        self._commit = client.register_script(_COMMIT)
        self._delete = client.register_script(_DELETE)
        self._restore = client.register_script(_RESTORE)
        self._scan_asset = client.register_script(_SCAN_ASSET)

    def get_many(self, stage: str, keys: Iterable[StateKey]) -> list[bytes | None]:
        fields = [_field(a, p) for a, p in keys]
        if len(fields) <= _FIELDS_PER_COMMAND:
            return self._client.hmget(self._keys.state(stage), fields) if fields else []
        pipe = self._client.pipeline(transaction=True)
        for i in range(0, len(fields), _FIELDS_PER_COMMAND):
            pipe.hmget(self._keys.state(stage), fields[i : i + _FIELDS_PER_COMMAND])
        return [value for values in pipe.execute() for value in values]

    def scan(self, stage: str, asset_id: str | None = None) -> Iterator[tuple[str, str, bytes]]:
        hash_ = self._keys.state(stage)
        if asset_id is None:
            yield from _rows(self._client.hgetall(hash_).items())
            return
        flat = self._scan_asset(keys=[hash_], args=[_glob(_escape(asset_id)) + ":*"])
        yield from _rows(zip(flat[::2], flat[1::2], strict=True))

    def delete_keys(
        self, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str], keep: str | None = None
    ) -> int:
        points = [_escape(p) for p in set(point_ids)]
        assets = [_escape(a) for a in set(asset_ids)]
        k = self._keys
        keys = [k.meta, k.stages, k.state(stage), k.kept_index, k.kept(keep or "")]
        args: list[str | int] = [_token(), stage, _CHUNK, keep or "", len(points), *points, *assets]
        deleted: int = self._delete(keys=keys, args=args)
        return deleted

    def restore_kept(self, keep: str) -> int:
        stage = self._client.hget(self._keys.kept_index, keep)
        if stage is None:
            return 0
        k, name = self._keys, stage.decode()
        keys = [k.meta, k.stages, k.kept_index, k.kept(keep), k.state(name)]
        restored: int = self._restore(keys=keys, args=[_token(), keep, name, _CHUNK])
        return restored

    def drop_kept(self, keep: str) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.unlink(self._keys.kept(keep))
        pipe.hdel(self._keys.kept_index, keep)
        pipe.execute()

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
        args += (_CHUNK, len(writes))
        for stage, changes in writes.items():
            sets: list[Any] = []
            dels: list[str] = []
            for (a, p), value in changes.items():
                if value is None:
                    dels.append(_field(a, p))
                else:
                    sets += (_field(a, p), value)
            keys.append(self._keys.state(stage))
            args += (stage, len(sets) // 2, len(dels), *sets, *dels)
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
        k = self._keys

        def clear_all(pipe: Any) -> None:
            hashes = [k.state(stage.decode()) for stage in pipe.smembers(k.stages)]
            hashes += [k.kept(keep.decode()) for keep in pipe.hkeys(k.kept_index)]
            pipe.multi()
            pipe.unlink(k.stages, k.offsets, k.versions, k.kept_index, *hashes)
            pipe.hincrby(k.meta, "generation", 1)

        self._client.transaction(clear_all, k.stages, k.kept_index)

    def stages(self) -> list[str]:
        return sorted(stage.decode() for stage in self._client.smembers(self._keys.stages))

    def state_versions(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self._client.hgetall(self._keys.versions).items()}

    def record_state_versions(self, versions: Mapping[str, int]) -> None:
        if versions:
            self._client.hset(self._keys.versions, mapping=dict(versions))

    def close(self) -> None:
        """Nothing to release: the connections belong to the backend, which hands this store out again."""


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
        backoff = ExponentialWithJitterBackoff(cap=BACKOFF_CAP_S, base=0.05)
        self._client = _client(url, Retry(backoff, retries, supported_errors=(redis.ConnectionError,)))
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
