"""The backend options of the local commands (--data-dir, --log, --state, --catalog), declared
once, and the block that opens the backends they name."""

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
def open_backends(*parts: Part, **flags: object) -> Iterator[tuple[BackendSettings, Backends]]:
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
