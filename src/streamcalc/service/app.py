"""The FastAPI application: EnOS Stream Processing API v2.x plus ingest/consume.

Everything a request needs hangs off `app.state`, set up when the app starts and closed
when it shuts down: the backends it is given (catalog, log and the state stores, each
long-lived), the supervisor of pipeline workers, the authenticator and the pipeline service.
Shutting down pauses the workers; a restart resumes every pipeline the catalog lists as
RUNNING. A backend that fails answers the EnOS envelope with code 503, not a traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from streamcalc import __version__
from streamcalc.backends import Backends, BackendUnavailable
from streamcalc.catalog import CatalogUnavailable
from streamcalc.log import LogUnavailable
from streamcalc.runtime.supervisor import Supervisor
from streamcalc.service import codes
from streamcalc.service.activity import Activity
from streamcalc.service.auth import Authenticator
from streamcalc.service.envelope import EnvelopeResponse, envelope
from streamcalc.service.errors import ApiError
from streamcalc.service.pipelines import PipelineService
from streamcalc.service.routes import activity, metrics, pipelines, state, token, topics
from streamcalc.service.settings import ServiceSettings
from streamcalc.service.validation import describe
from streamcalc.state import StateUnavailable

log = logging.getLogger(__name__)
CONSOLE_DIR = Path(__file__).parent / "console"
"""The web console's static files (docs/operations.md): no build step, nothing from a CDN."""
_UNAVAILABLE = {
    StateUnavailable: "the state store",
    CatalogUnavailable: "the catalog",
    LogUnavailable: "the log",
    BackendUnavailable: "a backend",
}
"""What a request that failed on each backend error could not reach, for its answer."""


def create_app(settings: ServiceSettings, backends: Backends) -> FastAPI:
    """The app on `backends` (and their clock), which it closes when it shuts down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _open(app, settings, backends)
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=_housekeeping, args=(app, settings, stop_sampling), daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop_sampling.set()
            sampler.join()
            app.state.supervisor.close()
            backends.close()

    app = FastAPI(title="streamcalc", summary="EnOS Stream Processing Service API v2.x", lifespan=lifespan)
    for router in (
        token.router,
        pipelines.router,
        state.router,
        topics.router,
        activity.router,
        metrics.router,
    ):
        app.include_router(router)
    app.add_api_route("/console", lambda: RedirectResponse("/console/"), include_in_schema=False)
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for error in _UNAVAILABLE:
        app.add_exception_handler(error, _unavailable)
    app.add_exception_handler(Exception, _internal_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document of the service (docs/openapi.json is this, written by `make openapi`)."""
    return create_app(ServiceSettings(data_dir=Path(".")), Backends.resolve(Path("."))).openapi()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated spec plus the EnOS security schemes: signed headers, or a Bearer token."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=__version__,
            summary=app.summary,
            description=_AUTH_DOC,
            routes=app.routes,
        )
        spec.setdefault("components", {})["securitySchemes"] = {
            "apimAccessToken": {"type": "apiKey", "in": "header", "name": "apim-accesstoken"},
            "apimTimestamp": {"type": "apiKey", "in": "header", "name": "apim-timestamp"},
            "apimSignature": {
                "type": "apiKey",
                "in": "header",
                "name": "apim-signature",
                "description": "sha256(token + sorted query name+value + raw body + timestamp "
                "+ appSecret), lower-case hex",
            },
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        spec["security"] = [{"apimAccessToken": [], "apimTimestamp": [], "apimSignature": []}, {"bearer": []}]
        for path, item in spec["paths"].items():
            if path.startswith("/apim-token-service/"):
                for operation in item.values():
                    operation["security"] = []
        spec["paths"]["/metrics"]["get"]["security"] = [{"bearer": []}]  # a scraper signs nothing
        app.openapi_schema = spec
    return app.openapi_schema


_AUTH_DOC = (
    "Get a token from `/apim-token-service/v2.0/token/get`, then sign every call with the headers "
    "apim-accesstoken, apim-timestamp (epoch ms) and apim-signature, "
    "or send `Authorization: Bearer <token>`. "
    "Every answer is the EnOS envelope {code, msg, requestId, data}; business errors answer HTTP 200 with a "
    "non-zero code."
)


def _open(app: FastAPI, settings: ServiceSettings, backends: Backends) -> None:
    catalog = backends.catalog
    if settings.bootstrap is not None:
        b = settings.bootstrap
        catalog.create_account(b.org_id, b.app_key, b.app_secret.get_secret_value())
    supervisor = Supervisor(backends, settings.data_dir)
    app.state.settings = settings
    app.state.backends = backends
    app.state.supervisor = supervisor
    app.state.authenticator = Authenticator(
        catalog, backends.clock, token_ttl_s=settings.token_ttl_s, window_s=settings.signature_window_s
    )
    app.state.pipelines = PipelineService(
        backends, supervisor, deletion_retention_s=settings.deletion_retention_s
    )
    app.state.activity = Activity(backends, supervisor, settings.data_dir, settings.lag_sample_interval_s)
    app.state.pipelines.resume_running()


def _housekeeping(app: FastAPI, settings: ServiceSettings, stop: threading.Event) -> None:
    """Every lag sampling interval: a lag sample of each running pipeline, and the deletions
    past their retention dropped (also done at every delete, list and restore)."""
    while not stop.wait(settings.lag_sample_interval_s):
        for chore, what in (
            (app.state.pipelines.sample_lag, "offset/lag sampling"),
            (app.state.pipelines.drop_expired_deletions, "dropping old deletions"),
        ):
            try:
                chore()
            except Exception:
                log.exception("%s failed; next try in %.0fs", what, settings.lag_sample_interval_s)


async def _api_error(request: Request, exc: ApiError) -> EnvelopeResponse:
    return envelope(request, exc.data, code=exc.code, msg=exc.msg, status=exc.http_status)


async def _validation_error(request: Request, exc: RequestValidationError) -> EnvelopeResponse:
    """A query or path parameter failed its model: 61102 naming it, worded as body checks are."""
    first = exc.errors()[0]
    param = {**first, "loc": first["loc"][1:]}  # FastAPI's loc starts with where it came from (query)
    return envelope(request, code=codes.MISSING_PARAM, msg=describe(param, codes.MISSING_PARAM))


async def _unavailable(request: Request, exc: Exception) -> EnvelopeResponse:
    """503 with the EnOS envelope, naming what failed; the cause (paths, server errors) goes
    to the server log only."""
    what = next(text for error, text in _UNAVAILABLE.items() if isinstance(exc, error))
    log.error("request %s %s: %s failed: %s", request.method, request.url.path, what, exc, exc_info=exc)
    return envelope(
        request, code=codes.UNAVAILABLE, msg=f"Service unavailable: {what} failed; retry later.", status=503
    )


async def _internal_error(request: Request, exc: Exception) -> EnvelopeResponse:
    log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return envelope(request, code=codes.INTERNAL, msg="Internal Server Error.", status=500)
