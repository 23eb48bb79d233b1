"""The command line on Redis state: volatile Redis refused by `run` with the reason and the
way out, and no password printed by `serve` or in its refusal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_server import RedisServer

EXAMPLES = Path(__file__).parent.parent / "examples"
PASSWORD = "hunter2-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path / "redis")
    redis.Redis(port=s.port).config_set("requirepass", PASSWORD)
    yield s
    s.stop()


def url(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def streamcalc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamcalc.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_run_refuses_volatile_redis_with_the_reason_and_the_way_out(
    server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=server.port, password=PASSWORD).config_set("appendfsync", "everysec")
    proc = streamcalc(
        "run", str(EXAMPLES / "energy-sum.json"), "--state", url(server), "--data-dir", str(tmp_path)
    )
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "appendfsync is everysec, not always" in out and "--allow-volatile-state" in out
    assert PASSWORD not in out and ":***@127.0.0.1" in out


def test_serve_prints_the_state_url_without_its_password(server: RedisServer, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamcalc.cli", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        env={**os.environ, "STREAMCALC_STATE": url(server), "COLUMNS": "300"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "EnOS Stream Processing API" in banner, banner
        assert f"state redis://:***@127.0.0.1:{server.port}/0" in banner and PASSWORD not in banner
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert PASSWORD not in rest
