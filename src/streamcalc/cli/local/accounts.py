"""`streamcalc accounts`: service accounts (appKey/appSecret) in the catalog."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from streamcalc.cli.local.backends import CatalogUrl, DataDir, open_backends
from streamcalc.cli.output import err

app = typer.Typer(no_args_is_help=True, help="Service accounts (appKey/appSecret) in the catalog.")


@app.command("create")
def create_account(
    org_id: Annotated[str, typer.Option("--org-id", help="The org (OU) the account acts for.")],
    data_dir: DataDir = None,
    catalog: CatalogUrl = None,
) -> None:
    """Create a service account; prints {"orgId", "appKey", "appSecret"} as one JSON object."""
    with open_backends("catalog", data_dir=data_dir, catalog=catalog) as (_, backends):
        try:
            account = backends.catalog.create_account(org_id)
        except ValueError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
    doc = {"orgId": account.org_id, "appKey": account.app_key, "appSecret": account.app_secret}
    sys.stdout.write(json.dumps(doc) + "\n")
