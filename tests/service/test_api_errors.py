"""Every documented error code and status guard, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import (
    IN,
    ORG,
    STAGE,
    Service,
    code_of,
    pipeline_json,
    record,
    released,
    running_service,
    service_app,
    serving,
)

from streamcalc.backends import BackendUnavailable
from streamcalc.client import StreamcalcClient
from streamcalc.log import LogUnavailable
from streamcalc.state import StateUnavailable


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("errors")) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> Iterator[StreamcalcClient]:
    with service.client() as c:
        yield c


def state_body(**fields: Any) -> dict[str, Any]:
    body = {"pipelineId": "p", "stageInstanceName": STAGE, "assetIds": "a1", "pointIds": "p"}
    return {k: v for k, v in {**body, **fields}.items() if v is not ...}


# stage state


MISSING_OR_MALFORMED = [
    (field, bad)
    for field in ("pipelineId", "stageInstanceName", "assetIds", "pointIds")
    for bad in (..., "", "  ", 7, *([" , ,"] if field in ("assetIds", "pointIds") else []))
]


@pytest.mark.parametrize(("field", "bad"), MISSING_OR_MALFORMED)
def test_stage_state_names_a_missing_or_malformed_parameter(
    client: StreamcalcClient, field: str, bad: Any
) -> None:
    code, msg = code_of(
        lambda: client.call(
            "POST", "/streaming/v2.0/stage-state", {"action": "get"}, state_body(**{field: bad})
        )
    )
    assert code == 61102 and field in msg


def test_stage_state_needs_an_action_and_a_json_object(client: StreamcalcClient) -> None:
    assert (
        code_of(lambda: client.call("POST", "/streaming/v2.0/stage-state", {"action": "drop"}, state_body()))[
            0
        ]
        == 61102
    )
    assert (
        code_of(lambda: client.call("POST", "/streaming/v2.0/stage-state", {"action": "get"}, [1]))[0]
        == 61102
    )


def test_more_than_100k_keys_is_61105_and_exactly_100k_is_fine(client: StreamcalcClient) -> None:
    pid = released(client)
    assets = [f"a{i}" for i in range(400)]
    points = [f"p{i}" for i in range(250)]  # 100,000 exactly
    assert client.get_stage_state(pid, STAGE, assets, points) == []
    code, msg = code_of(lambda: client.get_stage_state(pid, STAGE, [*assets, "one-more"], points))
    assert code == 61105 and "Too many points" in msg


def test_duplicates_and_blanks_count_once(client: StreamcalcClient) -> None:
    pid = released(client)
    assets = ",".join(["a1"] * 200_000)  # one asset, written many times
    body = {"pipelineId": pid, "stageInstanceName": STAGE, "assetIds": f" {assets} , ", "pointIds": "p, p ,"}
    assert client.call("POST", "/streaming/v2.0/stage-state", {"action": "get"}, body) == {"items": []}


def test_unknown_pipeline_is_61106_stateless_stage_61107_unknown_stage_61102(
    client: StreamcalcClient,
) -> None:
    pid = released(client)
    assert code_of(lambda: client.get_stage_state("no-such-pipeline", STAGE, ["a"], ["p"]))[0] == 61106
    assert code_of(lambda: client.get_stage_state(pid, "PointSelector_01", ["a"], ["p"]))[0] == 61107
    code, msg = code_of(lambda: client.get_stage_state(pid, "Nope_01", ["a"], ["p"]))
    assert code == 61102 and "stageInstanceName" in msg


@pytest.mark.parametrize("status", ["PUBLISHED", "RUNNING", "STOPPED"])
def test_delete_only_while_paused(client: StreamcalcClient, status: str) -> None:
    pid = released(client)
    if status in ("RUNNING", "STOPPED"):
        client.start_pipeline(pid)
    if status == "STOPPED":
        client.stop_pipeline(pid)
    code, msg = code_of(lambda: client.delete_stage_state(pid, STAGE, ["a1"], ["p"]))
    assert code == 61199 and "PAUSED" in msg and status in msg
    if status == "RUNNING":
        client.stop_pipeline(pid)


# pipeline guards


def test_lifecycle_guards(client: StreamcalcClient) -> None:
    pid = client.save_pipeline(None, pipeline_json())
    assert code_of(lambda: client.start_pipeline(pid))[0] == 61165  # never released
    assert code_of(lambda: client.pause_pipeline(pid))[0] == 61152
    assert code_of(lambda: client.stop_pipeline(pid))[0] == 61152
    client.release_pipeline(pid)
    assert code_of(lambda: client.reset_offset(pid))[0] == 61168  # PUBLISHED: neither paused nor stopped
    client.start_pipeline(pid)
    assert code_of(lambda: client.start_pipeline(pid))[0] == 61165
    assert code_of(lambda: client.release_pipeline(pid))[0] == 61169
    assert code_of(lambda: client.reset_offset(pid))[0] == 61168
    client.pause_pipeline(pid)
    assert code_of(lambda: client.pause_pipeline(pid))[0] == 61152
    client.release_pipeline(pid)  # allowed while paused
    client.reset_offset(pid, to="earliest")
    client.stop_pipeline(pid)
    assert code_of(lambda: client.stop_pipeline(pid))[0] == 61152
    client.reset_offset(pid)


@pytest.mark.parametrize(
    "action", ["details", "release", "start", "pause", "stop", "offset-lag", "reset", "save"]
)
def test_unknown_pipeline_is_61108(client: StreamcalcClient, action: str) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "details": lambda: client.get_pipeline("missing"),
        "release": lambda: client.release_pipeline("missing"),
        "start": lambda: client.start_pipeline("missing"),
        "pause": lambda: client.pause_pipeline("missing"),
        "stop": lambda: client.stop_pipeline("missing"),
        "offset-lag": lambda: client.offset_lag("missing"),
        "reset": lambda: client.reset_offset("missing"),
        "save": lambda: client.save_pipeline("missing", pipeline_json()),
    }
    assert code_of(calls[action])[0] == 61108


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        json.dumps({"stages": []}),
        json.dumps({"stages": [{"instanceName": "PointSelector_01", "config": {"points": ["bad"]}}]}),
        42,
    ],
)
def test_invalid_pipeline_json_is_61100(client: StreamcalcClient, bad: Any) -> None:
    code, msg = code_of(
        lambda: client.call(
            "POST",
            "/streaming/v2.0/streaming/pipeline/null",
            {"action": "save"},
            {"name": "x", "pipelineJson": bad},
        )
    )
    assert code == 61100 and "invalid" in msg


def test_save_accepts_json_strings_pipeline_name_and_numbers_as_strings(client: StreamcalcClient) -> None:
    pid = client.call(
        "POST",
        "/streaming/v2.0/streaming/pipeline/null",
        {"action": "save"},
        {
            "pipelineName": "as string",
            "templateType": 1,
            "messageChannel": "0",
            "pipelineJson": json.dumps(pipeline_json()),
        },
    )
    details = client.get_pipeline(pid)
    assert (
        details["pipelineName"] == "as string"
        and details["pipelineJson"]["stages"][0]["config"]["topic"] == IN
    )
    client.release_pipeline(pid)
    client.call(
        "POST",
        f"/streaming/v2.0/streaming/pipeline/{pid}",
        {"action": "start"},
        {"executionMode": "0", "kafkaRate": "1000"},
    )
    assert client.get_pipeline(pid)["status"] == "RUNNING"
    assert (
        code_of(lambda: client.call("POST", f"/streaming/v2.0/streaming/pipeline/{pid}", {"action": "jump"}))[
            0
        ]
        == 61102
    )
    client.stop_pipeline(pid)


def test_list_pipelines_pages_and_filters(client: StreamcalcClient) -> None:
    before = client.list_pipelines(page_size=1000, if_released=True)["count"]
    drafts_before = client.list_pipelines(page_size=1000)["count"]
    ids = [client.save_pipeline(None, pipeline_json(), name=f"n{i}") for i in range(3)]
    client.release_pipeline(ids[0])
    released_page = client.list_pipelines(page_size=1000, if_released=True)
    assert released_page["count"] == before + 1 and ids[0] in [
        p["pipelineId"] for p in released_page["pipelines"]
    ]
    drafts = client.list_pipelines(page_size=2, page_no=1)
    assert drafts["count"] == drafts_before + 2 and len(drafts["pipelines"]) == 2
    assert client.list_pipelines(is_system=True) == {"count": 0, "pipelines": []}
    assert all(p["orgId"] == ORG for p in released_page["pipelines"])
    assert (
        code_of(lambda: client.call("GET", "/streaming/v2.0/streaming/pipelines", {"pageSize": "0"}))[0]
        == 61102
    )


def test_ingest_rejects_bad_records_with_reasons_and_keeps_good_ones(client: StreamcalcClient) -> None:
    result = client.produce(
        IN, [record("a1", 1), {**record("a1", 1), "time": -5}, "x", record("a1", 2, org="o9")]
    )
    assert result["count"] == 1
    assert [r["index"] for r in result["rejected"]] == [1, 2, 3]
    assert "$.time" in result["rejected"][0]["reason"] and "o9" in result["rejected"][2]["reason"]


# backends


def test_a_failing_state_store_is_503_in_the_envelope_without_details(tmp_path: Path) -> None:
    app = service_app(tmp_path)
    with serving(app, tmp_path) as service, service.client() as client:
        pid = released(client)
        app.state.backends.state.store(pid).close()  # its storage gone, as a failed disk would be

        code, msg = code_of(lambda: client.get_stage_state(pid, STAGE, ["a1"], ["p"]))

    assert (code, msg) == (503, "Service unavailable: the state store failed; retry later.")


@pytest.mark.parametrize(
    ("error", "what"),
    [
        (StateUnavailable("LMDB: /srv/state/p1: No space left"), "the state store"),
        (LogUnavailable("LMDB: /srv/log: Input/output error"), "the log"),
        (BackendUnavailable("--catalog sqlite:///srv/c.sqlite3: cannot open it"), "a backend"),
    ],
)
def test_every_backend_error_answers_503_with_what_failed(
    tmp_path: Path, error: Exception, what: str
) -> None:
    app = service_app(tmp_path)

    def fail() -> None:
        raise error

    app.add_api_route("/fail", fail)
    with serving(app, tmp_path) as service:
        response = httpx.get(f"{service.url}/fail")
    doc = response.json()
    assert response.status_code == 503 and doc["code"] == 503 and doc["requestId"]
    assert doc["msg"] == f"Service unavailable: {what} failed; retry later." and "/srv" not in response.text


def test_a_start_on_state_of_one_process_is_61165_naming_it(tmp_path: Path) -> None:
    with running_service(tmp_path, backends={"state": "memory"}) as service, service.client() as client:
        pid = released(client)

        code, msg = code_of(lambda: client.start_pipeline(pid))

        assert client.get_pipeline(pid)["status"] == "PUBLISHED"
    assert code == 61165
    assert msg == (
        f"cannot start pipeline {pid}: --state memory is reachable from this process only, "
        "and its worker processes need a log and state they can open too"
    )
