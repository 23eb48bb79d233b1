"""The EnOS response envelope `{code, msg, requestId, data}`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from streamcalc.service.codes import OK


def request_id(request: Request) -> str:
    """One id per request, reused by the handler and the error path."""
    rid: str | None = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = str(uuid.uuid4())
    return rid


def envelope(
    request: Request, data: Any = None, *, code: int = OK, msg: str = "OK", status: int = 200
) -> JSONResponse:
    return JSONResponse(
        {"code": code, "msg": msg, "requestId": request_id(request), "data": data}, status_code=status
    )
