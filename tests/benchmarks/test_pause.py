"""bench/pause.py tells a running worker from one that has exited, reaped or not."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.pause import running


def test_running_is_false_once_the_process_exited_even_before_it_is_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert running(proc.pid)
        assert proc.stdin is not None
        proc.stdin.close()
        deadline = time.monotonic() + 10
        while running(proc.pid):  # a zombie until reaped below
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.wait()
    assert not running(proc.pid)
