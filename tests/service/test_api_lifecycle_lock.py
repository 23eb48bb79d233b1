"""Lifecycle actions on one pipeline are serialised across replicas through the catalog's
pipeline lock: while another process's catalog (here: one opened beside the service, as a
second replica would open it) holds the lock, an action waits, and answers 61121 once it has
waited too long; the lock released, the action goes through. Actions on other pipelines, and
reads, never wait for it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from api_support import ORG, code_of, pipeline_json, running_service

from streamcalc.service import pipelines


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else "sqlite"


def test_an_action_waits_for_another_replicas_lock_then_answers_61121(
    tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipelines, "LIFECYCLE_WAIT_S", 0.5)
    with (
        running_service(tmp_path, backends={"catalog": catalog_url}) as service,
        service.client() as client,
        service.catalog() as other_replica,
    ):
        pid = client.save_pipeline(None, pipeline_json(), name="held")
        free = client.save_pipeline(None, pipeline_json(), name="free")
        with other_replica.pipeline_lock(ORG, pid, timeout_s=5):
            code, msg = code_of(lambda: client.release_pipeline(pid))
            assert (code, msg) == (
                61121,
                f"Another operation on pipeline {pid} is in progress. Please try again later.",
            )
            client.release_pipeline(free)  # another pipeline does not wait
            assert client.get_pipeline(pid)["status"] == "DRAFT"  # nor do reads

        client.release_pipeline(pid)
        assert client.get_pipeline(pid, if_released=True)["status"] == "PUBLISHED"


def test_an_action_goes_through_once_the_other_replica_lets_go(tmp_path: Path, catalog_url: str) -> None:
    with (
        running_service(tmp_path, backends={"catalog": catalog_url}) as service,
        service.client() as client,
        service.catalog() as other_replica,
    ):
        pid = client.save_pipeline(None, pipeline_json(), name="held")
        held, letting_go = threading.Event(), []

        def hold() -> None:
            with other_replica.pipeline_lock(ORG, pid, timeout_s=5):
                held.set()
                time.sleep(0.5)
                letting_go.append(time.monotonic())

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(5)
        client.release_pipeline(pid)
        answered = time.monotonic()
        holder.join()
        assert answered >= letting_go[0]  # it waited for the other replica's action to end
        assert client.get_pipeline(pid, if_released=True)["status"] == "PUBLISHED"
