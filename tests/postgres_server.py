"""A private PostgreSQL server for tests: Debian's binaries, a fresh cluster on a free loopback
port, password authentication, stopped (fast shutdown) at the end.

PostgreSQL refuses to run as root, and CI runs as root: there the cluster belongs to the
`postgres` user the Debian package creates, in a directory of its own under the system temp
dir (pytest's are private to root), and initdb and postgres run as that user."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from redis_server import free_port

USER = "streamcalc"
PASSWORD = "test-secret-pw"
START_TIMEOUT_S = 60.0
RUN_AS = "postgres"
"""Who owns and runs the cluster when the tests run as root."""


def _bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not dirs:
        raise RuntimeError(
            "PostgreSQL is not installed: `apt-get install postgresql` (.ci/ensure-servers does)"
        )
    return dirs[-1].parent


class PostgresServer:
    """One postgres process on its own cluster; `url(db)` names a database on it."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        self._as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="streamcalc-pg-"))
        self.data = self.directory / "data"
        pwfile = self.directory / "pwfile"
        pwfile.write_text(PASSWORD)
        if self._as_root:
            shutil.chown(self.directory, RUN_AS, RUN_AS)
            shutil.chown(pwfile, RUN_AS, RUN_AS)
        self.port = free_port()
        self._run(
            [str(bin_dir / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        )  # fmt: skip
        self._args = [
            str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
            "-c", "fsync=off",  # a throwaway cluster: durability of the catalog is PostgreSQL's own
            "-c", "max_connections=200",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start (again, on the same port and cluster) and wait until it accepts connections."""
        with (self.directory / "postgres.log").open("ab") as log:
            self.process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT, **self._user())
        self._wait_ready(self.process)

    def stop(self) -> None:
        """Fast shutdown: open connections are closed by the server."""
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def close(self) -> None:
        """Stop, and remove the cluster."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _user(self) -> dict[str, Any]:
        return {"user": RUN_AS, "group": RUN_AS, "extra_groups": []} if self._as_root else {}

    def _run(self, args: list[str]) -> None:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, **self._user())
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {proc.stderr}")

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "postgres.log").read_text(errors="replace")
                    raise RuntimeError(f"postgres did not start:\n{log}") from None
                time.sleep(0.05)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url` (whose user may create databases),
    dropped afterwards; yields its URL."""
    name = f"streamcalc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
