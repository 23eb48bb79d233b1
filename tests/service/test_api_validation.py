"""Requests are checked by the models of service/schemas.py, the ones the OpenAPI spec shows: each
failure is the EnOS envelope with the route's code and a message naming the parameter, and
authentication comes first. Raw bodies over HTTP, with a Bearer token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_support import APP_KEY, APP_SECRET, IN, ORG, pipeline_json, released, running_service

from streamcalc.signing import token_request_encryption

STATE = "/streaming/v2.0/stage-state"
LIST = "/streaming/v2.0/streaming/pipelines"
PIPELINE = "/streaming/v2.0/streaming/pipeline/{pid}"
RECORDS = f"/streaming/v2.0/topics/{IN}/records"
TOKEN = "/apim-token-service/v2.0/token"


def token_body(ts: int, **fields: Any) -> dict[str, Any]:
    encryption = token_request_encryption(APP_KEY, ts, APP_SECRET)
    body = {"appKey": APP_KEY, "timestamp": ts, "encryption": encryption}
    return {k: v for k, v in {**body, **fields}.items() if v is not ...}


@dataclass
class Api:
    """A running service, a Bearer token for it and a released pipeline on it."""

    url: str
    headers: dict[str, str]
    pid: str

    def answer(self, method: str, path: str, query: dict[str, str], body: Any = None) -> tuple[int, str]:
        """(code, msg) of a failed call with `query` (orgId added unless given) and `body` (bytes
        as they are, anything else as JSON)."""
        raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        response = httpx.request(
            method,
            f"{self.url}{path.format(pid=self.pid)}",
            params={"orgId": ORG, **query},
            content=raw,
            headers=self.headers,
        )
        doc = response.json()
        assert response.status_code == 200 and doc["requestId"] and doc["data"] is None, doc
        return doc["code"], doc["msg"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_service(tmp_path_factory.mktemp("validation")) as service, service.client() as client:
        token = httpx.post(f"{service.url}{TOKEN}/get", json=token_body(time.time_ns() // 1_000_000)).json()
        yield Api(service.url, {"Authorization": f"Bearer {token['data']['accessToken']}"}, released(client))


def state_body(**fields: Any) -> dict[str, Any]:
    body = {"pipelineId": "p", "stageInstanceName": "s", "assetIds": "a", "pointIds": "p"}
    return {k: v for k, v in {**body, **fields}.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b"{oops", "Missing param body: Invalid JSON: key must be a string at line 1 column 2"),
        (b"", "Missing param body: Invalid JSON: EOF while parsing a value at line 1 column 0"),
        ([1], "Missing param body: Input should be an object"),
        (state_body(pipelineId=...), "Missing param pipelineId: Field required"),
        (state_body(pipelineId=" "), "Missing param pipelineId: String should have at least 1 character"),
        (state_body(stageInstanceName=7), "Missing param stageInstanceName: Input should be a valid string"),
        (state_body(assetIds=" , ,"), "Missing param assetIds: expected comma-separated ids"),
        (state_body(pointIds=7), "Missing param pointIds: expected comma-separated ids"),
    ],
)
def test_a_stage_state_body_names_what_is_missing_or_malformed(api: Api, body: Any, msg: str) -> None:
    assert api.answer("POST", STATE, {"action": "get"}, body) == (61102, msg)


def test_a_stage_state_body_may_carry_unknown_fields(api: Api) -> None:
    body = {**state_body(pipelineId=api.pid, stageInstanceName="PointSelector_01"), "extra": [1]}

    assert api.answer("POST", STATE, {"action": "get"}, body)[0] == 61107  # got past the body


@pytest.mark.parametrize(
    ("method", "path", "query", "msg"),
    [
        ("POST", STATE, {}, "Missing param action: Field required"),
        (
            "POST",
            STATE,
            {"action": "drop"},
            "Missing param action: Input should be 'get', 'delete' or 'restore'",
        ),
        ("POST", PIPELINE, {}, "Missing param action: Field required"),
        (
            "POST",
            PIPELINE,
            {"action": "jump"},
            "Missing param action: Input should be 'save', 'release', 'start', 'pause' or 'stop'",
        ),
        (
            "POST",
            f"{PIPELINE}/offset",
            {"to": "middle"},
            "Missing param to: Input should be 'earliest' or 'latest'",
        ),
        ("GET", PIPELINE, {"ifReleased": "maybe"}, "Missing param ifReleased: expected true or false"),
        ("GET", LIST, {"pageSize": "0"}, "Missing param pageSize: expected a positive integer"),
        ("GET", LIST, {"pageNo": "²"}, "Missing param pageNo: expected a positive integer"),  # was a 500
        ("GET", LIST, {"isSystem": "yes"}, "Missing param isSystem: expected true or false"),
        ("GET", LIST, {"orgId": ""}, "Missing param orgId: String should have at least 1 character"),
        ("GET", RECORDS, {"limit": "0"}, "Missing param limit: Input should be greater than or equal to 1"),
        (
            "GET",
            RECORDS,
            {"limit": "10001"},
            "Missing param limit: Input should be less than or equal to 10000",
        ),
        (
            "GET",
            RECORDS,
            {"offset": "-1"},
            "Missing param offset: Input should be greater than or equal to 0",
        ),
        (
            "GET",
            RECORDS,
            {"partition": "x"},
            "Missing param partition: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_a_query_parameter_is_named_with_what_it_should_be(
    api: Api,
    method: str,
    path: str,
    query: dict[str, str],
    msg: str,
) -> None:
    assert api.answer(method, path, query) == (61102, msg)


def test_a_missing_org_id_is_named(api: Api) -> None:
    doc = httpx.get(f"{api.url}{LIST}", headers=api.headers).json()

    assert (doc["code"], doc["msg"]) == (61102, "Missing param orgId: Field required")


def test_booleans_and_numbers_come_as_java_and_python_clients_send_them(api: Api) -> None:
    query = {"pageSize": " 1000 ", "pageNo": "1", "isSystem": "False", "ifReleased": "TRUE", "other": "x"}
    response = httpx.get(f"{api.url}{LIST}", params={"orgId": ORG, **query}, headers=api.headers).json()

    assert response["code"] == 0 and "count" in response["data"]


@pytest.mark.parametrize(
    ("action", "body", "msg"),
    [
        ("save", b"{oops", "body: Invalid JSON: key must be a string at line 1 column 2"),
        ("save", [], "body: Input should be an object"),
        ("save", {"name": 5}, "name: Input should be a valid string"),
        ("save", {"pipelineJson": 42}, "pipelineJson: expected an object or a JSON string"),
        ("save", {"templateType": [1]}, "templateType: Input should be a valid integer"),
        ("start", b"[]", "body: Input should be an object"),
    ],
)
def test_a_save_or_start_body_is_61100_naming_the_field(api: Api, action: str, body: Any, msg: str) -> None:
    assert api.answer("POST", PIPELINE, {"action": action}, body) == (
        61100,
        f"The Stream configuration JSON is invalid: {msg}",
    )


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ({"executionMode": [0]}, "executionMode must be 0 (standalone) or 1 (cluster), got [0]"),
        ({"executionMode": "2"}, "executionMode must be 0 (standalone) or 1 (cluster), got '2'"),
        ({"resourceConfig": "1e3"}, "resourceConfig must be a positive number, got '1e3'"),
        ({"resourceConfig": {"server": "17"}}, "resourceConfig.server must be at most 16 CUs, got '17'"),
        ({"resourceConfig": {"yarn": [2]}}, "resourceConfig.yarn must be an object, got [2]"),
        (
            {"executionMode": 1, "resourceConfig": {"yarn": {"workerCount": "two"}}},
            "resourceConfig.yarn.workerCount must be a positive number, got 'two'",
        ),
        ({"resourceConfig": {"advanced": "fast"}}, "resourceConfig.advanced must be an object, got 'fast'"),
    ],
)
def test_execution_mode_and_resource_config_are_61100_naming_the_field(
    api: Api, body: dict[str, Any], msg: str
) -> None:
    """The cluster object's fields are checked in either mode, though only server is used."""
    assert api.answer("POST", PIPELINE, {"action": "start"}, body) == (61100, msg)


