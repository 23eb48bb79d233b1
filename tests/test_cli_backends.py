"""Choosing backends on the command line: --log / --state / --catalog, then STREAMCALC_LOG /
_STATE / _CATALOG / _DATA_DIR, then the embedded ones under --data-dir; a bad choice is one
line and exit code 2 at start; volatile Redis state refused; no password printed; accounts and
the service on one PostgreSQL catalog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from typer.testing import CliRunner

from redis_server import RedisServer, free_port
from streamcalc.cli import app
from streamcalc.client import StreamcalcClient
from streamcalc.clock import SYSTEM_CLOCK
from streamcalc.log.embedded import open_url as open_log_url

EXAMPLES = Path(__file__).parent.parent / "examples"
RECORDS = EXAMPLES / "records.ndjson"
ORG, APP_KEY, APP_SECRET = "demo", "k-backends", "s-backends"
runner = CliRunner()


def streamcalc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "streamcalc.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def topics_in(log_dir: Path) -> list[str]:
    log_ = open_log_url(str(log_dir), SYSTEM_CLOCK)
    try:
        return sorted(c.name for c in log_.topics())
    finally:
        log_.close()


@contextmanager
def serve(data_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`streamcalc serve` with the test account, until the block ends (Ctrl-C)."""
    port = free_port()
    bootstrap = {
        "STREAMCALC_BOOTSTRAP_ORG_ID": ORG,
        "STREAMCALC_BOOTSTRAP_APP_KEY": APP_KEY,
        "STREAMCALC_BOOTSTRAP_APP_SECRET": APP_SECRET,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamcalc.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *flags,
        ],
        env={**os.environ, **bootstrap, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the service did not start"
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err


def test_serve_opens_the_backends_that_flags_and_variables_name(tmp_path: Path) -> None:
    data, log_dir, state_dir, catalog = (
        tmp_path / "data",
        tmp_path / "flag-log",
        tmp_path / "env-state",
        tmp_path / "cat" / "c.sqlite3",
    )
    env = {
        "STREAMCALC_LOG": f"embedded://{tmp_path / 'env-log'}",  # the flag wins
        "STREAMCALC_STATE": f"lmdb://{state_dir}",
        "STREAMCALC_CATALOG": f"sqlite://{catalog}",
    }
    with (
        serve(data, "--log", f"embedded://{log_dir}", env=env) as url,
        StreamcalcClient(url, ORG, APP_KEY, APP_SECRET) as client,
    ):
        records = [json.loads(line) for line in RECORDS.read_text().splitlines()]
        assert client.produce(f"MEASURE_POINT_INTERNAL_{ORG}", records)["count"] == len(records)

    assert topics_in(log_dir) == [f"MEASURE_POINT_INTERNAL_{ORG}"]
    assert state_dir.is_dir() and catalog.is_file()
    assert not (tmp_path / "env-log").exists()
    assert not any((data / name).exists() for name in ("log", "state", "catalog.sqlite3"))


BAD_CHOICES = [
    (["--log", "pulsar://broker:6650"], {}, "--log 'pulsar://broker:6650': unknown backend 'pulsar'"),
    (
        [],
        {"STREAMCALC_STATE": "cassandra://cache"},
        "--state 'cassandra://cache': unknown backend 'cassandra'",
    ),
    (["--state", "redis://:pw@127.0.0.1:1/0"], {}, "--state redis://:***@127.0.0.1:1/0: cannot open it:"),
    (
        ["--catalog", "memory://somewhere"],
        {},
        "--catalog memory://somewhere: the memory backend takes no place",
    ),
    (["--data-dir", "{tmp}/file"], {}, "--log embedded://{tmp}/file/log: cannot open it:"),
    (["--catalog", "sqlite://{tmp}/file"], {}, "--catalog sqlite://{tmp}/file: cannot open it:"),
    (
        ["--catalog", "postgresql://u:pw@127.0.0.1:1/db"],
        {},
        "--catalog postgresql://u:***@127.0.0.1:1/db: cannot open it: PostgreSQL catalog: connection failed",
    ),
]


@pytest.mark.parametrize(
    ("command", "args", "env", "message"),
    [
        (command, *choice)
        for command in ("serve", "run")
        for choice in BAD_CHOICES
        if command == "serve" or "--catalog" not in choice[0]  # run opens no catalog
    ],
)
def test_a_backend_that_cannot_be_used_is_one_line_and_exit_2_at_start(
    tmp_path: Path, command: str, args: list[str], env: dict[str, str], message: str
) -> None:
    (tmp_path / "file").write_text("not a directory")
    if command == "run":
        args = [str(EXAMPLES / "energy-sum.json"), *args]
    if "--data-dir" not in args:
        args = [*args, "--data-dir", str(tmp_path / "data")]

    proc = streamcalc(command, *(a.format(tmp=tmp_path) for a in args), env=env)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and message.format(tmp=tmp_path) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_run_refuses_backends_its_workers_cannot_reach(tmp_path: Path) -> None:
    proc = streamcalc(
        "run", str(EXAMPLES / "energy-sum.json"), "--state", "memory", "--data-dir", str(tmp_path)
    )

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        "cannot start pipeline energy-sum: --state memory is reachable from this process only" in proc.stderr
    )


