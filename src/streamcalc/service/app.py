"""The FastAPI application: EnOS Stream Processing API v2.x plus ingest/consume.

Everything a request needs hangs off `app.state`, built in `create_app` and closed when the
app shuts down: the catalog, the embedded log, the supervisor of pipeline workers, the
authenticator and the pipeline service. Shutting down pauses the workers; a restart
resumes every pipeline the catalog lists as RUNNING.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.log import open_log
from streamcalc.runtime.supervisor import Supervisor
from streamcalc.service import codes
from streamcalc.service.auth import Authenticator
from streamcalc.service.catalog import open_catalog
from streamcalc.service.envelope import envelope
from streamcalc.service.errors import ApiError
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.routes import pipelines, state, token, topics
from streamcalc.service.settings import ServiceSettings

log = logging.getLogger(__name__)


def create_app(settings: ServiceSettings, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _open(app, settings, clock)
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=_sample_lag, args=(app, settings, stop_sampling), daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop_sampling.set()
            sampler.join()
            app.state.supervisor.close()
            app.state.log.close()
            app.state.catalog.close()

    app = FastAPI(title="streamcalc", summary="EnOS Stream Processing Service API v2.x", lifespan=lifespan)
    for router in (token.router, pipelines.router, state.router, topics.router):
        app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    return app


def _open(app: FastAPI, settings: ServiceSettings, clock: Clock) -> None:
    catalog = open_catalog(settings.data_dir)
    if settings.bootstrap is not None:
        b = settings.bootstrap
        catalog.create_account(b.org_id, b.app_key, b.app_secret.get_secret_value())
    event_log = open_log(settings.data_dir, clock=clock)
    supervisor = Supervisor(settings.data_dir, clock=clock)
    app.state.settings = settings
    app.state.clock = clock
    app.state.catalog = catalog
    app.state.log = event_log
    app.state.supervisor = supervisor
    app.state.authenticator = Authenticator(
        catalog, clock, token_ttl_s=settings.token_ttl_s, window_s=settings.signature_window_s
    )
    app.state.pipelines = PipelineService(catalog, supervisor, event_log, settings.data_dir, clock)
    app.state.pipelines.resume_running()


def _sample_lag(app: FastAPI, settings: ServiceSettings, stop: threading.Event) -> None:
    while not stop.wait(settings.lag_sample_interval_s):
        try:
            app.state.pipelines.sample_lag()
        except Exception:
            log.exception("offset/lag sampling failed; next try in %.0fs", settings.lag_sample_interval_s)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return envelope(request, exc.data, code=exc.code, msg=exc.msg, status=exc.http_status)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    name = str(first.get("loc", ("", "?"))[-1])
    return envelope(
        request, code=codes.MISSING_PARAM, msg=f"Missing param {name}: {first.get('msg', 'invalid')}"
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return envelope(request, code=codes.INTERNAL, msg="Internal Server Error.", status=500)
