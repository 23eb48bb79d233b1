"""`streamcalc produce` and `consume`: records into and out of a topic of a running service."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import Progress

from streamcalc.cli.inputs import read_items
from streamcalc.cli.option_groups import option_groups
from streamcalc.cli.output import console, err
from streamcalc.cli.remote.connection import Connection
from streamcalc.client import EnosError

FOLLOW_INTERVAL_S = 1.0
"""How long `consume --follow` waits before asking again after an empty page."""


@option_groups
def produce(
    topic: str,
    source: Annotated[Path, typer.Argument(help="NDJSON or a JSON array; '-' for stdin.")] = Path("-"),
    batch: Annotated[int, typer.Option(min=1, help="Records per request.")] = 5000,
    *,
    connection: Connection,
) -> None:
    """Send records (internal or origin format) to a topic; exits 1 if any were rejected."""
    items = read_items(source)
    count, rejected = 0, list[tuple[int, str]]()
    with connection.client() as client, Progress(console=err) as progress:
        task = progress.add_task(f"producing to {topic}", total=len(items))
        for first in range(0, len(items), batch):
            chunk = items[first : first + batch]
            try:
                result = client.produce(topic, chunk)
            except (EnosError, httpx.HTTPError):
                err.print(f"{count} record(s) were accepted before this request failed")
                raise
            count += result["count"]
            rejected += [(first + r["index"], r["reason"]) for r in result["rejected"]]
            progress.advance(task, len(chunk))
    for index, reason in rejected:
        err.print(f"message {index}: {reason}", highlight=False, markup=False)
    console.print(f"produced {count} record(s) to {topic}; rejected {len(rejected)}", highlight=False)
    if rejected:
        raise typer.Exit(1)


@option_groups
def consume(
    topic: str,
    offset: Annotated[int, typer.Option(min=0, help="The first offset to read.")] = 0,
    limit: Annotated[int, typer.Option(min=1, help="Records per request.")] = 100,
    partition: Annotated[int, typer.Option(min=0)] = 0,
    follow: Annotated[bool, typer.Option("--follow", help="Keep reading until Ctrl-C.")] = False,
    *,
    connection: Connection,
) -> None:
    """Print records as NDJSON lines `{"offset": N, "record": {...}}`."""
    with connection.client() as client:
        try:
            while True:
                data = client.consume(topic, offset=offset, limit=limit, partition=partition)
                for r in data["records"]:
                    sys.stdout.write(json.dumps({"offset": r["offset"], "record": r["record"]}) + "\n")
                sys.stdout.flush()
                offset = data["nextOffset"]
                if not follow:
                    break
                if not data["records"]:
                    _wait(FOLLOW_INTERVAL_S)
        except KeyboardInterrupt:
            pass
    err.print(f"next offset {offset}", highlight=False)


def _wait(seconds: float) -> None:
    """Between polls of `consume --follow`; a seam for tests."""
    time.sleep(seconds)
