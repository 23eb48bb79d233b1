"""Request and response shapes: each route checks its query and body with these models, and the
OpenAPI spec shows the same models.

Bodies are checked from the raw bytes after authentication, since the signature covers those
exact bytes (`validation.parse_body`); `body()` documents them. Unknown fields are ignored and
numbers may come as strings, as EnOS clients send them.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    RootModel,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from streamcalc.runtime.options import MAX_WORKERS
from streamcalc.service.validation import stated

MAX_KEYS = 100_000
"""assets x points per stage-state request, as EnOS documents it."""
MAX_READ = 10_000
"""Records per consume request."""


def _flag(raw: object) -> bool:
    """Booleans as Java (true) and Python (True) clients send them."""
    value = raw.strip().lower() if isinstance(raw, str) else None
    if value not in ("true", "false", "1", "0"):
        raise PydanticCustomError("flag", "expected true or false")
    return value in ("true", "1")


def _positive(raw: object) -> int:
    if not (isinstance(raw, str) and raw.strip().isdecimal() and int(raw) >= 1):
        raise PydanticCustomError("positive", "expected a positive integer")
    return int(raw)


def _ids(raw: object) -> list[str]:
    ids = list(dict.fromkeys(x.strip() for x in raw.split(",") if x.strip())) if isinstance(raw, str) else []
    if not ids:
        raise PydanticCustomError("ids", "expected comma-separated ids")
    return ids


Flag = Annotated[bool, BeforeValidator(_flag)]
Positive = Annotated[int, Field(ge=1), BeforeValidator(_positive)]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Ids = Annotated[list[str], BeforeValidator(_ids), WithJsonSchema({"type": "string"})]
"""Comma-separated ids in a string: blanks trimmed, duplicates count once."""
OperateAction = Literal["save", "release", "start", "pause", "stop"]
StateAction = Literal["get", "delete", "restore"]


class Envelope(BaseModel):
    code: int = Field(description="0 on success, else an EnOS code (611xx, 99000, 401)")
    msg: str = Field(description='"OK", or what went wrong')
    requestId: str
    data: Any = Field(None, description="the result; null on errors")


# queries


class ListQuery(BaseModel):
    """List Pipelines."""

    pageSize: Positive = Field(10, description="pipelines per page")
    pageNo: Positive = Field(1, description="the page, from 1")
    isSystem: Flag = Field(
        False, description="the system pipelines: none (Data Reader/Writer are built into the runtime)"
    )
    ifReleased: Flag = Field(False, description="the released pipelines; else the drafts")


class RecordsQuery(BaseModel):
    """Read records of a topic."""

    offset: int = Field(0, ge=0, description="the first offset to read")
    limit: int = Field(100, ge=1, le=MAX_READ, description="records at most")
    partition: int = Field(0, ge=0)


# bodies


class StageStateRequest(BaseModel):
    """Get / Delete Stage State; 61102 names the parameter missing or malformed."""

    pipeline_id: NonBlank = Field(alias="pipelineId")
    stage: NonBlank = Field(alias="stageInstanceName", description="e.g. SimplifiedTimeWindowAggregator_01")
    asset_ids: Ids = Field(
        alias="assetIds", description="comma-separated; blanks trimmed, duplicates count once"
    )
    point_ids: Ids = Field(alias="pointIds", description=f"comma-separated; assets x points <= {MAX_KEYS:,}")


class StateQuery(BaseModel):
    """Stage state: what to do; dryRun (ours) makes a delete count what it would delete."""

    action: StateAction = Field(description="get the state, delete it, or restore a deletion (ours)")
    dryRun: Flag = Field(
        False, description="delete only (ours): delete nothing, answer how many keys hold state"
    )


class RejectedQuery(BaseModel):
    """The latest records of a pipeline's error lane (ours)."""

    limit: int = Field(20, ge=1, le=200, description="entries at most, newest first")


