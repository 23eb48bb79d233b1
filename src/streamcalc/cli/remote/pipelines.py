"""`streamcalc pipeline`: save, release, start, pause, stop, list and show pipelines, and their lag."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.json import JSON
from rich.table import Table

from streamcalc.cli.inputs import read_object
from streamcalc.cli.option_groups import option_groups
from streamcalc.cli.output import console, err, fail, timestamp
from streamcalc.cli.remote.connection import Connection
from streamcalc.client import StreamcalcClient

app = typer.Typer(no_args_is_help=True, help="Pipelines of a running service (EnOS API).")
PipelineId = Annotated[str, typer.Argument(help="The pipeline id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("save")
@option_groups
def save(
    pipeline_id: Annotated[str | None, typer.Argument(help="Update this pipeline; none creates one.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Pipeline JSON; '-' for stdin.")] = None,
    name: Annotated[str | None, typer.Option(help="The pipeline name.")] = None,
    *,
    connection: Connection,
) -> None:
    """Create a pipeline (no id) or update its design version; prints the pipeline id."""
    if pipeline_id is None and file is None:
        fail("a new pipeline needs --file", 2)
    definition = None if file is None else read_object(file)
    with connection.client() as client:
        typer.echo(client.save_pipeline(pipeline_id, definition, name=name))


def _lifecycle_command(
    action: str, verb: str, done: str, doc: str, call: Callable[[StreamcalcClient, str], None]
) -> None:
    """Register `pipeline ACTION PIPELINE_ID`, one call with a spinner while it runs."""

    def command(pipeline_id: PipelineId, *, connection: Connection) -> None:
        with connection.client() as client, err.status(f"{verb} {pipeline_id}"):
            call(client, pipeline_id)
        console.print(f"{done} {pipeline_id}")

    command.__doc__ = doc
    app.command(action)(option_groups(command))


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


@app.command("start")
@option_groups
def start(
    pipeline_id: PipelineId,
    kafka_rate: Annotated[int | None, typer.Option(help="Records/s the pipeline may read.")] = None,
    resource_config: Annotated[
        int | None, typer.Option(help="CUs: worker processes, each reading its share of the partitions.")
    ] = None,
    *,
    connection: Connection,
) -> None:
    """Start the released version, or resume a paused pipeline where it paused."""
    with connection.client() as client, err.status(f"starting {pipeline_id}"):
        client.start_pipeline(pipeline_id, kafka_rate=kafka_rate, resource_config=resource_config)
    console.print(f"started {pipeline_id}")


@app.command("list")
@option_groups
def list_(
    released: Annotated[
        bool, typer.Option("--released", help="Only the released pipelines; without it, every pipeline.")
    ] = False,
    page_size: Annotated[int, typer.Option(min=1)] = 10,
    page_no: Annotated[int, typer.Option(min=1)] = 1,
    *,
    connection: Connection,
) -> None:
    """One page of the org's pipelines with their status: the released ones, then the drafts
    (only the released with --released)."""
    with connection.client() as client:
        if released:
            data = client.list_pipelines(page_size=page_size, page_no=page_no, if_released=True)
            count, pipelines = data["count"], data["pipelines"]
        else:
            count, pipelines = _every_pipeline(client, page_no, page_size)
    table = Table("id", "name", "status", "updated", caption=f"page {page_no}; {count} in all")
    table.columns[0].no_wrap = True
    for p in pipelines:
        table.add_row(
            p["pipelineId"], p.get("pipelineName") or "", p["status"], timestamp(p.get("updateTime"))
        )
    console.print(table)


def _every_pipeline(
    client: StreamcalcClient, page_no: int, page_size: int
) -> tuple[int, list[dict[str, Any]]]:
    """(count, page `page_no`) of the released pipelines followed by the drafts. EnOS lists the
    two apart (ifReleased true or false, no value for both), so this pages through each: the
    page's released ones, then the drafts from where they begin on it (two draft pages at most)."""
    released = client.list_pipelines(page_size=page_size, page_no=page_no, if_released=True)
    pipelines: list[dict[str, Any]] = released["pipelines"]
    first_draft = max((page_no - 1) * page_size - released["count"], 0)
    draft_page, skip = divmod(first_draft, page_size)
    drafts = client.list_pipelines(page_size=page_size, page_no=draft_page + 1)
    pipelines += drafts["pipelines"][skip:]
    if skip and len(pipelines) < page_size and (draft_page + 1) * page_size < drafts["count"]:
        pipelines += client.list_pipelines(page_size=page_size, page_no=draft_page + 2)["pipelines"]
    return released["count"] + drafts["count"], pipelines[:page_size]


@app.command("show")
@option_groups
def show(
    pipeline_id: PipelineId,
    released: Annotated[bool, typer.Option("--released", help="The released version.")] = False,
    as_json: AsJson = False,
    *,
    connection: Connection,
) -> None:
    """A pipeline's details and its pipelineJson (the design version unless --released)."""
    with connection.client() as client:
        data = client.get_pipeline(pipeline_id, if_released=released)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        if key != "pipelineJson":
            table.add_row(key, timestamp(value) if key == "updateTime" else _text(value))
    console.print(table)
    console.print(JSON.from_data(data.get("pipelineJson")))


@app.command("lag")
@option_groups
def lag(
    pipeline_id: PipelineId,
    last: Annotated[int, typer.Option(min=1, help="How many of the latest samples.")] = 10,
    *,
    connection: Connection,
) -> None:
    """The latest offset/lag samples of a running pipeline's source topic."""
    with connection.client() as client:
        data = client.offset_lag(pipeline_id)
    console.print(f"source topic {data['topicName']} of {pipeline_id}", highlight=False)
    table = Table("time", "offset", "lag")
    for sample in data["lagAndOffset"][-last:]:
        table.add_row(timestamp(sample["ts"]), str(sample["offset"]), str(sample["lag"]))
    console.print(table)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
