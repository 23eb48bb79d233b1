"""The `log` fixture of the Log contract suites: a backend named by the test's parameter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamcalc.backends import Backends
from streamcalc.clock import ManualClock
from streamcalc.log import Log
from streamcalc.log.memory import MemoryLog

GAP = 3
"""Offsets the memory-gapped log leaves unused after each entry."""


@pytest.fixture
def log(request: pytest.FixtureRequest, tmp_path: Path, manual_clock: ManualClock) -> Iterator[Log]:
    """The backend named by the test's parameter, on manual_clock; closed after the test."""
    if request.param == "memory-gapped":
        yield MemoryLog(manual_clock, offset_gap=GAP)
        return
    url = request.getfixturevalue("kafka_url") if request.param == "kafka" else request.param
    backends = Backends.resolve(tmp_path, log=url, clock=manual_clock)
    yield backends.log
    backends.close()
