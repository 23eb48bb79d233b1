"""CLI commands that drive a running service through the SDK: `pipeline`, `state`, `produce`, `consume`.

Everything goes over HTTP with `StreamcalcClient`; nothing here imports the service. Machine
output (ids, NDJSON, `--json`) goes to stdout as plain text, tables and progress to the consoles.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.json import JSON
from rich.progress import Progress
from rich.table import Table

from streamcalc.client import EnosError, StreamcalcClient

DEFAULT_URL = "http://127.0.0.1:8080"
FOLLOW_INTERVAL_S = 1.0
"""How long `consume --follow` waits before asking again after an empty page."""

pipeline_app = typer.Typer(no_args_is_help=True, help="Pipelines of a running service (EnOS API).")
state_app = typer.Typer(no_args_is_help=True, help="Stage state of a pipeline on a running service.")
console = Console()
err = Console(stderr=True)

Url = Annotated[str, typer.Option("--url", envvar="STREAMCALC_URL", help="Base URL of the service.")]
OrgId = Annotated[str | None, typer.Option("--org-id", envvar="STREAMCALC_ORG_ID", help="Org (OU) id.")]
AppKey = Annotated[
    str | None, typer.Option("--app-key", envvar="STREAMCALC_APP_KEY", help="Service account.")
]
AppSecret = Annotated[
    str | None,
    typer.Option("--app-secret", envvar="STREAMCALC_APP_SECRET", help="Its secret; prefer the env var."),
]
PipelineId = Annotated[str, typer.Argument(help="The pipeline id.")]
Stage = Annotated[
    str, typer.Argument(help="The stage instance name, e.g. SimplifiedTimeWindowAggregator_01.")
]
Ids = Annotated[str | None, typer.Option(help="Comma-separated ids.")]
IdsFile = Annotated[
    Path | None, typer.Option(help="A file with one id per line.", exists=True, dir_okay=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    """Add the API commands to the `streamcalc` app."""
    app.add_typer(pipeline_app, name="pipeline")
    app.add_typer(state_app, name="state")
    app.command()(produce)
    app.command()(consume)


@contextmanager
def connect(
    url: str, org_id: str | None, app_key: str | None, app_secret: str | None
) -> Iterator[StreamcalcClient]:
    """A client for the block; API and connection errors become a message on stderr and exit 1."""
    if not (org_id and app_key and app_secret):
        given = {"org-id": org_id, "app-key": app_key, "app-secret": app_secret}
        missing = [f"--{n} (or STREAMCALC_{n.upper().replace('-', '_')})" for n, v in given.items() if not v]
        fail(f"missing {', '.join(missing)}", 2)
    try:
        with StreamcalcClient(url, org_id, app_key, app_secret) as client:
            yield client
    except EnosError as e:
        fail(f"{e.code}: {e.msg}", 1)
    except httpx.ConnectError as e:
        fail(f"cannot connect to {url}: is the service running at {url}? ({e})", 1)
    except httpx.HTTPError as e:
        fail(f"{url}: {e}", 1)
    except json.JSONDecodeError:
        fail(f"{url} did not answer with an API envelope: is it a streamcalc service?", 1)


def fail(message: str, code: int) -> NoReturn:
    """`message` in red on stderr, then exit with `code` (2 for bad input, 1 for a failed call)."""
    err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# pipelines


@pipeline_app.command("save")
def save(
    pipeline_id: Annotated[str | None, typer.Argument(help="Update this pipeline; none creates one.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Pipeline JSON; '-' for stdin.")] = None,
    name: Annotated[str | None, typer.Option(help="The pipeline name.")] = None,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """Create a pipeline (no id) or update its design version; prints the pipeline id."""
    if pipeline_id is None and file is None:
        fail("a new pipeline needs --file", 2)
    definition = None if file is None else _load_object(file)
    with connect(url, org_id, app_key, app_secret) as client:
        typer.echo(client.save_pipeline(pipeline_id, definition, name=name))


def _lifecycle_command(
    action: str, verb: str, done: str, doc: str, call: Callable[[StreamcalcClient, str], None]
) -> None:
    """Register `pipeline ACTION PIPELINE_ID`, one call with a spinner while it runs."""

    def command(
        pipeline_id: PipelineId,
        url: Url = DEFAULT_URL,
        org_id: OrgId = None,
        app_key: AppKey = None,
        app_secret: AppSecret = None,
    ) -> None:
        with connect(url, org_id, app_key, app_secret) as client, err.status(f"{verb} {pipeline_id}"):
            call(client, pipeline_id)
        console.print(f"{done} {pipeline_id}")

    command.__doc__ = doc
    pipeline_app.command(action)(command)


_lifecycle_command(
    "release",
    "releasing",
    "released",
    "Release the design version; `start` runs the released one.",
    StreamcalcClient.release_pipeline,
)
_lifecycle_command(
    "pause",
    "pausing",
    "paused",
    "Pause: state and offsets are kept, and stage state may be deleted.",
    StreamcalcClient.pause_pipeline,
)
_lifecycle_command(
    "stop",
    "stopping",
    "stopped",
    "Stop: state and offsets are cleared; the next start reads from the beginning.",
    StreamcalcClient.stop_pipeline,
)


@pipeline_app.command("start")
def start(
    pipeline_id: PipelineId,
    kafka_rate: Annotated[int | None, typer.Option(help="Records/s the pipeline may read.")] = None,
    resource_config: Annotated[
        int | None, typer.Option(help="CUs: worker processes, each reading its share of the partitions.")
    ] = None,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """Start the released version, or resume a paused pipeline where it paused."""
    with connect(url, org_id, app_key, app_secret) as client, err.status(f"starting {pipeline_id}"):
        client.start_pipeline(pipeline_id, kafka_rate=kafka_rate, resource_config=resource_config)
    console.print(f"started {pipeline_id}")


@pipeline_app.command("list")
def list_(
    released: Annotated[
        bool,
        typer.Option("--released", help="Released pipelines; without it, the drafts (one or the other)."),
    ] = False,
    page_size: Annotated[int, typer.Option(min=1)] = 10,
    page_no: Annotated[int, typer.Option(min=1)] = 1,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """One page of the org's pipelines: drafts, or with --released the released ones."""
    with connect(url, org_id, app_key, app_secret) as client:
        data = client.list_pipelines(page_size=page_size, page_no=page_no, if_released=released)
    table = Table("id", "name", "status", "updated", caption=f"page {page_no}; {data['count']} in all")
    table.columns[0].no_wrap = True
    for p in data["pipelines"]:
        table.add_row(p["pipelineId"], p.get("pipelineName") or "", p["status"], _time(p.get("updateTime")))
    console.print(table)


