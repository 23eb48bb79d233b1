"""Security over real HTTP: signatures, timestamps, replays, org isolation, token expiry."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import (
    APP_KEY,
    APP_SECRET,
    IN,
    ORG,
    STAGE,
    Service,
    pipeline_json,
    record,
    running_service,
    service_app,
    serving,
)

from streamcalc.catalog.sqlite import open_catalog
from streamcalc.client import EnosError, StreamcalcClient
from streamcalc.clock import ManualClock
from streamcalc.signing import sign, token_request_encryption

NOW_MS = 1_790_000_000_000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW_MS)


@pytest.fixture
def service(tmp_path: Path, clock: ManualClock) -> Iterator[Service]:
    with running_service(tmp_path, clock=clock) as svc:
        yield svc


def token(
    service: Service, ts: int = NOW_MS, app_key: str = APP_KEY, app_secret: str = APP_SECRET
) -> dict[str, Any]:
    body = {
        "appKey": app_key,
        "timestamp": ts,
        "encryption": token_request_encryption(app_key, ts, app_secret),
    }
    doc: dict[str, Any] = httpx.post(f"{service.url}/apim-token-service/v2.0/token/get", json=body).json()
    return doc


def signed_get(
    service: Service,
    access_token: str,
    *,
    ts: int = NOW_MS,
    secret: str = APP_SECRET,
    org: str = ORG,
    signature: str | None = None,
) -> httpx.Response:
    params = {"orgId": org, "pageSize": "10"}
    headers = {
        "apim-accesstoken": access_token,
        "apim-timestamp": str(ts),
        "apim-signature": signature or sign(access_token, list(params.items()), b"", ts, secret),
    }
    return httpx.get(f"{service.url}/streaming/v2.0/streaming/pipelines", params=params, headers=headers)


def test_a_signed_call_succeeds_and_the_same_token_is_reused(service: Service) -> None:
    first = token(service)
    assert first["status"] == 0 and first["data"]["expire"] > 7000
    assert token(service, NOW_MS + 1)["data"]["accessToken"] == first["data"]["accessToken"]
    response = signed_get(service, first["data"]["accessToken"])
    assert response.status_code == 200 and response.json()["code"] == 0


def test_token_service_errors(service: Service) -> None:
    assert token(service, app_key="unknown")["status"] == 1002
    assert token(service, app_secret="wrong")["status"] == 1003
    assert token(service, ts=NOW_MS - 3_600_000)["status"] == 1004
    assert token(service, ts=NOW_MS + 5)["status"] == 0
    assert token(service, ts=NOW_MS + 5)["status"] == 1001  # the same encryption again: a replay
    empty = httpx.post(f"{service.url}/apim-token-service/v2.0/token/get", json={"appKey": APP_KEY}).json()
    assert empty["status"] == 1202


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("signature", "invalid signature"),
        ("secret", "invalid signature"),
        ("stale", "timestamp"),
        ("token", "token"),
    ],
)
def test_bad_credentials_are_401_in_the_envelope(service: Service, case: str, reason: str) -> None:
    access = token(service)["data"]["accessToken"]
    response = {
        "signature": lambda: signed_get(service, access, signature="0" * 64),
        "secret": lambda: signed_get(service, access, secret="not-the-secret"),
        "stale": lambda: signed_get(service, access, ts=NOW_MS - 600_000),
        "token": lambda: signed_get(service, "f" * 64),
    }[case]()
    doc = response.json()
    assert response.status_code == 401 and doc["code"] == 401 and reason in doc["msg"] and doc["data"] is None
    assert doc["requestId"]


def test_a_replayed_request_is_refused(service: Service) -> None:
    access = token(service)["data"]["accessToken"]
    assert signed_get(service, access).json()["code"] == 0
    replay = signed_get(service, access)
    assert replay.status_code == 401 and "replayed" in replay.json()["msg"]


def test_an_expired_token_is_refused(service: Service, clock: ManualClock) -> None:
    access = token(service)["data"]["accessToken"]
    clock.advance(7_201)
    response = signed_get(service, access, ts=clock.wall_ms())
    assert response.status_code == 401 and "expired" in response.json()["msg"]


def test_no_credentials_at_all(service: Service) -> None:
    response = httpx.get(f"{service.url}/streaming/v2.0/streaming/pipelines", params={"orgId": ORG})
    assert response.status_code == 401 and response.json()["code"] == 401


def test_bearer_tokens_are_accepted(service: Service) -> None:
    access = token(service)["data"]["accessToken"]
    response = httpx.get(
        f"{service.url}/streaming/v2.0/streaming/pipelines",
        params={"orgId": ORG},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.json()["code"] == 0


def test_orgs_are_isolated_for_pipelines_topics_and_state(service: Service, clock: ManualClock) -> None:
    other = open_catalog(service.data_dir).create_account("o2")
    ticks = itertools.count()

    def now() -> int:  # one ms per call: identical token requests would be refused as replays (1001)
        return clock.wall_ms() + next(ticks)

    with (
        StreamcalcClient(service.url, ORG, APP_KEY, APP_SECRET, now_ms=now) as mine,
        StreamcalcClient(service.url, "o2", other.app_key, other.app_secret, now_ms=now) as theirs,
        StreamcalcClient(service.url, ORG, other.app_key, other.app_secret, now_ms=now) as posing,
    ):
        pid = mine.save_pipeline(None, pipeline_json())
        mine.release_pipeline(pid)
        mine.produce(IN, [record("a1", 1)])

        def code(call: Any) -> int:
            with pytest.raises(EnosError) as info:
                call()
            return info.value.code

        # another org's credentials claiming orgId=o1: refused before anything is looked up
        assert code(lambda: posing.list_pipelines()) == 61106
        assert code(lambda: posing.get_stage_state(pid, STAGE, ["a1"], ["p"])) == 61106
        assert code(lambda: posing.consume(IN)) == 61106
        # their own org, our resources: invisible
        assert code(lambda: theirs.get_pipeline(pid)) == 61108
        assert code(lambda: theirs.start_pipeline(pid)) == 61108
        assert code(lambda: theirs.get_stage_state(pid, STAGE, ["a1"], ["p"])) == 61106
        assert code(lambda: theirs.delete_stage_state(pid, STAGE, ["a1"], ["p"])) == 61106
        assert code(lambda: theirs.consume(IN)) == 61106
        assert code(lambda: theirs.produce(IN, [record("a1", 1, org="o2")])) == 61106
        assert theirs.list_pipelines()["count"] == 0
        assert mine.list_pipelines(if_released=True)["count"] == 1


def test_secrets_and_tokens_never_reach_the_log(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    access = token(service)["data"]["accessToken"]
    signed_get(service, access)
    signed_get(service, access, secret="wrong")
    text = caplog.text + json.dumps([r.args for r in caplog.records], default=str)
    assert APP_SECRET not in text and access not in text


def test_refresh_issues_a_new_token_for_a_valid_one(service: Service, clock: ManualClock) -> None:
    old = token(service)["data"]["accessToken"]
    ts = NOW_MS + 10
    body = {
        "appKey": APP_KEY,
        "timestamp": ts,
        "accessToken": old,
        "encryption": token_request_encryption(APP_KEY, ts, APP_SECRET),
    }
    doc = httpx.post(f"{service.url}/apim-token-service/v2.0/token/refresh", json=body).json()
    assert doc["status"] == 0 and doc["data"]["accessToken"] not in ("", old)
    assert signed_get(service, doc["data"]["accessToken"], ts=ts).json()["code"] == 0
    bad = {
        **body,
        "accessToken": "f" * 64,
        "timestamp": ts + 1,
        "encryption": token_request_encryption(APP_KEY, ts + 1, APP_SECRET),
    }
    assert (
        httpx.post(f"{service.url}/apim-token-service/v2.0/token/refresh", json=bad).json()["status"] == 1204
    )


def test_an_internal_failure_is_99000_without_details(tmp_path: Path) -> None:
    app = service_app(tmp_path)

    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route("/boom", boom)
    with serving(app, tmp_path) as service:
        response = httpx.get(f"{service.url}/boom")
    doc = response.json()
    assert response.status_code == 500 and doc["code"] == 99000 and doc["msg"] == "Internal Server Error."
    assert "secret" not in response.text and doc["requestId"]
