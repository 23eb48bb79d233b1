"""The `streamcalc` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from streamcalc.backends import BackendConfigError, Backends, BackendSettings, BackendUnavailable
from streamcalc.backends.urls import SCHEMES, Part
from streamcalc.cli_api import fail
from streamcalc.cli_api import register as register_api_commands
from streamcalc.ids import check_pipeline_id
from streamcalc.library.edh_kafka import ConsumerConfig
from streamcalc.log import InvalidTopic, Log, TopicConfig
from streamcalc.log.records import record_entries
from streamcalc.pipeline import PipelineError, build_graph, load_pipeline_document
from streamcalc.records import OriginError, Record, decode_record, normalise_origin
from streamcalc.runtime.policy import MAX_WORKERS, RunnerOptions
from streamcalc.runtime.supervisor import BackendsNotShared, Supervisor

app = typer.Typer(no_args_is_help=True, help="Stream processing for IoT measurement points.")
log_app = typer.Typer(
    no_args_is_help=True, help="Topics of a log (by default the embedded log of a data dir)."
)
app.add_typer(log_app, name="log")
accounts_app = typer.Typer(no_args_is_help=True, help="Service accounts (appKey/appSecret) in the catalog.")
app.add_typer(accounts_app, name="accounts")
console = Console()
err = Console(stderr=True)
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where worker specs and logs live, and the file backends by default. "
        "Default $STREAMCALC_DATA_DIR, else .data.",
        show_default=False,
    ),
]


def _backend_option(part: Part) -> Any:
    default = BackendSettings.model_fields[part].default
    return typer.Option(
        f"--{part}",
        metavar="URL",
        show_default=False,
        help=f"The {part} backend: {', '.join(SCHEMES[part])}; a file backend may name its place "
        f"({default}:///abs/path). Default $STREAMCALC_{part.upper()}, else {default} under --data-dir.",
    )


LogUrl = Annotated[str | None, _backend_option("log")]
StateUrl = Annotated[str | None, _backend_option("state")]
CatalogUrl = Annotated[str | None, _backend_option("catalog")]


@contextmanager
def _backends(*parts: Part, **flags: object) -> Iterator[tuple[BackendSettings, Backends]]:
    """The settings of these flags (then the environment) and their backends, `parts` opened
    now and all closed when the block ends. A bad URL, or a backend that cannot be opened, ends
    the command with one line and exit code 2, not a traceback."""
    settings = BackendSettings.from_flags(**flags)
    try:
        backends = settings.backends()
    except BackendConfigError as e:
        fail(str(e), 2)
    try:
        backends.check(*parts)
        yield settings, backends
    except BackendUnavailable as e:
        fail(str(e), 2)
    finally:
        backends.close()


@app.command()
def run(
    pipelines: Annotated[list[Path], typer.Argument(help="Pipeline JSON files; each file's stem is its id.")],
    data_dir: DataDir = None,
    log: LogUrl = None,
    state: StateUrl = None,
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
    """Run pipelines until Ctrl-C; they resume where they paused. No catalog: the files are
    the pipelines."""
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
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with _backends("log", "state", data_dir=data_dir, log=log, state=state) as (settings, backends):
        supervisor = Supervisor(backends, settings.data_dir)
        where = f"--data-dir {settings.data_dir}" + (f" --log {log}" if log else "")
        try:
            for pipeline_id, definition in definitions.items():
                supervisor.start(pipeline_id, definition, options)
                console.print(
                    f"[green]running[/green] {pipeline_id} (reads {', '.join(sources[pipeline_id])})"
                )
            console.print(
                f"data dir {settings.data_dir}; feed it with `streamcalc log append TOPIC FILE {where}`, "
                f"read results with `streamcalc log read TOPIC {where}`. Ctrl-C pauses and exits.",
                markup=False,
            )
            done.wait()
        except (PipelineError, BackendsNotShared) as e:  # a source topic the workers cannot share, say
            fail(str(e), 2)
        except KeyboardInterrupt:
            pass
        finally:
            supervisor.close()
            console.print("paused; state and offsets are kept")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    data_dir: DataDir = None,
    log: LogUrl = None,
    state: StateUrl = None,
    catalog: CatalogUrl = None,
) -> None:
    """Serve the EnOS Stream Processing API v2.x (plus ingest/consume) until Ctrl-C.

    STREAMCALC_BOOTSTRAP_ORG_ID / _APP_KEY / _APP_SECRET, when all set, make sure that org
    and service account exist. Running pipelines pause on exit and resume on the next start.
    """
    import uvicorn  # here, not at the top: the other commands should not pay for the web stack

    from streamcalc.service.app import create_app
    from streamcalc.service.settings import ServiceSettings

    flags = {"data_dir": data_dir, "log": log, "state": state, "catalog": catalog}
    with _backends("log", "state", "catalog", **flags) as (backend_settings, backends):
        settings = ServiceSettings.from_env(backend_settings.data_dir)
        if settings.bootstrap is not None:
            console.print(
                f"org [bold]{settings.bootstrap.org_id}[/bold] with appKey "
                f"[bold]{settings.bootstrap.app_key}[/bold] (secret from STREAMCALC_BOOTSTRAP_APP_SECRET)"
            )
        urls = backends.urls
        console.print(
            f"EnOS Stream Processing API on http://{host}:{port} (OpenAPI at /docs); data dir "
            f"{settings.data_dir}; log {urls.log}, state {urls.state}, catalog {urls.catalog}",
            markup=False,
        )
        uvicorn.run(create_app(settings, backends), host=host, port=port, log_level="info")


@log_app.command("append")
def append(
    topic: str,
    source: Annotated[Path, typer.Argument(help="NDJSON or a JSON array; '-' for stdin.")] = Path("-"),
    data_dir: DataDir = None,
    log: LogUrl = None,
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
    with _backends("log", data_dir=data_dir, log=log) as (_, backends):
        log_ = backends.log
        log_.append(record_entries(log_, topic, log_.ensure_topic(TopicConfig(topic)).partitions, records))
    console.print(f"appended {len(records)} record(s) to {topic}; rejected {rejected}")
    if rejected:
        raise typer.Exit(1)


@log_app.command("create")
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
    with _backends("log", data_dir=data_dir, log=log) as (_, backends):
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


@log_app.command("read")
def read(
    topic: str,
    data_dir: DataDir = None,
    log: LogUrl = None,
    partition: int = 0,
    offset: int = 0,
    limit: int = 100,
) -> None:
    """Print messages as NDJSON lines `{"offset": N, "message": {...}}`."""
    with _backends("log", data_dir=data_dir, log=log) as (_, backends):
        result = backends.log.read(topic, partition, offset, limit)
    for i, message in enumerate(result.messages):
        sys.stdout.write(f'{{"offset": {result.offset_of(i)}, "message": {message.decode()}}}\n')


@log_app.command("topics")
def topics(data_dir: DataDir = None, log: LogUrl = None) -> None:
    """List topics with their partitions and offsets."""
    with _backends("log", data_dir=data_dir, log=log) as (_, backends):
        console.print(_topics_table(backends.log))


@accounts_app.command("create")
def create_account(
    org_id: Annotated[str, typer.Option("--org-id", help="The org (OU) the account acts for.")],
    data_dir: DataDir = None,
    catalog: CatalogUrl = None,
) -> None:
    """Create a service account; prints {"orgId", "appKey", "appSecret"} as one JSON object."""
    with _backends("catalog", data_dir=data_dir, catalog=catalog) as (_, backends):
        try:
            account = backends.catalog.create_account(org_id)
        except ValueError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
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
