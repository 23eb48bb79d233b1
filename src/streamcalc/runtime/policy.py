"""How a runner cuts micro-batches and paces itself."""

from __future__ import annotations

from dataclasses import dataclass

from streamcalc.runtime.keyed_state import DEFAULT_MAX_CACHED_KEYS


@dataclass(frozen=True)
class RunnerOptions:
    max_batch_records: int = 10_000
    """A batch closes when it holds this many records..."""
    max_wait_s: float = 0.05
    """...or when this long has passed since it started waiting for input."""
    rate_limit: float = 0.0
    """Records per second across all sources (EnOS `kafkaRate`); 0 = unlimited."""
    max_cached_keys: int = DEFAULT_MAX_CACHED_KEYS
    """Per stateful stage; past it the state cache is dropped after a commit."""

    def __post_init__(self) -> None:
        if self.max_batch_records < 1:
            raise ValueError(f"max_batch_records must be >= 1, got {self.max_batch_records}")
        if self.max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {self.max_wait_s}")
        if self.rate_limit < 0:
            raise ValueError(f"rate_limit must be >= 0 (0 = unlimited), got {self.rate_limit}")
        if self.max_cached_keys < 1:
            raise ValueError(f"max_cached_keys must be >= 1, got {self.max_cached_keys}")
