"""The `streamcalc` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from streamcalc.catalog.sqlite import open_catalog
from streamcalc.cli_api import register as register_api_commands
from streamcalc.ids import check_pipeline_id
from streamcalc.library.io import ConsumerConfig
from streamcalc.log import InvalidTopic, Log, TopicConfig
from streamcalc.log.embedded import open_log
from streamcalc.log.records import record_entries
from streamcalc.pipeline import PipelineError, build_graph, load_pipeline_document
from streamcalc.records import OriginError, Record, decode_record, normalise_origin
from streamcalc.runtime.policy import MAX_WORKERS, RunnerOptions
from streamcalc.runtime.supervisor import Supervisor

app = typer.Typer(no_args_is_help=True, help="Stream processing for IoT measurement points.")
log_app = typer.Typer(no_args_is_help=True, help="Topics of the embedded log of a data dir.")
app.add_typer(log_app, name="log")
accounts_app = typer.Typer(no_args_is_help=True, help="Service accounts (appKey/appSecret) of a data dir.")
app.add_typer(accounts_app, name="accounts")
console = Console()
err = Console(stderr=True)
DataDir = Annotated[Path, typer.Option("--data-dir", help="Where logs, state and specs live.")]


@app.command()
def run(
    pipelines: Annotated[list[Path], typer.Argument(help="Pipeline JSON files; each file's stem is its id.")],
    data_dir: DataDir = Path(".data"),
    max_batch_records: int = 10_000,
    rate_limit: Annotated[float, typer.Option(help="Records/s per pipeline; 0 = unlimited.")] = 0.0,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_WORKERS,
            help="Worker processes per pipeline. A source topic needs a multiple of this many "
            "partitions; a missing one is created with this many.",
        ),
    ] = 1,
) -> None:
    """Run pipelines on the embedded log and state until Ctrl-C; they resume where they paused."""
    options = RunnerOptions(max_batch_records=max_batch_records, rate_limit=rate_limit, workers=workers)
    definitions: dict[str, dict[str, Any]] = {}
    sources: dict[str, list[str]] = {}
    for path in pipelines:
        try:
            definition = load_pipeline_document(_load_json(path)).model_dump(exclude_unset=True)
            graph = build_graph(definition)
            check_pipeline_id(path.stem)
        except (PipelineError, ValueError) as e:
            err.print(f"[red]{path}: {e}[/red]")
            raise typer.Exit(2) from e
        definitions[path.stem] = definition
        sources[path.stem] = [n.config.topic for n in graph.sources if isinstance(n.config, ConsumerConfig)]
    supervisor = Supervisor(data_dir)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        for pipeline_id, definition in definitions.items():
            supervisor.start(pipeline_id, definition, options)
            console.print(f"[green]running[/green] {pipeline_id} (reads {', '.join(sources[pipeline_id])})")
        console.print(
            f"data dir {data_dir}; feed it with `streamcalc log append TOPIC FILE --data-dir {data_dir}`, "
            f"read results with `streamcalc log read TOPIC --data-dir {data_dir}`. Ctrl-C pauses and exits."
        )
        done.wait()
    except PipelineError as e:  # a source topic the workers cannot share
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.close()
        console.print("paused; state and offsets are kept")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    data_dir: DataDir = Path(".data"),
) -> None:
    """Serve the EnOS Stream Processing API v2.x (plus ingest/consume) until Ctrl-C.

    STREAMCALC_BOOTSTRAP_ORG_ID / _APP_KEY / _APP_SECRET, when all set, make sure that org
    and service account exist. Running pipelines pause on exit and resume on the next start.
    """
    import uvicorn  # here, not at the top: the other commands should not pay for the web stack

    from streamcalc.service.app import create_app
    from streamcalc.service.settings import ServiceSettings

    settings = ServiceSettings.from_env(data_dir)
    if settings.bootstrap is not None:
        console.print(
            f"org [bold]{settings.bootstrap.org_id}[/bold] with appKey "
            f"[bold]{settings.bootstrap.app_key}[/bold] (secret from STREAMCALC_BOOTSTRAP_APP_SECRET)"
        )
    console.print(
        f"EnOS Stream Processing API on http://{host}:{port} (OpenAPI at /docs); data dir {data_dir}"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@log_app.command("append")
def append(
    topic: str,
    source: Annotated[Path, typer.Argument(help="NDJSON or a JSON array; '-' for stdin.")] = Path("-"),
    data_dir: DataDir = Path(".data"),
    origin: Annotated[bool, typer.Option(help="Messages are in the EnOS origin format.")] = False,
) -> None:
    """Validate records and append them, partitioned by assetId."""
    text = sys.stdin.read() if str(source) == "-" else source.read_text()
    items = _parse_items(text)
    records: list[Record] = []
    rejected = 0
    for i, item in enumerate(items):
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
    log_ = open_log(data_dir)
    try:
        log_.append(record_entries(log_, topic, log_.ensure_topic(TopicConfig(topic)).partitions, records))
    finally:
        log_.close()
    console.print(f"appended {len(records)} record(s) to {topic}; rejected {rejected}")
    if rejected:
        raise typer.Exit(1)


@log_app.command("create")
def create_topic(
    topic: str,
    partitions: Annotated[
        int, typer.Option(min=1, help="A pipeline of N workers needs a multiple of N partitions.")
    ] = 1,
    data_dir: DataDir = Path(".data"),
) -> None:
    """Create a topic with this many partitions; an error if it exists with another count
    (the count of a topic never changes: records are placed by it)."""
    log_ = open_log(data_dir)
    try:
        existing = log_.topic(topic)
        config = existing or log_.ensure_topic(TopicConfig(topic, partitions=partitions))
    except InvalidTopic as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    finally:
        log_.close()
    if config.partitions != partitions:
        err.print(f"[red]topic {topic} exists with {config.partitions} partition(s), not {partitions}[/red]")
        raise typer.Exit(1)
    console.print(f"topic {topic} {'exists' if existing else 'created'} with {partitions} partition(s)")


@log_app.command("read")
def read(
    topic: str,
    data_dir: DataDir = Path(".data"),
    partition: int = 0,
    offset: int = 0,
    limit: int = 100,
) -> None:
    """Print messages as NDJSON lines `{"offset": N, "message": {...}}`."""
    log_ = open_log(data_dir)
    try:
        result = log_.read(topic, partition, offset, limit)
    finally:
        log_.close()
    for i, message in enumerate(result.messages):
        sys.stdout.write(f'{{"offset": {result.offset_of(i)}, "message": {message.decode()}}}\n')


@log_app.command("topics")
def topics(data_dir: DataDir = Path(".data")) -> None:
    """List topics with their partitions and offsets."""
    log_ = open_log(data_dir)
    try:
        console.print(_topics_table(log_))
    finally:
        log_.close()


@accounts_app.command("create")
def create_account(
    org_id: Annotated[str, typer.Option("--org-id", help="The org (OU) the account acts for.")],
    data_dir: DataDir = Path(".data"),
) -> None:
    """Create a service account; prints {"orgId", "appKey", "appSecret"} as one JSON object."""
    catalog = open_catalog(data_dir)
    try:
        account = catalog.create_account(org_id)
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    finally:
        catalog.close()
    doc = {"orgId": account.org_id, "appKey": account.app_key, "appSecret": account.app_secret}
    sys.stdout.write(json.dumps(doc) + "\n")


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


def _load_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        err.print(f"[red]{path}: {e}[/red]")
        raise typer.Exit(2) from e
    if not isinstance(doc, dict):
        err.print(f"[red]{path}: a pipeline is a JSON object[/red]")
        raise typer.Exit(2)
    return doc


def _parse_items(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        items = json.loads(stripped)
        return items if isinstance(items, list) else [items]
    return [json.loads(line) for line in stripped.splitlines() if line.strip()]


register_api_commands(app)  # pipeline, state, produce, consume: a running service over HTTP

if __name__ == "__main__":
    app()
