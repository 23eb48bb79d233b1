"""Durations in operator config: the units windows are sized in and the milliseconds of each,
and how late an event-time window may be completed (the aggregators' and the time-window
template's `latencyMinutes`). Time in records is epoch milliseconds.
"""

from __future__ import annotations

from typing import Literal

MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE
MS_PER_DAY = 24 * MS_PER_HOUR

WindowUnit = Literal["second", "minute", "hour", "day"]
UNIT_MS: dict[WindowUnit, int] = {
    "second": MS_PER_SECOND,
    "minute": MS_PER_MINUTE,
    "hour": MS_PER_HOUR,
    "day": MS_PER_DAY,
}

MAX_LATENCY_MINUTES = 60
