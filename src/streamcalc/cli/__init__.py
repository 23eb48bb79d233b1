"""The `streamcalc` command line, put together from its commands.

Local commands (`cli.local`) run in this process on the backends of a data dir; remote ones
(`cli.remote`) drive a running service over HTTP through the SDK. `cli.inputs` reads what
both take (files or stdin, JSON objects, NDJSON or JSON arrays) and `cli.output` holds the
consoles they write to.
"""

from __future__ import annotations

import typer

from streamcalc.cli.local import accounts, log
from streamcalc.cli.local.run import run
from streamcalc.cli.local.serve import serve
from streamcalc.cli.remote import pipelines, state
from streamcalc.cli.remote.topics import consume, produce

app = typer.Typer(no_args_is_help=True, help="Stream processing for IoT measurement points.")
app.command()(run)
app.command()(serve)
app.command()(produce)
app.command()(consume)
app.add_typer(log.app, name="log")
app.add_typer(accounts.app, name="accounts")
app.add_typer(pipelines.app, name="pipeline")
app.add_typer(state.app, name="state")

__all__ = ["app"]