class AuditQuery(BaseModel):
    """The org's audit log (ours)."""

    pipelineId: str | None = Field(None, description="only this pipeline's entries")
    limit: int = Field(50, ge=1, le=1000, description="entries at most, newest first")


class DeletionsQuery(BaseModel):
    """List the deletions kept for undo (ours)."""

    pipelineId: NonBlank


class RestoreRequest(BaseModel):
    """Restore a deletion (ours, action=restore)."""

    pipeline_id: NonBlank = Field(alias="pipelineId")
    deletion_id: NonBlank = Field(alias="deletionId", description="from the deletions list")


def _object_or_text(raw: object) -> object:
    if not (raw is None or isinstance(raw, dict | str)):
        raise PydanticCustomError("object_or_text", "expected an object or a JSON string")
    return raw


_META_FIELDS = ("version", "templateType", "templateName", "messageChannel", "desc", "executionMode")


class SaveRequest(BaseModel):
    """Save Pipeline: every field may be left out, but a new pipeline needs pipelineJson."""

    name: str | None = Field(None, description="or pipelineName")
    pipelineName: str | None = None
    pipelineJson: Annotated[dict[str, Any] | str | None, BeforeValidator(_object_or_text)] = Field(
        None, description="native {stages: [...]} or a StreamSets export, as an object or a JSON string"
    )
    version: str | None = None
    templateType: int | str | None = Field(None, description="1 = operator pipeline")
    templateName: str | None = None
    messageChannel: int | str | None = Field(None, description="0 real time, 1 offline")
    desc: str | None = None
    executionMode: int | str | None = Field(None, description="kept with the pipeline; start decides")

    def pipeline_name(self) -> str | None:
        """`name` if given, else `pipelineName`."""
        return self.name if "name" in self.model_fields_set else self.pipelineName

    def meta(self) -> dict[str, Any]:
        """The fields kept with the pipeline as they were given (List Pipelines shows them)."""
        return {k: getattr(self, k) for k in _META_FIELDS if k in self.model_fields_set}


def _rate(raw: Any) -> float:
    """kafkaRate in records/s, as a number or a numeric string (EnOS SDKs send both); absent = no limit."""
    if raw is None or raw == "":
        return 0.0
    try:
        rate = float(raw)
    except (TypeError, ValueError) as e:
        raise stated(f"kafkaRate must be a number, got {raw!r}") from e
    if rate < 0:
        raise stated(f"kafkaRate must be >= 0, got {raw!r}")
    return rate


def _mode(raw: Any) -> int:
    """executionMode 0 (standalone) or 1 (cluster), as a number or a numeric string; absent = 0."""
    if raw is None or raw == "":
        return 0
    if not (type(raw) is int or isinstance(raw, str)) or str(raw).strip() not in ("0", "1"):  # bools are ints
        raise stated(f"executionMode must be 0 (standalone) or 1 (cluster), got {raw!r}")
    return int(raw)


def _amount(raw: Any, what: str) -> float:
    """A positive number (CUs, a worker count), as a number or a numeric string: EnOS asks for
    0.5 CU too (`{"server": "0.5"}`)."""
    text = raw.strip() if isinstance(raw, str) else None
    if text is not None and re.fullmatch(r"\d+(\.\d+)?", text):
        raw = float(text)
    if type(raw) not in (int, float) or not 0 < raw < math.inf:  # bools are ints
        raise stated(f"{what} must be a positive number, got {raw!r}")
    return float(raw)


def _cus(raw: Any, what: str) -> float:
    cus = _amount(raw, what)
    if cus > MAX_WORKERS:
        raise stated(f"{what} must be at most {MAX_WORKERS} CUs, got {raw!r}")
    return cus


_CLUSTER_AMOUNTS = ("workerCount", "master", "slave")


