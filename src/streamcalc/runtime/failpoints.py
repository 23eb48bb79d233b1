"""Crash injection for the crash tests: SIGKILL this process at a named point of a batch.

`STREAMCALC_FAILPOINT=after_append:7` kills the worker right after the 7th batch it handles
appended its outputs and before it commits state. It is a real kill -9, so the tests see
exactly what a machine or OOM kill would leave behind. Unset in production: one dict lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("before_append", "after_append", "after_commit")
_spec = os.environ.get("STREAMCALC_FAILPOINT", "")
_point, _, _count = _spec.partition(":")
if _spec and (_point not in POINTS or not _count.isdigit()):
    raise ValueError(f"STREAMCALC_FAILPOINT must be <{'|'.join(POINTS)}>:<batch number>, got {_spec!r}")
_armed = {_point: int(_count)} if _spec else {}


def reached(point: str, batch_number: int) -> None:
    if _armed.get(point) == batch_number:
        os.kill(os.getpid(), signal.SIGKILL)
