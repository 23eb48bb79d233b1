"""The OpenAPI spec documents every endpoint, and docs/openapi.json is the spec of this code."""

from __future__ import annotations

import json
from pathlib import Path

from streamcalc.service.app import openapi_spec

DOCS = Path(__file__).parents[2] / "docs" / "openapi.json"
ENDPOINTS = {
    ("post", "/apim-token-service/v2.0/token/get"),
    ("post", "/apim-token-service/v2.0/token/refresh"),
    ("post", "/streaming/v2.0/stage-state"),
    ("get", "/streaming/v2.0/stage-state/deletions"),
    ("get", "/streaming/v2.0/streaming/pipelines"),
    ("get", "/streaming/v2.0/streaming/pipeline/{pipeline_id}"),
    ("post", "/streaming/v2.0/streaming/pipeline/{pipeline_id}"),
    ("get", "/streaming/v2.0/streaming/pipeline/{pipeline_id}/offset-lag"),
    ("post", "/streaming/v2.0/streaming/pipeline/{pipeline_id}/offset"),
    ("post", "/streaming/v2.0/topics/{topic}/records"),
    ("get", "/streaming/v2.0/topics/{topic}/records"),
    ("get", "/streaming/v2.0/streaming/pipeline/{pipeline_id}/activity"),
    ("get", "/streaming/v2.0/streaming/pipeline/{pipeline_id}/rejected"),
    ("get", "/streaming/v2.0/audit"),
    ("get", "/metrics"),
}


def test_every_endpoint_is_documented_with_bodies_and_the_envelope() -> None:
    spec = openapi_spec()
    found = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert found == ENDPOINTS
    for method, path in ENDPOINTS:
        operation = spec["paths"][path][method]
        assert operation["summary"] and "200" in operation["responses"]
        if method == "post" and not path.endswith("/offset"):
            assert operation["requestBody"]["content"]["application/json"]["schema"], path
    stage_state = spec["paths"]["/streaming/v2.0/stage-state"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert set(stage_state["schema"]["required"]) == {
        "pipelineId",
        "stageInstanceName",
        "assetIds",
        "pointIds",
    }
    assert set(spec["components"]["schemas"]["Envelope"]["properties"]) == {
        "code",
        "msg",
        "requestId",
        "data",
    }
    assert {"apimAccessToken", "apimTimestamp", "apimSignature", "bearer"} <= set(
        spec["components"]["securitySchemes"]
    )
    assert spec["paths"]["/apim-token-service/v2.0/token/get"]["post"]["security"] == []
    assert spec["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]


def test_the_committed_spec_is_current() -> None:
    """docs/openapi.json is regenerated with `make openapi`."""
    assert json.loads(DOCS.read_text()) == json.loads(json.dumps(openapi_spec()))