def _resources(raw: Any) -> float | None:
    """The CUs a resourceConfig asks for, None if it leaves them to the default: absent, `{}`,
    a number or numeric string, or EnOS's object `{server, yarn: {workerCount, master, slave},
    advanced}` (server = CUs). The object's other fields are checked, then unused."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, dict):
        return _cus(raw, "resourceConfig")
    for part in ("yarn", "advanced"):
        if not isinstance(raw.get(part), dict | None):
            raise stated(f"resourceConfig.{part} must be an object, got {raw[part]!r}")
    for key, value in (raw.get("yarn") or {}).items():
        if key in _CLUSTER_AMOUNTS and value is not None:
            _amount(value, f"resourceConfig.yarn.{key}")
    server = raw.get("server")
    return None if server is None or server == "" else _cus(server, "resourceConfig.server")


class StartRequest(BaseModel):
    """Start Pipeline. Standalone (executionMode 0, the default) runs one worker process per CU
    of resourceConfig begun (0.5 CU: one). Cluster mode is not implemented: it runs standalone
    on one worker, its resourceConfig checked, then unread."""

    executionMode: Annotated[
        int,
        BeforeValidator(_mode),
        WithJsonSchema({"anyOf": [{"enum": [0, 1]}, {"enum": ["0", "1"]}]}),
    ] = Field(0, description="0 standalone (1 cluster: not yet)")
    kafkaRate: Annotated[
        float,
        BeforeValidator(_rate),
        WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}]}),
    ] = Field(0.0, description="records/s read limit; absent = unlimited")
    resourceConfig: Annotated[
        float | None,
        BeforeValidator(_resources),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WORKERS},
                    {"type": "string"},
                    {
                        "type": "object",
                        "properties": {
                            "server": {"anyOf": [{"type": "number"}, {"type": "string"}]},
                            "yarn": {"type": "object"},
                            "advanced": {"type": "object"},
                        },
                    },
                ]
            }
        ),
    ] = Field(
        None,
        description=f"standalone: CUs, up to {MAX_WORKERS}, one worker process per CU begun (absent or {{}} "
        "= 1), as a number, a numeric string or EnOS's object {server: CUs, yarn, advanced}; every source "
        "topic needs a multiple of the workers as partitions, and is created with that many if missing",
    )
    _workers: int = PrivateAttr(1)

    @model_validator(mode="after")
    def _count_workers(self) -> Self:
        if self.executionMode == 0 and self.resourceConfig is not None:
            self._workers = math.ceil(self.resourceConfig)
        return self

    @property
    def workers(self) -> int:
        """Worker processes to run."""
        return self._workers


class TokenRequest(BaseModel):
    appKey: str = Field(min_length=1)
    encryption: str = Field(min_length=1, description="lower-case hex sha256(appKey + timestamp + appSecret)")
    timestamp: int = Field(description="epoch milliseconds, within the server's window")


class RefreshRequest(TokenRequest):
    accessToken: str = Field(min_length=1)


Record = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "object",
            "description": "an internal record {orgId, modelId, modelIdPath, assetId, pointId, time, value, "
            "quality?, dq?, attr?} or an origin message {orgId, modelId, payload: [...]}",
        }
    ),
]


class Records(RootModel[list[Record]]):
    """Records to append to a topic; each is checked on its own, and one that fails is rejected
    with the reason."""


class TokenResponse(BaseModel):
    status: int = Field(
        description="0, or 1001 replay, 1002 unknown appKey, 1003 bad encryption, 1004 invalid "
        "parameter, 1202 parameter empty, 1203 token expired, 1204 refresh failed"
    )
    msg: str
    business: str = "apim-token-service"
    data: dict[str, Any] | None = Field(None, description="{accessToken, expire (seconds)}")


def body(model: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body."""
    schema = model if isinstance(model, dict) else model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ENVELOPE: dict[int | str, dict[str, Any]] = {
    200: {"model": Envelope, "description": "the EnOS envelope"},
    401: {"model": Envelope, "description": "bad credentials (code 401)"},
}
