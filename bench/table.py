"""One benchmark table: every part contributes rows; `python -m bench` prints and writes them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    workload: str
    """e.g. "W1 keyed running sum (1M records, 100k keys)"."""
    measure: str
    """e.g. "records/s", "delete p50", "peak RSS"."""
    value: float
    unit: str
    """e.g. "records/s", "ms", "MB", "B/key"."""
    reference: str = ""
    """What the value is compared with, e.g. "PyFlink 41,000 records/s" or "EnOS 6,500"."""
    ratio: str = ""
    """e.g. "5.2x" or "target < 300 ms: met"."""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
