"""GET /metrics: Prometheus text format for the pipelines of the orgs the scraper may see.

`Authorization: Bearer <STREAMCALC_METRICS_TOKEN>` is the operator's scrape: every org. An
org's access token (from the token service) scrapes that org only, so a tenant can watch its
own pipelines and nobody else's. Without STREAMCALC_METRICS_TOKEN, a scrape without a token
sees every org (a single-tenant or private deployment); with it set, that answers 401.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from streamcalc.service import codes
from streamcalc.service.auth import Authenticator, AuthError
from streamcalc.service.deps import backends
from streamcalc.service.errors import ApiError
from streamcalc.service.metrics import exposition
from streamcalc.service.settings import ServiceSettings

router = APIRouter(tags=["metrics (ours)"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (ours)",
    description="Bearer STREAMCALC_METRICS_TOKEN: every org; Bearer <access token>: that org only; "
    "no token: every org unless STREAMCALC_METRICS_TOKEN is set (401). docs/operations.md lists the metrics.",
    response_class=Response,
)
def metrics(request: Request) -> Response:
    state = request.app.state
    body = exposition(backends(request).catalog, state.pipelines, state.activity, _orgs(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _orgs(request: Request) -> list[str]:
    settings: ServiceSettings = request.app.state.settings
    auth: Authenticator = request.app.state.authenticator
    every_org = backends(request).catalog.orgs
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    token = given.strip() if scheme.lower() == "bearer" else ""
    operator = settings.metrics_token
    if token and operator is not None and hmac.compare_digest(token, operator.get_secret_value()):
        return every_org()
    if token:
        try:
            return [auth.verify_bearer(token).org_id]
        except AuthError as e:
            raise ApiError(codes.UNAUTHORIZED, e.msg, http_status=401) from e
    if operator is None:
        return every_org()
    raise ApiError(
        codes.UNAUTHORIZED,
        "missing Authorization: Bearer (the metrics token, or an org's access token)",
        http_status=401,
    )