@pytest.mark.parametrize(
    ("rate", "msg"),
    [("fast", "kafkaRate must be a number, got 'fast'"), (-1, "kafkaRate must be >= 0, got -1")],
)
def test_kafka_rate_is_a_number_or_a_numeric_string(api: Api, rate: Any, msg: str) -> None:
    assert api.answer("POST", PIPELINE, {"action": "start"}, {"kafkaRate": rate}) == (61100, msg)


def test_a_save_keeps_the_given_fields_as_they_came(api: Api) -> None:
    body = {"pipelineJson": pipeline_json(), "templateType": "1", "messageChannel": 0, "desc": "d", "x": 1}
    response = httpx.post(
        f"{api.url}{PIPELINE.format(pid='null')}",
        params={"orgId": ORG, "action": "save"},
        json=body,
        headers=api.headers,
    ).json()
    details = httpx.get(
        f"{api.url}{PIPELINE.format(pid=response['data'])}", params={"orgId": ORG}, headers=api.headers
    ).json()["data"]

    assert (details["templateType"], details["messageChannel"], details["desc"]) == ("1", 0, "d")
    assert "x" not in details and details["pipelineName"] == ""


@pytest.mark.parametrize(
    ("body", "msg"), [(b"{oops", "body: Invalid JSON"), ({}, "body: Input should be a valid array")]
)
def test_an_ingest_body_is_a_json_array(api: Api, body: Any, msg: str) -> None:
    code, message = api.answer("POST", RECORDS, {}, body)

    assert code == 61102 and message.startswith(f"Missing param {msg}")


