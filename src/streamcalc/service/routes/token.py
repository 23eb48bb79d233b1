"""The EnOS token service: get and refresh an access token with appKey + encryption."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from streamcalc.service.auth import Authenticator, AuthError
from streamcalc.service.deps import Body
from streamcalc.service.schemas import RefreshRequest, TokenRequest, TokenResponse, body

router = APIRouter(prefix="/apim-token-service/v2.0/token", tags=["token service"])
PARAMETER_EMPTY = 1202


@router.post(
    "/get",
    summary="Get an access token",
    responses={200: {"model": TokenResponse}},
    openapi_extra=body(TokenRequest),
)
def get_token(request: Request, body: Body) -> JSONResponse:
    return _answer(request, body, refresh=False)


@router.post(
    "/refresh",
    summary="Refresh an access token",
    responses={200: {"model": TokenResponse}},
    openapi_extra=body(RefreshRequest),
)
def refresh_token(request: Request, body: Body) -> JSONResponse:
    return _answer(request, body, refresh=True)


def _answer(request: Request, body: bytes, *, refresh: bool) -> JSONResponse:
    """The token service's own envelope: {status, msg, business, data}."""
    auth: Authenticator = request.app.state.authenticator
    try:
        doc = _fields(body, refresh)
        if refresh:
            token, expire = auth.refresh_token(
                doc["appKey"], doc["encryption"], doc["timestamp"], doc["accessToken"]
            )
        else:
            token, expire = auth.get_token(doc["appKey"], doc["encryption"], doc["timestamp"])
    except AuthError as e:
        return JSONResponse({"status": e.code, "msg": e.msg, "business": "apim-token-service", "data": None})
    return JSONResponse(
        {
            "status": 0,
            "msg": "SUCCESS",
            "business": "apim-token-service",
            "data": {"accessToken": token, "expire": expire},
        }
    )


def _fields(body: bytes, refresh: bool) -> dict[str, Any]:
    try:
        doc = json.loads(body) if body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    names = ("appKey", "encryption", "timestamp", *(("accessToken",) if refresh else ()))
    if not isinstance(doc, dict) or any(doc.get(n) in (None, "") for n in names):
        raise AuthError(PARAMETER_EMPTY, f"parameter empty: {', '.join(names)} are required")
    try:
        doc["timestamp"] = int(doc["timestamp"])
    except (TypeError, ValueError) as e:
        raise AuthError(1004, "invalid parameter: timestamp must be epoch milliseconds") from e
    return doc
