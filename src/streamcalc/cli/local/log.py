"""`streamcalc log`: create, append to, read and list the topics of a log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from streamcalc.cli.inputs import read_items
from streamcalc.cli.local.backends import DataDir, LogUrl, open_backends
from streamcalc.cli.output import console, err
from streamcalc.log import InvalidTopic, Log, TopicConfig
from streamcalc.log.records import record_entries
from streamcalc.records import OriginError, Record, decode_record, normalise_origin

app = typer.Typer(no_args_is_help=True, help="Topics of a log (by default the embedded log of a data dir).")


@app.command("append")
def append(
    topic: str,
    source: Annotated[Path, typer.Argument(help="NDJSON or a JSON array; '-' for stdin.")] = Path("-"),
    data_dir: DataDir = None,
    log: LogUrl = None,
    origin: Annotated[bool, typer.Option(help="Messages are in the EnOS origin format.")] = False,
) -> None:
    """Validate records and append them, partitioned by assetId."""
    records: list[Record] = []
    rejected = 0
    for i, item in enumerate(read_items(source)):
        raw = msgspec.json.encode(item)
        try:
            if origin:
                good, bad = normalise_origin(raw)
                records.extend(good)
                for e in bad:
                    err.print(f"message {i}: {e.asset_id}/{e.point_id}: {e.reason}")
                rejected += len(bad)
            else:
                records.append(decode_record(raw))
        except (msgspec.DecodeError, OriginError) as e:
            err.print(f"message {i}: {e}")
            rejected += 1
    with open_backends("log", data_dir=data_dir, log=log) as (_, backends):
        log_ = backends.log
        log_.append(record_entries(log_, topic, log_.ensure_topic(TopicConfig(topic)).partitions, records))
    console.print(f"appended {len(records)} record(s) to {topic}; rejected {rejected}")
    if rejected:
        raise typer.Exit(1)


@app.command("create")
def create_topic(
    topic: str,
    partitions: Annotated[
        int, typer.Option(min=1, help="A pipeline of N workers needs a multiple of N partitions.")
    ] = 1,
    data_dir: DataDir = None,
    log: LogUrl = None,
) -> None:
    """Create a topic with this many partitions; an error if it exists with another count
    (the count of a topic never changes: records are placed by it)."""
    with open_backends("log", data_dir=data_dir, log=log) as (_, backends):
        try:
            existing = backends.log.topic(topic)
            config = existing or backends.log.ensure_topic(TopicConfig(topic, partitions=partitions))
        except InvalidTopic as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
    if config.partitions != partitions:
        err.print(f"[red]topic {topic} exists with {config.partitions} partition(s), not {partitions}[/red]")
        raise typer.Exit(1)
    console.print(f"topic {topic} {'exists' if existing else 'created'} with {partitions} partition(s)")


@app.command("read")
def read(
    topic: str,
    data_dir: DataDir = None,
    log: LogUrl = None,
    partition: int = 0,
    offset: int = 0,
    limit: int = 100,
) -> None:
    """Print messages as NDJSON lines `{"offset": N, "message": {...}}`."""
    with open_backends("log", data_dir=data_dir, log=log) as (_, backends):
        result = backends.log.read(topic, partition, offset, limit)
    for i, message in enumerate(result.messages):
        sys.stdout.write(f'{{"offset": {result.offset_of(i)}, "message": {message.decode()}}}\n')


@app.command("topics")
def topics(data_dir: DataDir = None, log: LogUrl = None) -> None:
    """List topics with their partitions and offsets."""
    with open_backends("log", data_dir=data_dir, log=log) as (_, backends):
        console.print(_topics_table(backends.log))


def _topics_table(log_: Log) -> Table:
    table = Table("topic", "partition", "start offset", "end offset")
    for config in sorted(log_.topics(), key=lambda c: c.name):
        for p in range(config.partitions):
            table.add_row(
                config.name,
                str(p),
                str(log_.start_offset(config.name, p)),
                str(log_.end_offset(config.name, p)),
            )
    return table
