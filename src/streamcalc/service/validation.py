"""Pydantic errors as EnOS answers: one wording for the checks of query parameters and bodies.

A failed check names the parameter and why, after the lead of its code: `Missing param
pageSize: expected a positive integer` (61102), `The Stream configuration JSON is invalid:
name: Input should be a valid string` (61100). A check whose message names its parameter
itself raises `stated(...)`, which is answered as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from streamcalc.service import codes
from streamcalc.service.errors import ApiError

M = TypeVar("M", bound=BaseModel)
STATED = "stated"
_LEADS = {
    codes.MISSING_PARAM: "Missing param",
    codes.CONFIG_INVALID: "The Stream configuration JSON is invalid:",
}


def stated(message: str) -> PydanticCustomError:
    """A failed check whose `message` names the parameter, answered as it is."""
    return PydanticCustomError(STATED, message)


def param(error: Mapping[str, Any]) -> str:
    """The parameter of a pydantic error whose `loc` starts at it; `body` for the whole body."""
    return str(error["loc"][0]) if error["loc"] else "body"


def describe(error: Mapping[str, Any], code: int) -> str:
    """The message of a pydantic error (its `loc` starting at the parameter) under `code`."""
    if error["type"] == STATED:
        return str(error["msg"])
    return f"{_LEADS[code]} {param(error)}: {error['msg']}"


def parse_body(model: type[M], body: bytes, code: int) -> M:
    """The raw `body` (what the signature covered) as `model`; ApiError(code) naming the first
    parameter that fails, or `body` if it is not a JSON object."""
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise ApiError(code, describe(e.errors()[0], code)) from e