def test_log_commands_use_the_log_that_a_flag_or_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flagged, from_env = f"embedded://{tmp_path / 'flagged'}", f"embedded://{tmp_path / 'env'}"
    result = runner.invoke(app, ["log", "create", "T", "--partitions", "2", "--log", flagged])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("STREAMCALC_LOG", from_env)
    result = runner.invoke(app, ["log", "append", "U", str(RECORDS)])
    assert result.exit_code == 0, result.output

    assert topics_in(tmp_path / "flagged") == ["T"] and topics_in(tmp_path / "env") == ["U"]
    result = runner.invoke(app, ["log", "read", "U", "--limit", "1"])
    assert result.exit_code == 0 and json.loads(result.stdout)["message"]["assetId"] == "meter-1"
    result = runner.invoke(app, ["log", "topics", "--log", "nope"])
    assert result.exit_code == 2 and "--log 'nope': unknown backend 'nope'" in result.output


def test_accounts_go_to_the_catalog_a_flag_or_the_data_dir_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = tmp_path / "elsewhere" / "accounts.sqlite3"
    result = runner.invoke(app, ["accounts", "create", "--org-id", ORG, "--catalog", f"sqlite://{catalog}"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("STREAMCALC_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["accounts", "create", "--org-id", ORG])
    assert result.exit_code == 0, result.output

    assert catalog.is_file() and (tmp_path / "data" / "catalog.sqlite3").is_file()


# Redis state: volatile Redis refused by `run` with the reason and the way out, no password printed.

PASSWORD = "hunter2-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path / "redis")
    redis.Redis(port=s.port).config_set("requirepass", PASSWORD)
    yield s
    s.stop()


def url(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


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


# PostgreSQL catalog: the accounts the CLI creates there are those the service signs with.


def test_accounts_and_serve_share_a_postgresql_catalog(tmp_path: Path, postgres_url: str) -> None:
    made = streamcalc("accounts", "create", "--org-id", ORG, "--catalog", postgres_url)
    assert made.returncode == 0, made.stderr
    account = json.loads(made.stdout)
    pipeline = json.loads((EXAMPLES / "energy-sum.json").read_text())

    with (
        serve(tmp_path / "data", "--catalog", postgres_url) as url,
        StreamcalcClient(url, ORG, account["appKey"], account["appSecret"]) as client,
    ):
        pid = client.save_pipeline(None, pipeline, name="in postgres")
        client.release_pipeline(pid)

    with (
        serve(tmp_path / "other", env={"STREAMCALC_CATALOG": postgres_url}) as url,  # another replica
        StreamcalcClient(url, ORG, account["appKey"], account["appSecret"]) as client,
    ):
        assert client.get_pipeline(pid, if_released=True)["status"] == "PUBLISHED"
    assert not any(p.name == "catalog.sqlite3" for p in tmp_path.rglob("*"))
