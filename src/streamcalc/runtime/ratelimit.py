"""A token bucket in records per second, on an injected clock."""

from __future__ import annotations

from streamcalc.clock import Clock


class RateLimiter:
    """Grants up to one second's worth of records at once; 0 means unlimited."""

    def __init__(self, records_per_s: float, clock: Clock) -> None:
        self._rate = records_per_s
        self._clock = clock
        self._tokens = records_per_s
        self._last = clock.monotonic()

    def acquire(self, wanted: int) -> int:
        """Block until at least one record may pass; returns how many may (at most `wanted`)."""
        if self._rate <= 0:
            return wanted
        self._refill()
        if self._tokens < 1:
            self._clock.sleep((1 - self._tokens) / self._rate)
            self._refill()
        return max(1, min(wanted, int(self._tokens)))

    def consume(self, count: int) -> None:
        if self._rate > 0:
            self._tokens -= count

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
        self._last = now
