"""`streamcalc state`: get and delete the stage state of a pipeline for assets x points, see
what a delete would delete, and list and restore the deletions kept for undo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streamcalc.cli.inputs import read_text
from streamcalc.cli.option_groups import option_groups
from streamcalc.cli.output import console, err, fail, timestamp
from streamcalc.cli.remote.connection import Connection
from streamcalc.cli.remote.pipelines import AsJson, PipelineId

app = typer.Typer(no_args_is_help=True, help="Stage state of a pipeline on a running service.")
Stage = Annotated[
    str, typer.Argument(help="The stage instance name, e.g. SimplifiedTimeWindowAggregator_01.")
]
Ids = Annotated[str | None, typer.Option(help="Comma-separated ids.")]
IdsFile = Annotated[
    Path | None, typer.Option(help="A file with one id per line.", exists=True, dir_okay=False)
]


@dataclass(frozen=True)
class Keys:
    """The (asset, point) keys of a stage of a pipeline (an option group: see
    `streamcalc.cli.option_groups`)."""

    pipeline_id: PipelineId
    stage: Stage
    assets: Ids = None
    points: Ids = None
    assets_file: IdsFile = None
    points_file: IdsFile = None

    def ids(self) -> tuple[list[str], list[str]]:
        """The asset ids and the point ids, each from the option and its file, in order,
        without duplicates; exit 2 if either has none."""
        return _ids(self.assets, self.assets_file, "assets"), _ids(self.points, self.points_file, "points")


@app.command("get")
@option_groups
def state_get(
    keys: Keys,
    as_json: Annotated[bool, typer.Option("--json", help="Print the items as NDJSON.")] = False,
    *,
    connection: Connection,
) -> None:
    """The state of every (asset, point) that has some; keys without state are left out."""
    asset_ids, point_ids = keys.ids()
    count = len(asset_ids) * len(point_ids)
    with connection.client() as client, err.status(f"getting {count} key(s)"):
        items = client.get_stage_state(keys.pipeline_id, keys.stage, asset_ids, point_ids)
    if as_json:
        for item in items:
            typer.echo(json.dumps(item))
        return
    table = Table("assetId", "pointId", "state", caption=f"{len(items)} of {count} key(s) have state")
    for item in items:
        rest = {k: v for k, v in item.items() if k not in ("assetId", "pointId")}
        table.add_row(item["assetId"], item["pointId"], json.dumps(rest))
    console.print(table)


@app.command("delete")
@option_groups
def state_delete(
    keys: Keys,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Delete nothing; print how many of the keys hold state.")
    ] = False,
    *,
    connection: Connection,
) -> None:
    """Delete the state of every (asset, point) atomically; the pipeline must be PAUSED. The
    values are kept for a while: `streamcalc state deletions` lists them, `restore` undoes one."""
    asset_ids, point_ids = keys.ids()
    count = len(asset_ids) * len(point_ids)
    what = f"{len(asset_ids)} asset(s) x {len(point_ids)} point(s) = {count} key(s)"
    err.print(f"{keys.stage} of {keys.pipeline_id}: {what}", highlight=False)
    if dry_run:
        with connection.client() as client, err.status(f"counting {count} key(s)"):
            held = client.delete_stage_state_dry_run(keys.pipeline_id, keys.stage, asset_ids, point_ids)
        typer.echo(f"would delete: {held} key(s) hold state")
        return
    if not yes:
        typer.confirm("Delete their state?", abort=True, err=True)
    with connection.client() as client, err.status(f"deleting {count} key(s)"):
        deleted = client.delete_stage_state(keys.pipeline_id, keys.stage, asset_ids, point_ids)
    typer.echo(f"deleted: {json.dumps(deleted)}")


@app.command("deletions")
@option_groups
def state_deletions(pipeline_id: PipelineId, as_json: AsJson = False, *, connection: Connection) -> None:
    """The deletions of the pipeline's state kept for undo, newest first."""
    with connection.client() as client:
        deletions = client.stage_state_deletions(pipeline_id)
    if as_json:
        for deletion in deletions:
            typer.echo(json.dumps(deletion))
        return
    table = Table(
        "deletionId", "stage", "keys", "by", "time", "restorable", caption=f"{len(deletions)} deletion(s)"
    )
    for d in deletions:
        restorable = (
            "yes"
            if d["restorable"]
            else f"restored {timestamp(d['restoredAt'])}"
            if "restoredAt" in d
            else "no"
        )
        table.add_row(
            d["deletionId"], d["stageInstanceName"], str(d["keys"]), d["by"], timestamp(d["time"]), restorable
        )
    console.print(table)


@app.command("restore")
@option_groups
def state_restore(
    pipeline_id: PipelineId,
    deletion_id: Annotated[str, typer.Argument(help="The deletion, from `streamcalc state deletions`.")],
    *,
    connection: Connection,
) -> None:
    """Put a deletion's values back; the pipeline must still be PAUSED since that delete."""
    with connection.client() as client, err.status(f"restoring {deletion_id}"):
        restored = client.restore_stage_state(pipeline_id, deletion_id)
    typer.echo(f"restored: {restored} key(s)")


def _ids(inline: str | None, file: Path | None, what: str) -> list[str]:
    """Ids from `--{what}` and `--{what}-file`, in order, without duplicates."""
    raw = (inline or "").split(",") + (read_text(file).splitlines() if file else [])
    ids = list(dict.fromkeys(x.strip() for x in raw if x.strip()))
    if not ids:
        fail(f"give --{what} a1,a2 or --{what}-file FILE", 2)
    return ids