def test_authentication_comes_before_the_checks(api: Api) -> None:
    response = httpx.post(f"{api.url}{STATE}", params={"orgId": ORG, "action": "drop"}, content=b"{oops")

    assert response.status_code == 401 and response.json()["code"] == 401


@pytest.mark.parametrize(
    ("body", "status", "msg"),
    [
        (b"", 1202, "parameter empty: appKey"),
        (b"{oops", 1202, "parameter empty: body"),
        (b"[]", 1202, "parameter empty: body"),
        ({"timestamp": ...}, 1202, "parameter empty: timestamp"),
        ({"encryption": ""}, 1202, "parameter empty: encryption"),
        ({"appKey": None}, 1202, "parameter empty: appKey"),
        ({"appKey": 5, "timestamp": ...}, 1202, "parameter empty: timestamp"),  # empty before malformed
        ({"appKey": 5}, 1004, "invalid parameter: appKey: Input should be a valid string"),  # was 1002
        (
            {"timestamp": "12x"},
            1004,
            "invalid parameter: timestamp: Input should be a valid integer, unable to parse string as an "
            "integer",
        ),
    ],
)
def test_a_token_request_names_the_empty_or_invalid_parameter(
    api: Api, body: Any, status: int, msg: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(token_body(0, **body)).encode()
    doc = httpx.post(f"{api.url}{TOKEN}/get", content=raw).json()

    assert (doc["status"], doc["msg"], doc["data"]) == (status, msg, None)


def test_a_refresh_with_an_access_token_that_is_no_string_is_1004(api: Api) -> None:
    ts = time.time_ns() // 1_000_000 + 11
    doc = httpx.post(f"{api.url}{TOKEN}/refresh", json=token_body(ts, accessToken=5)).json()  # was a 500

    assert (doc["status"], doc["msg"]) == (
        1004,
        "invalid parameter: accessToken: Input should be a valid string",
    )
