"""Worker processes as the supervisor handles them: start one with its output in the
pipeline's log file, and end several against one deadline."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def spawn(command: list[str], output: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `command` with stdout and stderr appended to `output` and no stdin."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


def terminate(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM to all, then wait for all against one deadline: the workers commit and exit side
    by side, so this takes about as long as the slowest of them. A worker past the deadline is
    killed; its uncommitted work is redone by the next worker."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        if not _exited(process, max(0.0, deadline - time.monotonic())):
            log.warning(
                "worker %d did not stop within %.0fs; killing it (uncommitted work is redone)",
                process.pid,
                timeout_s,
            )
            process.kill()
            process.wait()


def _exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait up to `timeout_s` for `process` to exit, and reap it. Woken by the kernel through a
    pidfd: `Popen.wait` polls in sleeps growing to 50 ms, which a pause would wait out."""
    try:
        fd = os.pidfd_open(process.pid)
    except OSError:  # reaped already, or no pidfd on this kernel
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)
    if ready:
        process.wait()
    return bool(ready)
