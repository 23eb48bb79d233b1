"""`streamcalc serve`: the EnOS Stream Processing API on the backends, until Ctrl-C."""

from __future__ import annotations

from streamcalc.backends.urls import redact
from streamcalc.cli.local.backends import (
    AllowVolatileState,
    CatalogUrl,
    DataDir,
    LogUrl,
    StateUrl,
    open_backends,
)
from streamcalc.cli.output import console
from streamcalc.gctuning import tune_gc


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    data_dir: DataDir = None,
    log: LogUrl = None,
    state: StateUrl = None,
    catalog: CatalogUrl = None,
    allow_volatile_state: AllowVolatileState = False,
) -> None:
    """Serve the EnOS Stream Processing API v2.x (plus ingest/consume) until Ctrl-C.

    STREAMCALC_BOOTSTRAP_ORG_ID / _APP_KEY / _APP_SECRET, when all set, make sure that org
    and service account exist. Running pipelines pause on exit and resume on the next start.
    """
    import uvicorn  # here, not at the top: the other commands should not pay for the web stack

    from streamcalc.service.app import create_app
    from streamcalc.service.settings import ServiceSettings

    flags = {
        "data_dir": data_dir,
        "log": log,
        "state": state,
        "catalog": catalog,
        "allow_volatile_state": allow_volatile_state,
    }
    with open_backends("log", "state", "catalog", **flags) as (backend_settings, backends):
        settings = ServiceSettings.from_env(backend_settings.data_dir)
        if settings.bootstrap is not None:
            console.print(
                f"org [bold]{settings.bootstrap.org_id}[/bold] with appKey "
                f"[bold]{settings.bootstrap.app_key}[/bold] (secret from STREAMCALC_BOOTSTRAP_APP_SECRET)"
            )
        urls = backends.urls
        console.print(
            f"EnOS Stream Processing API on http://{host}:{port} (OpenAPI at /docs); data dir "
            f"{settings.data_dir}; log {redact(urls.log)}, state {redact(urls.state)}, "
            f"catalog {redact(urls.catalog)}",
            markup=False,
        )
        console.print(
            f"web console at http://{host}:{port}/console/, Prometheus metrics at /metrics", markup=False
        )
        app = create_app(settings, backends)
        tune_gc()
        uvicorn.run(app, host=host, port=port, log_level="info")
