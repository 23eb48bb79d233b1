"""Request dependencies: the raw body, the authenticated caller and the org it may act for,
and the app's backends."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from streamcalc.backends import Backends
from streamcalc.service import codes
from streamcalc.service.auth import Authenticator, AuthError, Principal
from streamcalc.service.errors import ApiError


def backends(request: Request) -> Backends:
    """The catalog, log and state stores the app was created on (long-lived: do not close)."""
    opened: Backends = request.app.state.backends
    return opened


async def raw_body(request: Request) -> bytes:
    return await request.body()


def authenticate(request: Request, body: Annotated[bytes, Depends(raw_body)]) -> Principal:
    """EnOS signed headers (apim-accesstoken + apim-timestamp + apim-signature) or a Bearer token."""
    auth: Authenticator = request.app.state.authenticator
    headers = request.headers
    token = headers.get("apim-accesstoken")
    try:
        if token:
            return auth.verify(
                token,
                headers.get("apim-timestamp", ""),
                headers.get("apim-signature", ""),
                list(request.query_params.multi_items()),
                body,
            )
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and bearer:
            return auth.verify_bearer(bearer.strip())
    except AuthError as e:
        raise ApiError(codes.UNAUTHORIZED, e.msg, http_status=401) from e
    raise ApiError(codes.UNAUTHORIZED, "missing apim-accesstoken or Authorization: Bearer", http_status=401)


def org_id(
    principal: Annotated[Principal, Depends(authenticate)],
    org: Annotated[str, Query(alias="orgId", min_length=1, description="the org (OU) of the caller")],
) -> str:
    """The orgId of the request, which must be the caller's own (61106 otherwise); checked once
    the caller is authenticated."""
    if org != principal.org_id:
        raise ApiError(codes.WRONG_PIPELINE_OR_ORG, "Wrong pipelineId or OU has no privilege")
    return org


OrgId = Annotated[str, Depends(org_id)]
Caller = Annotated[Principal, Depends(authenticate)]
Body = Annotated[bytes, Depends(raw_body)]
