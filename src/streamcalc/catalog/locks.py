"""The pipeline lifecycle locks of the memory and SQLite catalogs (`Catalog.pipeline_lock`;
PostgreSQL's are advisory locks, in `postgresql`), and the name both kinds give a pipeline."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamcalc.catalog.base import PipelineBusy

POLL_MAX_S = 0.1
"""The longest pause between two tries at a file lock (flock has no timed wait)."""


def lock_digest(org_id: str, pipeline_id: str) -> bytes:
    """What names one pipeline's lock: ids of any characters, of any length, name one file or
    one advisory-lock key."""
    return hashlib.sha256(f"{org_id}\0{pipeline_id}".encode()).digest()


def busy(pipeline_id: str, timeout_s: float) -> PipelineBusy:
    return PipelineBusy(
        f"pipeline {pipeline_id} is busy with another lifecycle operation (waited {timeout_s:g} s)"
    )


class ThreadLocks:
    """One lock per pipeline, for a catalog that lives in one process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[bytes, threading.Lock] = {}

    @contextmanager
    def hold(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(lock_digest(org_id, pipeline_id), threading.Lock())
        if not lock.acquire(timeout=max(timeout_s, 0)):
            raise busy(pipeline_id, timeout_s)
        try:
            yield
        finally:
            lock.release()


class FileLocks:
    """flock on one empty file per pipeline in `directory`, for a catalog file that several
    processes open. flock belongs to the open file, not to the process (unlike fcntl's record
    locks), so each hold opens the file anew and two threads of one process contend too; the
    kernel releases it when the file is closed, also by the death of its process. The files
    are kept (an empty file per pipeline ever locked): removing one while another process
    waits on it would let two hold "the" lock."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @contextmanager
    def hold(self, org_id: str, pipeline_id: str, timeout_s: float) -> Iterator[None]:
        self._directory.mkdir(mode=0o700, exist_ok=True)
        path = self._directory / lock_digest(org_id, pipeline_id).hex()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline, pause = time.monotonic() + timeout_s, 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise busy(pipeline_id, timeout_s) from None
                    time.sleep(pause)
                    pause = min(pause * 2, POLL_MAX_S)
            yield
        finally:
            os.close(fd)  # releases the lock
