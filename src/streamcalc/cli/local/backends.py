"""The backend options of the local commands (--data-dir, --log, --state, --catalog,
--allow-volatile-state), declared once, and the block that opens the backends they name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from streamcalc.backends import BackendConfigError, Backends, BackendSettings, BackendUnavailable
from streamcalc.backends.urls import SCHEMES, Part
from streamcalc.cli.output import fail

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
    servers = [name for name, scheme in SCHEMES[part].items() if scheme.server]
    server = f", a server backend its server ({servers[0]}://host:port/...)" if servers else ""
    return typer.Option(
        f"--{part}",
        metavar="URL",
        show_default=False,
        help=f"The {part} backend: {', '.join(SCHEMES[part])}; a file backend may name its place "
        f"({default}:///abs/path){server}. Default $STREAMCALC_{part.upper()}, else {default} under "
        "--data-dir.",
    )


LogUrl = Annotated[str | None, _backend_option("log")]
StateUrl = Annotated[str | None, _backend_option("state")]
CatalogUrl = Annotated[str | None, _backend_option("catalog")]
AllowVolatileState = Annotated[
    bool,
    typer.Option(
        "--allow-volatile-state",
        show_default=False,
        help="Run pipelines even on state that may lose commits it acknowledged (e.g. Redis "
        "without appendfsync always). Default $STREAMCALC_ALLOW_VOLATILE_STATE, else refused.",
    ),
]


@contextmanager
def open_backends(*parts: Part, **flags: object) -> Iterator[tuple[BackendSettings, Backends]]:
    """The settings of these flags (then the environment) and their backends, `parts` opened
    now and all closed when the block ends. A bad URL, or a backend that cannot be opened, ends
    the command with one line and exit code 2, not a traceback."""
    if flags.get("allow_volatile_state") is False:  # the flag not given: the environment decides
        flags["allow_volatile_state"] = None
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
