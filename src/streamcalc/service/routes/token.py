"""The EnOS token service: get and refresh an access token with appKey + encryption."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from streamcalc.service.auth import INVALID_PARAMETER, PARAMETER_EMPTY, Authenticator, AuthError
from streamcalc.service.deps import Body
from streamcalc.service.schemas import RefreshRequest, TokenRequest, TokenResponse, body
from streamcalc.service.validation import param

router = APIRouter(prefix="/apim-token-service/v2.0/token", tags=["token service"])
R = TypeVar("R", bound=TokenRequest)


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
        if refresh:
            renewal = _parse(RefreshRequest, body)
            token, expire = auth.refresh_token(
                renewal.appKey, renewal.encryption, renewal.timestamp, renewal.accessToken
            )
        else:
            asked = _parse(TokenRequest, body)
            token, expire = auth.get_token(asked.appKey, asked.encryption, asked.timestamp)
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


def _parse(model: type[R], body: bytes) -> R:
    """1202 names a parameter left out, null or empty (or `body` if it is no JSON object); else
    1004 one of the wrong type."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as e:
        errors = e.errors()
        empty = [x for x in errors if not x["loc"] or x["type"] == "missing" or x["input"] in (None, "")]
        if empty:
            raise AuthError(PARAMETER_EMPTY, f"parameter empty: {param(empty[0])}") from e
        raise AuthError(
            INVALID_PARAMETER, f"invalid parameter: {param(errors[0])}: {errors[0]['msg']}"
        ) from e
