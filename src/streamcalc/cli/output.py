"""Where the commands write: machine output (ids, NDJSON, JSON) goes to stdout as plain text,
tables and progress to `console`, messages to `err`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    """`message` in red on stderr, then exit with `code` (2 for bad input, 1 for a failed call)."""
    err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def timestamp(ms: Any) -> str:
    """An API time (epoch ms) as the tables show it; blank when the answer has none."""
    if not isinstance(ms, int):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
