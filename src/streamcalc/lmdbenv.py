"""One LMDB environment per path per process, shared by reference count.

LMDB forbids opening the same environment twice in one process (locks would be lost on
the first close), yet a test or a service may hold a log and a state store on one data
dir from several places. Every LMDB user goes through `open_env` / `release_env`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import lmdb

from streamcalc.errors import StreamcalcError, translate_errors

_C = TypeVar("_C", bound=type)

DEFAULT_MAP_SIZE_BYTES = 64 << 30  # address space only; the file grows as data is written
_lock = threading.Lock()
_envs: dict[str, tuple[lmdb.Environment, int, int]] = {}  # path -> (env, refcount, pid)


def open_env(path: Path, *, max_dbs: int, map_size: int = DEFAULT_MAP_SIZE_BYTES) -> lmdb.Environment:
    """Open (or share) the environment at `path`, creating the directory if needed."""
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _lock:
        held = _envs.get(key)
        if held is not None and held[2] == os.getpid():
            _envs[key] = (held[0], held[1] + 1, held[2])
            return held[0]
        env = lmdb.open(key, map_size=map_size, max_dbs=max_dbs, max_readers=256, subdir=True)
        _envs[key] = (env, 1, os.getpid())
        return env


def release_env(env: lmdb.Environment) -> None:
    """Drop one reference; the last one closes the environment."""
    key = env.path()
    with _lock:
        held = _envs.get(key)
        if held is None or held[0] is not env:
            env.close()
            return
        if held[1] > 1:
            _envs[key] = (env, held[1] - 1, held[2])
            return
        del _envs[key]
        env.close()  # under the lock: an open of the same path meanwhile would make a second handle


def open_dbs(env: lmdb.Environment, *names: bytes) -> list[lmdb._Database]:
    """Open (creating) named databases in one explicit write transaction. `open_db` without
    one begins its own write transaction still holding the GIL (py-lmdb 3.0), and deadlocks
    with a thread of this process that holds LMDB's write lock and waits for the GIL; `begin`
    releases the GIL while it waits for that lock."""
    with env.begin(write=True) as txn:
        return [env.open_db(name, txn=txn) for name in names]


def translate_lmdb_errors(error: type[StreamcalcError]) -> Callable[[_C], _C]:
    """Class decorator: `lmdb.Error` from a public method is raised as `error` (`translate_errors`)."""
    return translate_errors(lmdb.Error, error, "LMDB")
