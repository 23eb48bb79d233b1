"""The public EnOS sample clients' calls of the seven APIs, as they put them on the wire, over
real HTTP. Signed through the test account: their Poseidon `apim-accesstoken` is sealed with
the EnOS gateway's key, which no compatible server holds (docs/api.md).

What each sends (method, path, query with its value types, body fields with theirs), read from:

- EnvisionIot/sample-code-python, branch main @41f1e00, `streamprocessing/*.py` and
  `streamprocessing/operatepipeline/*.py`: one function per API whose arguments the caller
  fills; enos-poseidon's `urlopen` sends the body as `json.dumps` gives it (", " and ": "),
  as POST when there is one; the query comes from requests' `PreparedRequest`, so Python
  booleans go as `True`/`False` and ints as digits.
  `listPipelines`: pageSize, pageNo (int), isSystem, ifReleased (bool).
  `getPipelineDetails`: ifReleased (bool).
  `savePipeline`: {version, name, templateType (int), templateName, messageChannel (int),
  pipelineJson (str: JSON text)}. `startPipeline`: {executionMode (int), kafkaRate (int),
  resourceConfig (dict, `{}` when the caller asks for no resources)}.
  release/pause/stop and `resetPipelineOffset`: POST without a body.
  Get/Delete Stage State: action and orgId, {pipelineId, stageInstanceName, assetIds, pointIds}
  all strings.
- the same repo, branch alert-service-sample-code @e57cbac, `streamprocessing/*.py` with the
  values filled in (`streamProcessingApp.py`): `listPipeline` sends orgId only,
  `listPipeline_optionalParameters` pageSize "5", pageNo "1", isSystem False, ifReleased True;
  `startPipeline` {"executionMode": "0", "kafkaRate": "500", "resourceConfig": {"server": "0.5"}};
  release/pause/stop/reset send the body `{}`; `savePipeline`/`createPipeline` (id `null`)
  send templateType "5", messageChannel "0" and a pipelineJson object {piDetail, points}.
- EnvisionIot/sample-code-java, branch main @d9f45a0, `streamprocessing/*.java` and
  `streamprocessing/operatepipeline/*.java` (Poseidon, fastjson: compact JSON): query values
  by `String.valueOf` (`true`/`false`, digits); ListPipelines pageSize, pageNo, isSystem,
  ifReleased; GetPipelineDetails ifReleased; SavePipeline the Python main body with
  pipelineJson a String; StartPipeline {executionMode (int), kafkaRate (int), resourceConfig
  (a Map)}; the others no body params.
- the same repo, branch alert-service-sample-code @780fab6,
  `src/main/java/com/envisioniot/example/sample/streamprocessing/*.java`: ListPipelines
  pageSize "5" and ifReleased "true" only; GetPipelineDetails orgId only; SavePipeline on an
  existing id {version, name, desc "", templateType 5, templateName, messageChannel "0",
  piDetail false, points [...]} without pipelineJson; StartPipeline {"executionMode": "0",
  "kafkaRate": "1000"} without resourceConfig (it builds {"server": "1"} and leaves it unsent).

Found and fixed (each was 61100 before): resourceConfig `{}` and `{"server": "0.5"}`, and an
object with yarn/advanced in standalone mode. Left as it is: the alert-service Python branch's
template pipelineJson {piDetail, points} is EnOS's own template format, documented nowhere;
streamcalc's templates have their own document (docs/templates.md), so that save is 61100.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import IN, ORG, STAGE, pipeline_json, record, running_service, wait_for

from streamcalc.client import StreamcalcClient
from streamcalc.runtime.worker_spec import read_spec

STATE = "/streaming/v2.0/stage-state"
LIST = "/streaming/v2.0/streaming/pipelines"
PIPELINE = "/streaming/v2.0/streaming/pipeline/"
TOPICS = itertools.count()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("enos-samples")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[StreamcalcClient]:
    with running_service(data_dir) as service, service.client() as c:
        yield c


def python_body(body: dict[str, Any]) -> bytes:
    """A body as enos-poseidon sends it."""
    return json.dumps(body).encode()


def java_body(body: dict[str, Any]) -> bytes:
    """A body as Poseidon for Java (fastjson) sends it."""
    return json.dumps(body, separators=(",", ":")).encode()


def send(client: StreamcalcClient, method: str, path: str, query: dict[str, str], body: bytes | None) -> Any:
    """`data` of a call answered with code 0 (orgId is added to `query`)."""
    doc = client.request(method, path, query, body).json()
    assert doc["code"] == 0, doc
    return doc["data"]


def python_save(in_topic: str = IN) -> bytes:
    return python_body(
        {
            "version": "0.1.0",
            "name": "python sample",
            "templateType": 1,
            "templateName": "Origin Template",
            "messageChannel": 0,
            "pipelineJson": json.dumps(pipeline_json(in_topic)),
        }
    )


def test_the_python_sample_client_runs_a_pipeline_through(client: StreamcalcClient) -> None:
    """sample-code-python main, in the order a user calls its functions."""
    pid = send(client, "POST", PIPELINE + "null", {"action": "save"}, python_save())
    assert send(client, "POST", PIPELINE + pid, {"action": "release"}, None) == ""
    listed = send(
        client,
        "GET",
        LIST,
        {"pageSize": "10", "pageNo": "1", "isSystem": "False", "ifReleased": "True"},
        None,
    )
    assert pid in [p["pipelineId"] for p in listed["pipelines"]]
    details = send(client, "GET", PIPELINE + pid, {"ifReleased": "False"}, None)
    assert details["pipelineName"] == "python sample" and details["pipelineJson"] == pipeline_json()

    start = {"executionMode": 0, "kafkaRate": 1000, "resourceConfig": {}}
    assert send(client, "POST", PIPELINE + pid, {"action": "start"}, python_body(start)) == ""
    assert send(client, "GET", f"{PIPELINE}{pid}/offset-lag", {}, None)["topicName"] == IN

    client.produce(IN, [record("py1", 4)])
    stage = python_body({"pipelineId": pid, "stageInstanceName": STAGE, "assetIds": "py1", "pointIds": "p"})
    wait_for(lambda: send(client, "POST", STATE, {"action": "get"}, stage)["items"], what="state of py1")
    assert send(client, "POST", PIPELINE + pid, {"action": "pause"}, None) == ""
    assert send(client, "POST", STATE, {"action": "delete"}, stage) is True
    assert send(client, "POST", f"{PIPELINE}{pid}/offset", {}, None) == ""
    assert send(client, "POST", PIPELINE + pid, {"action": "stop"}, None) == ""


def test_the_java_sample_client_runs_a_pipeline_through(client: StreamcalcClient) -> None:
    """sample-code-java main."""
    save = {
        "version": "0.1.0",
        "name": "java sample",
        "templateType": 1,
        "templateName": "Origin Template",
        "messageChannel": 0,
        "pipelineJson": json.dumps(pipeline_json(), separators=(",", ":")),
    }
    pid = send(client, "POST", PIPELINE + "null", {"action": "save"}, java_body(save))
    send(client, "POST", PIPELINE + pid, {"action": "release"}, None)
    query = {"pageSize": "10", "pageNo": "1", "isSystem": "false", "ifReleased": "true"}
    assert pid in [p["pipelineId"] for p in send(client, "GET", LIST, query, None)["pipelines"]]
    assert (
        send(client, "GET", PIPELINE + pid, {"ifReleased": "true"}, None)["pipelineJson"] == pipeline_json()
    )

    start = {"executionMode": 0, "kafkaRate": 1000, "resourceConfig": {"server": "1"}}
    send(client, "POST", PIPELINE + pid, {"action": "start"}, java_body(start))
    assert send(client, "GET", f"{PIPELINE}{pid}/offset-lag", {}, None)["pipelineId"] == pid
    stage = java_body({"pipelineId": pid, "stageInstanceName": STAGE, "assetIds": "j1", "pointIds": "p"})
    send(client, "POST", PIPELINE + pid, {"action": "pause"}, None)
    assert send(client, "POST", STATE, {"action": "get"}, stage) == {"items": []}
    assert send(client, "POST", STATE, {"action": "delete"}, stage) is True
    send(client, "POST", f"{PIPELINE}{pid}/offset", {}, None)
    send(client, "POST", PIPELINE + pid, {"action": "stop"}, None)


def test_the_alert_service_branches_send_strings_and_empty_bodies(client: StreamcalcClient) -> None:
    """Both repos' alert-service-sample-code branches: numbers as strings, `{}` bodies, a save
    of template fields without pipelineJson, a start without resourceConfig or with 0.5 CU."""
    pid = send(client, "POST", PIPELINE + "null", {"action": "save"}, python_save())
    java_save = {
        "version": "0.1.0",
        "name": "pipelineTestSP",
        "desc": "",
        "templateType": 5,
        "templateName": "Time Window Aggregation",
        "messageChannel": "0",
        "piDetail": False,
        "points": [{"inputPointId": "test_raw", "outputPointId": "test_5min", "piDetailWindowSize": "5m"}],
    }
    assert send(client, "POST", PIPELINE + pid, {"action": "save"}, java_body(java_save)) == pid
    assert send(client, "POST", PIPELINE + pid, {"action": "release"}, python_body({})) == ""
    assert send(client, "GET", LIST, {}, None)["count"] >= 0  # the drafts
    for query in (
        {"pageSize": "5", "pageNo": "1", "isSystem": "False", "ifReleased": "True"},
        {"pageSize": "5", "ifReleased": "true"},
    ):
        assert send(client, "GET", LIST, query, None)["count"] >= 1
    assert send(client, "GET", PIPELINE + pid, {}, None)["pipelineName"] == "pipelineTestSP"

    java_start = {"executionMode": "0", "kafkaRate": "1000"}
    send(client, "POST", PIPELINE + pid, {"action": "start"}, java_body(java_start))
    send(client, "POST", PIPELINE + pid, {"action": "pause"}, python_body({}))
    python_start = {"executionMode": "0", "kafkaRate": "500", "resourceConfig": {"server": "0.5"}}
    send(client, "POST", PIPELINE + pid, {"action": "start"}, python_body(python_start))
    send(client, "POST", PIPELINE + pid, {"action": "stop"}, python_body({}))
    assert send(client, "POST", f"{PIPELINE}{pid}/offset", {}, python_body({})) == ""


def test_the_python_branch_template_pipeline_json_is_61100_naming_the_mismatch(
    client: StreamcalcClient,
) -> None:
    """EnOS's own template config (undocumented) is not streamcalc's template document."""
    body = {
        "version": "0.1.0",
        "name": "Python_PipelineTest2",
        "templateType": "5",
        "templateName": "Time Window Aggregation",
        "messageChannel": "0",
        "pipelineJson": {"piDetail": True, "points": [{"inputPointId": "m :: p", "outputPointId": "m :: q"}]},
    }
    doc = client.request("POST", PIPELINE + "null", {"action": "save"}, python_body(body)).json()

    assert doc["code"] == 61100 and doc["msg"].startswith("The Stream configuration JSON is invalid")


@pytest.mark.parametrize(
    ("config", "workers"),
    [
        (..., 1),
        ({}, 1),
        (None, 1),
        (2, 2),
        ("2", 2),
        (1.5, 2),
        ({"server": "0.5"}, 1),
        ({"server": 3}, 3),
        ({"server": "2", "yarn": {"workerCount": 2, "master": 1, "slave": "2"}, "advanced": {"a": "b"}}, 2),
    ],
    ids=["absent", "{}", "null", "2", "'2'", "1.5", "server 0.5", "server 3", "cluster object"],
)
def test_resource_config_as_enos_documents_it_runs_one_worker_per_cu_begun(
    data_dir: Path, client: StreamcalcClient, config: Any, workers: int
) -> None:
    topic = f"RESOURCES_{next(TOPICS)}_{ORG}"  # made with a partition per worker
    pid = send(client, "POST", PIPELINE + "null", {"action": "save"}, python_save(topic))
    send(client, "POST", PIPELINE + pid, {"action": "release"}, None)
    body = {"executionMode": 0, "kafkaRate": 1000} | ({} if config is ... else {"resourceConfig": config})

    send(client, "POST", PIPELINE + pid, {"action": "start"}, python_body(body))

    assert read_spec(data_dir, pid).runner_options.workers == workers
    send(client, "POST", PIPELINE + pid, {"action": "stop"}, None)
