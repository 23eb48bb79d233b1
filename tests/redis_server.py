"""Private redis-server instances for tests: each on a free loopback port with a directory of
its own, AOF on and fsynced on every write (what streamcalc requires), killed and restarted
at will, stopped at the end."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; `url(db)` names one of its databases."""

    def __init__(self, directory: Path, *, appendfsync: str = "always", appendonly: str = "yes") -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed: `apt-get install redis-server` (.ci/run does)")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.settings = {"appendonly": appendonly, "appendfsync": appendfsync}
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start (again, on the same port and files: an AOF written before is loaded)."""
        args = [
            REDIS_SERVER or "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", self.settings["appendonly"],
            "--appendfsync", self.settings["appendfsync"],
            "--databases", "64",
            "--protected-mode", "no",
        ]  # fmt: skip
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start: see {self.directory / 'redis.log'}"
                    ) from None
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL: what an acknowledged, fsynced write must survive."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class CuttingProxy:
    """A loopback TCP proxy in front of a server. Once `cut_next(marker)` is armed, the next
    request that contains `marker` reaches the server, and its reply is dropped with the
    connection: a call that was applied but whose answer was lost. `go_down()` drops every
    connection and refuses new ones until `come_back()`: a server that is unreachable, whose
    data survives, with nothing sent to it during the outage arriving late."""

    def __init__(self, target_port: int, port: int = 0) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._down = False
        self._open: list[socket.socket] = []
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_next(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def go_down(self) -> None:
        with self._lock:
            self._down = True
            dropped, self._open = self._open, []
        for s in dropped:
            _shut(s)

    def come_back(self) -> None:
        with self._lock:
            self._down = False

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._down:
                    _shut(client)
                    continue
                server = socket.create_connection(("127.0.0.1", self._target))
                self._open += [client, server]
            cut = threading.Event()
            threading.Thread(target=self._upstream, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, cut), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        while chunk := _recv(client):
            with self._lock:
                if self._marker is not None and self._marker in chunk:
                    self._marker = None
                    self.cuts += 1
                    cut.set()
            if not _send(server, chunk):
                break
        _shut(server)

    def _downstream(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        while chunk := _recv(server):
            if cut.is_set() or not _send(client, chunk):  # a cut: the client never hears the answer
                break
        for s in (client, server):
            _shut(s)


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(1 << 16)
    except OSError:
        return b""


def _send(s: socket.socket, chunk: bytes) -> bool:
    """Whether `chunk` went out (False once the connection was dropped)."""
    try:
        s.sendall(chunk)
    except OSError:
        return False
    return True


def _shut(s: socket.socket) -> None:
    """Shut down, then close: a close alone does not wake the other thread's recv on it."""
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
