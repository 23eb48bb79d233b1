"""The garbage-collector settings of streamcalc's long-lived processes (workers, the API).

Their allocations come in batches: a micro-batch allocates 10^4-10^5 short-lived tracked
objects (the window aggregators' output attrs, alive until the batch is encoded), a Get Stage
State answer 100,000 items, all freed by reference counting. CPython's default gen-0
threshold (700) runs the collector hundreds of times while one batch is built, each time
walking what it has built so far: it was a third of the data-path time in `make bench`
(10,000 still a tenth of the sliding aggregator's), and building 100,000 state items took
three times as long as with the threshold below.
"""

from __future__ import annotations

import gc

GC_GEN0_THRESHOLD = 100_000


def tune_gc() -> None:
    """Freeze what start-up allocated (never collected again) and collect young objects only
    every `GC_GEN0_THRESHOLD` allocations."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
