"""Python SDK for the EnOS Stream Processing API v2.x (and streamcalc's ingest/consume).

Signs every call the documented EnOS way: a token from the token service, then
`apim-signature = sha256(token + sorted query name+value pairs + raw body + timestamp +
appSecret)`. Works against streamcalc or any server that speaks the same API. Imports
nothing of the service, so it can ship alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import msgspec

from streamcalc.signing import sign, token_request_encryption

TOKEN_MARGIN_S = 60
"""A token is renewed this long before it expires."""


class NotAnEnvelope(ValueError):
    """The server answered something other than a JSON envelope: not a streamcalc/EnOS API."""


def _envelope(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object; msgspec decodes a 100,000-item answer about twice as fast
    as the standard library."""
    try:
        doc = msgspec.json.decode(response.content)
    except msgspec.DecodeError as e:
        raise NotAnEnvelope(f"HTTP {response.status_code}: not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise NotAnEnvelope(f"HTTP {response.status_code}: not a JSON object")
    return doc


class EnosError(Exception):
    """A call answered with a non-zero `code` (or the token service with a non-zero `status`)."""

    def __init__(self, code: int, msg: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {msg}" + (f" (requestId {request_id})" if request_id else ""))
        self.code = code
        self.msg = msg
        self.request_id = request_id


class StreamcalcClient:
    def __init__(
        self,
        base_url: str,
        org_id: str,
        app_key: str,
        app_secret: str,
        *,
        timeout_s: float = 60.0,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.org_id = org_id
        self._app_key = app_key
        self._app_secret = app_secret
        self._now_ms = now_ms
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)
        self._token: str | None = None
        self._token_expires_ms = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StreamcalcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # stage state

    def get_stage_state(
        self, pipeline_id: str, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str]
    ) -> list[dict[str, Any]]:
        data = self._stage_state({"action": "get"}, pipeline_id, stage, asset_ids, point_ids)
        items: list[dict[str, Any]] = data["items"]
        return items

    def delete_stage_state(
        self, pipeline_id: str, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str]
    ) -> bool:
        return bool(self._stage_state({"action": "delete"}, pipeline_id, stage, asset_ids, point_ids))

    def delete_stage_state_dry_run(
        self, pipeline_id: str, stage: str, asset_ids: Iterable[str], point_ids: Iterable[str]
    ) -> int:
        """How many of the keys hold state, so a delete would delete (streamcalc extension)."""
        params = {"action": "delete", "dryRun": "true"}
        return int(self._stage_state(params, pipeline_id, stage, asset_ids, point_ids))

    def stage_state_deletions(self, pipeline_id: str) -> list[dict[str, Any]]:
        """The pipeline's deletions kept for undo, newest first (streamcalc extension)."""
        data = self.call("GET", "/streaming/v2.0/stage-state/deletions", {"pipelineId": pipeline_id})
        deletions: list[dict[str, Any]] = data["deletions"]
        return deletions

    def restore_stage_state(self, pipeline_id: str, deletion_id: str) -> int:
        """Put a deletion's values back; returns how many keys (streamcalc extension)."""
        body = {"pipelineId": pipeline_id, "deletionId": deletion_id}
        return int(self.call("POST", "/streaming/v2.0/stage-state", {"action": "restore"}, body))

    # pipelines

    def list_pipelines(
        self, *, page_size: int = 10, page_no: int = 1, is_system: bool = False, if_released: bool = False
    ) -> dict[str, Any]:
        params = {
            "pageSize": str(page_size),
            "pageNo": str(page_no),
            "isSystem": _bool(is_system),
            "ifReleased": _bool(if_released),
        }
        result: dict[str, Any] = self.call("GET", "/streaming/v2.0/streaming/pipelines", params)
        return result

    def get_pipeline(self, pipeline_id: str, *, if_released: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "GET", f"/streaming/v2.0/streaming/pipeline/{pipeline_id}", {"ifReleased": _bool(if_released)}
        )
        return result

    def save_pipeline(
        self,
        pipeline_id: str | None,
        pipeline_json: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        **meta: Any,
    ) -> str:
        """Create (pipeline_id None) or update the design version; returns the pipeline id."""
        body = {
            **meta,
            **({"name": name} if name is not None else {}),
            **({"pipelineJson": pipeline_json} if pipeline_json is not None else {}),
        }
        return str(self._operate(pipeline_id or "null", "save", body))

    def release_pipeline(self, pipeline_id: str) -> None:
        self._operate(pipeline_id, "release")

    def start_pipeline(
        self,
        pipeline_id: str,
        *,
        kafka_rate: int | None = None,
        execution_mode: int = 0,
        resource_config: int | None = None,
    ) -> None:
        body: dict[str, Any] = {"executionMode": execution_mode}
        if kafka_rate is not None:
            body["kafkaRate"] = kafka_rate
        if resource_config is not None:
            body["resourceConfig"] = resource_config
        self._operate(pipeline_id, "start", body)

    def pause_pipeline(self, pipeline_id: str) -> None:
        self._operate(pipeline_id, "pause")

    def stop_pipeline(self, pipeline_id: str) -> None:
        self._operate(pipeline_id, "stop")

    def offset_lag(self, pipeline_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "GET", f"/streaming/v2.0/streaming/pipeline/{pipeline_id}/offset-lag"
        )
        return result

    def reset_offset(self, pipeline_id: str, *, to: str = "latest") -> None:
        self.call("POST", f"/streaming/v2.0/streaming/pipeline/{pipeline_id}/offset", {"to": to})

    # topics (streamcalc extension)

    def produce(self, topic: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"/streaming/v2.0/topics/{topic}/records", None, records)
        return result

    def consume(self, topic: str, *, offset: int = 0, limit: int = 100, partition: int = 0) -> dict[str, Any]:
        params = {"offset": str(offset), "limit": str(limit), "partition": str(partition)}
        result: dict[str, Any] = self.call("GET", f"/streaming/v2.0/topics/{topic}/records", params)
        return result

    # transport

    def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> Any:
        """One signed call; returns `data`, raises EnosError on a non-zero code."""
        response = self.request(method, path, params, body)
        doc = _envelope(response)
        if doc.get("code") != 0:
            raise EnosError(
                int(doc.get("code", response.status_code)), str(doc.get("msg")), doc.get("requestId")
            )
        return doc.get("data")

    def request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None
    ) -> httpx.Response:
        """One signed request, its answer as received (e.g. to keep a large state as bytes); a
        `bytes` body is sent as it is (byte for byte as another client sends it), any other as
        compact JSON."""
        query = {**(params or {}), "orgId": self.org_id}
        if isinstance(body, bytes) or body is None:
            raw = body or b""
        else:
            raw = json.dumps(body, separators=(",", ":")).encode()
        token = self._access_token()
        ts = str(self._now_ms())
        headers = {
            "apim-accesstoken": token,
            "apim-timestamp": ts,
            "apim-signature": sign(token, list(query.items()), raw, ts, self._app_secret),
            "Content-Type": "application/json;charset=utf-8",
        }
        return self._http.request(method, path, params=query, content=raw or None, headers=headers)

    def _stage_state(
        self,
        params: dict[str, str],
        pipeline_id: str,
        stage: str,
        asset_ids: Iterable[str],
        point_ids: Iterable[str],
    ) -> Any:
        body = {
            "pipelineId": pipeline_id,
            "stageInstanceName": stage,
            "assetIds": ",".join(asset_ids),
            "pointIds": ",".join(point_ids),
        }
        return self.call("POST", "/streaming/v2.0/stage-state", params, body)

    def _operate(self, pipeline_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
        return self.call(
            "POST", f"/streaming/v2.0/streaming/pipeline/{pipeline_id}", {"action": action}, body
        )

    def _access_token(self) -> str:
        now = self._now_ms()
        if self._token is None or now >= self._token_expires_ms - TOKEN_MARGIN_S * 1000:
            ts = now
            body = {
                "appKey": self._app_key,
                "timestamp": ts,
                "encryption": token_request_encryption(self._app_key, ts, self._app_secret),
            }
            doc = _envelope(self._http.post("/apim-token-service/v2.0/token/get", json=body))
            if doc.get("status") != 0:
                raise EnosError(int(doc.get("status", -1)), str(doc.get("msg")))
            self._token = str(doc["data"]["accessToken"])
            self._token_expires_ms = now + int(doc["data"]["expire"]) * 1000
        return self._token


def _bool(value: bool) -> str:
    return "true" if value else "false"
