"""Request and response shapes, for the OpenAPI spec.

Routes read the raw body (signatures cover its exact bytes, and EnOS clients send numbers
as strings), so these models document the API; the routes validate with EnOS codes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Envelope(BaseModel):
    code: int = Field(description="0 on success, else an EnOS code (611xx, 99000, 401)")
    msg: str = Field(description='"OK", or what went wrong')
    requestId: str
    data: Any = Field(None, description="the result; null on errors")


class StageStateRequest(BaseModel):
    pipelineId: str
    stageInstanceName: str = Field(description="e.g. SimplifiedTimeWindowAggregator_01")
    assetIds: str = Field(description="comma-separated; blanks trimmed, duplicates count once")
    pointIds: str = Field(description="comma-separated; assets x points <= 100,000")


class SaveRequest(BaseModel):
    name: str | None = Field(None, description="or pipelineName")
    pipelineName: str | None = None
    pipelineJson: dict[str, Any] | str | None = Field(
        None, description="native {stages: [...]} or a StreamSets export, as an object or a JSON string"
    )
    version: str | None = None
    templateType: int | str | None = Field(None, description="1 = operator pipeline")
    templateName: str | None = None
    messageChannel: int | str | None = Field(None, description="0 real time, 1 offline")
    desc: str | None = None


class StartRequest(BaseModel):
    executionMode: int | str = Field(0, description="0 standalone (1 cluster: not yet)")
    kafkaRate: int | str | None = Field(None, description="records/s read limit; absent = unlimited")
    resourceConfig: dict[str, Any] | int | str | None = Field(
        None,
        description="standalone: CUs, 1-16, one worker process each (absent = 1); every source topic "
        "needs a multiple of it as partitions, and is created with that many if missing",
    )


class TokenRequest(BaseModel):
    appKey: str
    encryption: str = Field(description="lower-case hex sha256(appKey + timestamp + appSecret)")
    timestamp: int = Field(description="epoch milliseconds, within the server's window")


class RefreshRequest(TokenRequest):
    accessToken: str


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
RECORDS_BODY: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "description": "an internal record {orgId, modelId, modelIdPath, assetId, pointId, "
        "time, value, quality?, dq?, attr?} or an origin message {orgId, modelId, payload: [...]}",
    },
}
