"""bench/pause.py tells a running worker from one that has exited, reaped or not."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.pause import running


def test_running_is_false_once_the_process_exited_even_before_it_is_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert running(proc.pid)
        assert proc.stdin is not None
        proc.stdin.close()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # returns once it exited, unreaped
        assert not running(proc.pid)  # a zombie
    finally:
        proc.wait()
    assert not running(proc.pid)
