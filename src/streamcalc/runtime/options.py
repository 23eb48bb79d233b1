"""A runner's options: how it cuts micro-batches, paces itself and decides when to commit."""

from __future__ import annotations

from dataclasses import dataclass

from streamcalc.runtime.keyed_state import DEFAULT_MAX_CACHED_KEYS

MAX_WORKERS = 16
"""Worker processes a pipeline may have; a runner looks this far for batches of workers gone."""


@dataclass(frozen=True)
class RunnerOptions:
    max_batch_records: int = 10_000
    """A batch closes when it holds this many records..."""
    max_wait_s: float = 0.05
    """...or when this long has passed since it started waiting for input."""
    rate_limit: float = 0.0
    """Records per second across all sources and workers (EnOS `kafkaRate`); 0 = unlimited."""
    commit_interval_s: float = 1.0
    """State and offsets commit at most this long after the first uncommitted batch..."""
    commit_max_records: int = 100_000
    """...or once this many records were processed since the last commit..."""
    commit_max_batches: int = 32
    """...or after this many batches. Outputs do not wait for commits: each batch appends its
    own. Fewer commits write each hot key once instead of once per batch; the cost is
    re-running at most this much input after a crash."""
    commit_when_drained: bool = True
    """...or as soon as a batch found no more input: a pipeline that has caught up shows, in
    Get Stage State, every record whose outputs are in the log. Under full load batches are
    full and this adds no commit."""
    max_cached_keys: int = DEFAULT_MAX_CACHED_KEYS
    """Per stateful stage; past it the state cache is dropped after a commit."""
    workers: int = 1
    """Worker processes of the pipeline (EnOS standalone `resourceConfig`, in CUs): worker k
    of n reads the source partitions p with p % n == k and owns the state of their assets.
    Each source topic needs a multiple of n partitions, its records partitioned by asset."""

    def __post_init__(self) -> None:
        for name in (
            "max_batch_records",
            "commit_max_records",
            "commit_max_batches",
            "max_cached_keys",
            "workers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers > MAX_WORKERS:
            raise ValueError(f"workers must be <= {MAX_WORKERS}, got {self.workers}")
        for name in ("max_wait_s", "rate_limit", "commit_interval_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def commit_due(self, elapsed_s: float, records: int, batches: int, drained: bool) -> bool:
        """Whether uncommitted work (`batches` batches, `records` records, the oldest
        `elapsed_s` ago; `drained`: the last poll found no more input) should be committed now."""
        return batches > 0 and (
            elapsed_s >= self.commit_interval_s
            or records >= self.commit_max_records
            or batches >= self.commit_max_batches
            or (drained and self.commit_when_drained)
        )
