"""One benchmark table: every part contributes rows; `python -m bench` prints and writes them."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


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
    """What the value is compared with, e.g. "PyFlink 41,000 records/s" or a target."""
    ratio: str = ""
    """e.g. "5.2x" or "target < 300 ms: met"."""
    enos: str = ""
    """EnOS's published figure for the same operator (2 cores, 4 GB), e.g. "6,500 records/s"."""
    enos_ratio: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def shown(self) -> str:
        """The value with its unit, rounded as a reader wants it."""
        digits = 0 if abs(self.value) >= 100 or float(self.value).is_integer() else 1
        return f"{self.value:,.{digits}f} {self.unit}"


HEADERS = ("workload", "measure", "streamcalc", "compared with", "ratio", "EnOS (2 cores)", "ratio", "note")


def cells(row: Row) -> tuple[str, ...]:
    return (
        row.workload,
        row.measure,
        row.shown,
        row.reference,
        row.ratio,
        row.enos,
        row.enos_ratio,
        row.note,
    )


def markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def publish(rows: Sequence[Row], results: Path, command: str) -> None:
    """Print the table and write it as summary.json and summary.md under `results`."""
    table = Table(*HEADERS, title=f"{command} ({machine()['cpus']} CPUs)", show_lines=True)
    for row in rows:
        table.add_row(*cells(row))
    Console(width=200).print(table)
    results.mkdir(exist_ok=True)
    report = {"command": command, "machine": machine(), "columns": [f.name for f in fields(Row)]}
    report["rows"] = [r.as_dict() for r in rows]
    (results / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    info = report["machine"]
    header = (
        f"`{command}` on {info['cpus']} CPUs, {info['memory_gb']} GB, Python {info['python']}, "
        f"{info['platform']} (load average at the end: {info['load_average'][0]})\n\n"
    )
    (results / "summary.md").write_text(header + markdown(rows))
