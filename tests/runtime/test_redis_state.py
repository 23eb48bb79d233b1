"""Supervised pipelines on Redis state when redis-server itself fails: SIGKILLed at random
moments beside the worker, or gone for good (RUN_ERROR in bounded time, then an exact result
once it is back), and volatile settings refused before any worker starts. The crash matrix of
a worker on Redis state is in test_crash.py."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from runtime_support import (
    IN,
    RunResult,
    committed_offset,
    fill,
    generate_messages,
    snapshot,
    sum_pipeline,
    supervising,
    wait_until,
)

from redis_server import RedisServer
from streamcalc.backends import VolatileState
from streamcalc.log.embedded import open_log
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import WorkerStatus

Reference = Callable[[list[bytes], dict[str, object]], RunResult]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path / "redis")
    yield s
    s.stop()


def filled(data: Path, messages: list[bytes]) -> None:
    log_ = open_log(data)
    fill(log_, IN, messages)
    log_.close()


def crash_input(tmp_path: Path, reference: Reference, n: int, keys: int, seed: int) -> tuple[Path, RunResult]:
    """A data dir whose input is `n` generated records, and the result of an uninterrupted run."""
    messages = generate_messages(n, keys=keys, seed=seed)
    expected = reference(messages, sum_pipeline())
    data = tmp_path / "crashed"
    filled(data, messages)
    return data, expected


@pytest.mark.slow
def test_random_sigkills_of_the_worker_and_of_redis_server(
    tmp_path: Path, reference: Reference, server: RedisServer
) -> None:
    n = 60_000
    data, expected = crash_input(tmp_path, reference, n, 1_000, 13)
    rng = random.Random(3)
    kills = {"worker": 0, "redis": 0}
    with supervising(
        data, server.url(), backoff_initial_s=0.01, backoff_max_s=0.2, max_failures=1_000, stable_after_s=0.5
    ) as supervisor:
        supervisor.start(
            "p1", sum_pipeline(), RunnerOptions(max_batch_records=700, max_wait_s=0.005, rate_limit=8_000)
        )

        def progress() -> int:
            try:
                return committed_offset(data, "p1")
            except Exception:  # redis-server is down at this moment
                return -1

        while progress() < n and sum(kills.values()) < 16:
            time.sleep(rng.uniform(0.3, 0.8))  # kills at random moments of the run: what is tested
            if rng.random() < 0.5:
                server.kill()
                kills["redis"] += 1
                time.sleep(rng.uniform(0.0, 0.5))  # down for a while, as a crashed server is
                server.start()
            else:
                info = supervisor.info("p1")
                if info is not None and info.pid is not None:
                    os.kill(info.pid, signal.SIGKILL)
                    kills["worker"] += 1
        wait_until(lambda: progress() == n, timeout_s=120, what="catching up")
        supervisor.pause("p1")
    assert kills["worker"] >= 3 and kills["redis"] >= 3, kills
    assert snapshot(data, "p1") == expected


def test_redis_gone_for_good_is_run_error_in_bounded_time_and_exact_once_it_is_back(
    tmp_path: Path, reference: Reference, server: RedisServer
) -> None:
    n = 20_000
    data, expected = crash_input(tmp_path, reference, n, 300, 17)
    options = RunnerOptions(max_batch_records=500, max_wait_s=0.005, rate_limit=5_000)
    with supervising(
        data, server.url(), backoff_initial_s=0.05, backoff_max_s=0.5, max_failures=3
    ) as supervisor:
        supervisor.start("p1", sum_pipeline(), options)
        wait_until(lambda: committed_offset(data, "p1") > 2_000, what="progress")
        server.kill()
        gone = time.monotonic()
        wait_until(
            lambda: getattr(supervisor.info("p1"), "status", None) == WorkerStatus.RUN_ERROR,
            timeout_s=120,
            what="RUN_ERROR",
        )
        print(f"RUN_ERROR {time.monotonic() - gone:.1f} s after redis-server died")  # reported, not asserted
        server.start()
        supervisor.start("p1", sum_pipeline(), options)
        wait_until(lambda: committed_offset(data, "p1") == n, what="catching up")
        supervisor.pause("p1")
    assert snapshot(data, "p1") == expected


def test_volatile_redis_is_refused_before_any_worker_starts(tmp_path: Path, server: RedisServer) -> None:
    redis.Redis(port=server.port).config_set("appendfsync", "everysec")
    filled(tmp_path, generate_messages(10, keys=2))
    with supervising(tmp_path, server.url()) as supervisor:
        with pytest.raises(VolatileState, match="appendfsync is everysec"):
            supervisor.start("p1", sum_pipeline(), RunnerOptions())
        assert supervisor.info("p1") is None
    assert not (tmp_path / "pipelines" / "p1.json").exists()