@pipeline_app.command("show")
def show(
    pipeline_id: PipelineId,
    released: Annotated[bool, typer.Option("--released", help="The released version.")] = False,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """A pipeline's details and its pipelineJson (the design version unless --released)."""
    with connect(url, org_id, app_key, app_secret) as client:
        data = client.get_pipeline(pipeline_id, if_released=released)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        if key != "pipelineJson":
            table.add_row(key, _time(value) if key == "updateTime" else _text(value))
    console.print(table)
    console.print(JSON.from_data(data.get("pipelineJson")))


@pipeline_app.command("lag")
def lag(
    pipeline_id: PipelineId,
    last: Annotated[int, typer.Option(min=1, help="How many of the latest samples.")] = 10,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """The latest offset/lag samples of a running pipeline's source topic."""
    with connect(url, org_id, app_key, app_secret) as client:
        data = client.offset_lag(pipeline_id)
    console.print(f"source topic {data['topicName']} of {pipeline_id}", highlight=False)
    table = Table("time", "offset", "lag")
    for sample in data["lagAndOffset"][-last:]:
        table.add_row(_time(sample["ts"]), str(sample["offset"]), str(sample["lag"]))
    console.print(table)


# stage state


@state_app.command("get")
def state_get(
    pipeline_id: PipelineId,
    stage: Stage,
    assets: Ids = None,
    points: Ids = None,
    assets_file: IdsFile = None,
    points_file: IdsFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the items as NDJSON.")] = False,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """The state of every (asset, point) that has some; keys without state are left out."""
    asset_ids, point_ids = _ids(assets, assets_file, "assets"), _ids(points, points_file, "points")
    keys = len(asset_ids) * len(point_ids)
    with connect(url, org_id, app_key, app_secret) as client, err.status(f"getting {keys} key(s)"):
        items = client.get_stage_state(pipeline_id, stage, asset_ids, point_ids)
    if as_json:
        for item in items:
            typer.echo(json.dumps(item))
        return
    table = Table("assetId", "pointId", "state", caption=f"{len(items)} of {keys} key(s) have state")
    for item in items:
        rest = {k: v for k, v in item.items() if k not in ("assetId", "pointId")}
        table.add_row(item["assetId"], item["pointId"], json.dumps(rest))
    console.print(table)


@state_app.command("delete")
def state_delete(
    pipeline_id: PipelineId,
    stage: Stage,
    assets: Ids = None,
    points: Ids = None,
    assets_file: IdsFile = None,
    points_file: IdsFile = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """Delete the state of every (asset, point) atomically; the pipeline must be PAUSED."""
    asset_ids, point_ids = _ids(assets, assets_file, "assets"), _ids(points, points_file, "points")
    keys = len(asset_ids) * len(point_ids)
    what = f"{len(asset_ids)} asset(s) x {len(point_ids)} point(s) = {keys} key(s)"
    err.print(f"{stage} of {pipeline_id}: {what}", highlight=False)
    if not yes:
        typer.confirm("Delete their state?", abort=True, err=True)
    with connect(url, org_id, app_key, app_secret) as client, err.status(f"deleting {keys} key(s)"):
        deleted = client.delete_stage_state(pipeline_id, stage, asset_ids, point_ids)
    typer.echo(f"deleted: {json.dumps(deleted)}")


# topics


def produce(
    topic: str,
    source: Annotated[Path, typer.Argument(help="NDJSON or a JSON array; '-' for stdin.")] = Path("-"),
    batch: Annotated[int, typer.Option(min=1, help="Records per request.")] = 5000,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """Send records (internal or origin format) to a topic; exits 1 if any were rejected."""
    items = _load_items(source)
    count, rejected = 0, list[tuple[int, str]]()
    with connect(url, org_id, app_key, app_secret) as client, Progress(console=err) as progress:
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


def consume(
    topic: str,
    offset: Annotated[int, typer.Option(min=0, help="The first offset to read.")] = 0,
    limit: Annotated[int, typer.Option(min=1, help="Records per request.")] = 100,
    partition: Annotated[int, typer.Option(min=0)] = 0,
    follow: Annotated[bool, typer.Option("--follow", help="Keep reading until Ctrl-C.")] = False,
    url: Url = DEFAULT_URL,
    org_id: OrgId = None,
    app_key: AppKey = None,
    app_secret: AppSecret = None,
) -> None:
    """Print records as NDJSON lines `{"offset": N, "record": {...}}`."""
    with connect(url, org_id, app_key, app_secret) as client:
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


# input and formatting


def _ids(inline: str | None, file: Path | None, what: str) -> list[str]:
    """Ids from `--{what}` and `--{what}-file`, in order, without duplicates."""
    raw = (inline or "").split(",") + (_read(file).splitlines() if file else [])
    ids = list(dict.fromkeys(x.strip() for x in raw if x.strip()))
    if not ids:
        fail(f"give --{what} a1,a2 or --{what}-file FILE", 2)
    return ids


def _read(source: Path) -> str:
    try:
        return sys.stdin.read() if str(source) == "-" else source.read_text()
    except OSError as e:
        fail(f"{source}: {e}", 2)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"{where}: {e}", 2)


def _load_object(source: Path) -> dict[str, Any]:
    doc = _json(_read(source), str(source))
    if not isinstance(doc, dict):
        fail(f"{source}: a pipeline is a JSON object", 2)
    return doc


def _load_items(source: Path) -> list[Any]:
    """A JSON array, or one JSON value per non-blank line (NDJSON)."""
    text = _read(source)
    if text.lstrip().startswith("["):
        items = _json(text, str(source))
        return items if isinstance(items, list) else [items]
    lines = enumerate(text.splitlines(), 1)
    return [_json(line, f"{source} line {n}") for n, line in lines if line.strip()]


def _time(ms: Any) -> str:
    if not isinstance(ms, int):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
