"""/metrics over real HTTP, parsed with prometheus_client's parser: the workers' committed
counts, lag, state keys and deletes move with the work; who may scrape what."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from api_support import (
    APP_KEY,
    APP_SECRET,
    IN,
    ORG,
    STAGE,
    Service,
    access_token,
    other_org,
    record,
    released,
    running_service,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families

from streamcalc.runtime.stats import stats_dir

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "streamcalc.json"
METRICS_TOKEN = "operator-metrics-token-for-tests"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(service: Service, token: str | None = METRICS_TOKEN) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{service.url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scrape_until(service: Service, expected: float, name: str, **labels: str) -> Samples:
    """The first scrape in which the sample `name{labels}` is `expected`."""

    def scraped() -> Samples | None:
        samples = scrape(service)
        return samples if value(samples, name, **labels) == expected else None

    result: Samples = wait_for(scraped, what=f"{name}{labels} == {expected}")
    return result


def test_metrics_move_with_the_work(tmp_path: Path) -> None:
    with running_service(tmp_path, metrics_token=METRICS_TOKEN) as service, service.client() as client:
        pid = released(client)
        before = scrape(service)
        assert value(before, "streamcalc_pipeline_status", org=ORG, pipeline=pid, status="PUBLISHED") == 1
        assert value(before, "streamcalc_records_in_total", org=ORG, pipeline=pid, stage=STAGE) is None
        assert any(name == "streamcalc_build_info" for name, _ in before)

        client.start_pipeline(pid)
        good = [record(f"a{i}", 1.0, i) for i in range(5)]
        client.produce(IN, [*good, record("a0", "not a number", 10)])  # type: ignore[arg-type]

        at = {"org": ORG, "pipeline": pid}
        scrape_until(service, 6, "streamcalc_records_in_total", **at, stage=STAGE)
        during = scrape_until(
            service, 5, "streamcalc_state_keys", **at, stage=STAGE
        )  # counted a moment later
        assert value(during, "streamcalc_pipeline_status", **at, status="RUNNING") == 1
        assert value(during, "streamcalc_pipeline_status", **at, status="PUBLISHED") == 0
        assert value(during, "streamcalc_records_in_total", **at, stage="EDHKafkaConsumer_01") == 6
        assert value(during, "streamcalc_records_out_total", **at, stage=STAGE) == 5
        assert value(during, "streamcalc_records_rejected_total", **at, stage=STAGE) == 1
        assert value(during, "streamcalc_records_out_total", **at, stage="EDHKafkaProducer_01") == 5
        assert value(during, "streamcalc_consumer_lag_records", **at, topic=IN, partition="0") == 0
        assert value(during, "streamcalc_workers", **at) == 1
        assert (value(during, "streamcalc_checkpoint_duration_seconds_count", **at) or 0) >= 1
        assert value(during, "streamcalc_checkpoint_duration_seconds_bucket", **at, le="+Inf") == value(
            during, "streamcalc_checkpoint_duration_seconds_count", **at
        )

        client.pause_pipeline(pid)
        client.produce(IN, [record("a9", 1.0, 20)] * 3)
        client.delete_stage_state(pid, STAGE, ["a1", "a2"], ["p"])
        paused = scrape(service)
        assert value(paused, "streamcalc_consumer_lag_records", **at, topic=IN, partition="0") == 3
        assert value(paused, "streamcalc_state_keys", **at, stage=STAGE) == 3
        assert value(paused, "streamcalc_state_deleted_keys_total", **at, stage=STAGE) == 2
        assert value(paused, "streamcalc_workers", **at) == 0
        assert value(paused, "streamcalc_records_in_total", **at, stage=STAGE) == 6  # kept while paused
        client.restore_stage_state(pid, client.stage_state_deletions(pid)[0]["deletionId"])
        restored = scrape(service)
        assert value(restored, "streamcalc_state_restored_keys_total", **at, stage=STAGE) == 2
        assert value(restored, "streamcalc_state_keys", **at, stage=STAGE) == 5

        client.start_pipeline(pid)  # a new worker carries on from the counts of the last
        resumed = scrape_until(service, 9, "streamcalc_records_in_total", **at, stage="EDHKafkaConsumer_01")
        assert value(resumed, "streamcalc_consumer_lag_records", **at, topic=IN, partition="0") == 0
        assert all("assetId" not in dict(labels) and "pointId" not in dict(labels) for _, labels in resumed)
        assert dashboard_series() <= {name for name, _ in resumed}


def dashboard_series() -> set[str]:
    """The series the Grafana dashboard queries."""
    return set(re.findall(r"streamcalc_\w+", DASHBOARD.read_text()))


def test_who_may_scrape_what(tmp_path: Path) -> None:
    """The operator's token sees every org; an org's access token its own org only; anything
    else is 401 in the EnOS envelope."""
    with running_service(tmp_path, metrics_token=METRICS_TOKEN) as service, service.client() as client:
        pid = released(client)
        account = other_org(service)
        other_key, other_secret = account.app_key, account.app_secret
        with service.client("o2", other_key, other_secret) as other:
            other_pid = released(other, "MEASURE_POINT_INTERNAL_o2")

        def pipelines(samples: Samples) -> set[tuple[str, str]]:
            return {
                (dict(labels)["org"], dict(labels)["pipeline"])
                for name, labels in samples
                if name == "streamcalc_pipeline_info"
            }

        assert pipelines(scrape(service)) == {(ORG, pid), ("o2", other_pid)}
        assert pipelines(scrape(service, access_token(service, APP_KEY, APP_SECRET))) == {(ORG, pid)}
        assert pipelines(scrape(service, access_token(service, other_key, other_secret))) == {
            ("o2", other_pid)
        }
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = httpx.get(f"{service.url}/metrics", headers=headers)
            assert response.status_code == 401
            assert response.json()["code"] == 401 and response.json()["requestId"]


@pytest.mark.parametrize("token", [None, "any-access-token-is-checked"])
def test_without_a_metrics_token_scrapes_are_open_but_tokens_are_checked(
    tmp_path: Path, token: str | None
) -> None:
    with running_service(tmp_path) as service, service.client() as client:
        pid = released(client)
        response = httpx.get(
            f"{service.url}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        if token is None:
            assert response.status_code == 200 and pid in response.text
        else:
            assert response.status_code == 401


def test_every_workers_counts_are_added_up(tmp_path: Path) -> None:
    """Two workers (resourceConfig 2), each with its own stats file: /metrics has their sum."""
    assets = [f"a{i}" for i in range(8)]
    with running_service(tmp_path, metrics_token=METRICS_TOKEN) as service, service.client() as client:
        pid = released(client)
        client.start_pipeline(pid, resource_config=2)
        client.produce(IN, [record(a, 1.0, i) for i, a in enumerate(assets)])
        at = {"org": ORG, "pipeline": pid}
        samples = scrape_until(service, len(assets), "streamcalc_records_out_total", **at, stage=STAGE)
        assert value(samples, "streamcalc_workers", **at) == 2
        assert value(samples, "streamcalc_consumer_lag_records", **at, topic=IN, partition="0") == 0
        assert value(samples, "streamcalc_consumer_lag_records", **at, topic=IN, partition="1") == 0
        files = sorted(p.name for p in stats_dir(tmp_path, pid).iterdir())
        assert files == ["worker-0.json", "worker-1.json"]  # both read, each its share
