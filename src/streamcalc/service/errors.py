"""The one API exception; a single handler renders it as the EnOS envelope."""

from __future__ import annotations

from typing import Any

from streamcalc.errors import StreamcalcError


class ApiError(StreamcalcError):
    """A request that fails with an EnOS code. Business errors answer HTTP 200 (EnOS clients
    read `code`); authentication failures answer 401."""

    def __init__(self, code: int, msg: str, *, http_status: int = 200, data: Any = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.data = data
