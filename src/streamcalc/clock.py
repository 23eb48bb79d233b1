"""Clocks, injected wherever time matters, so tests control time instead of sleeping.

Wall time stamps data (append time, retention); monotonic time measures waits and
deadlines. Event time never comes from a clock: it comes from records.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall_ms(self) -> int: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (or when something sleeps on it)."""

    def __init__(self, wall_ms: int = 0) -> None:
        self._wall_ms = wall_ms
        self._mono = 0.0

    def wall_ms(self) -> int:
        return self._wall_ms

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall_ms += int(seconds * 1000)


SYSTEM_CLOCK = SystemClock()
