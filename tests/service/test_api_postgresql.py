"""The API on a PostgreSQL catalog: two services on one database answer for each other's
pipelines, and a PostgreSQL that is gone answers 503 in the EnOS envelope (never a hang, no
password), then is served again once it is back. The whole story on it is in
test_api_story.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import code_of, pipeline_json, running_service

from postgres_server import PASSWORD, PostgresServer, fresh_database


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A server of the test's own, since it is stopped."""
    s = PostgresServer()
    yield s
    s.close()


def test_two_services_on_one_catalog_answer_for_each_other(tmp_path: Path, postgres_url: str) -> None:
    backends = {"catalog": postgres_url}
    with (
        running_service(tmp_path / "a", backends=backends) as a,
        running_service(tmp_path / "b", backends=backends) as b,
        a.client() as on_a,
        b.client() as on_b,
    ):
        pid = on_a.save_pipeline(None, pipeline_json(), name="shared")
        on_b.release_pipeline(pid)

        assert on_a.get_pipeline(pid, if_released=True)["status"] == "PUBLISHED"
        assert on_b.list_pipelines(if_released=True)["count"] == 1


def test_a_replica_refuses_to_pause_or_stop_what_another_replica_runs(
    tmp_path: Path, postgres_url: str
) -> None:
    """Standalone workers run beside the replica that started them: another replica must not
    report PAUSED while they run, nor clear their state."""
    backends = {"catalog": postgres_url}
    with (
        running_service(tmp_path / "a", backends=backends) as a,
        running_service(tmp_path / "b", backends=backends) as b,
        a.client() as on_a,
        b.client() as on_b,
    ):
        pid = on_a.save_pipeline(None, pipeline_json(), name="shared")
        on_a.release_pipeline(pid)
        on_a.start_pipeline(pid)

        for action in (on_b.pause_pipeline, on_b.stop_pipeline):
            code, msg = code_of(lambda action=action: action(pid))
            assert code == 61152 and "another streamcalc serve replica" in msg
        assert on_b.get_pipeline(pid)["status"] == "RUNNING"

        on_a.pause_pipeline(pid)
        assert on_b.get_pipeline(pid)["status"] == "PAUSED"
        on_b.stop_pipeline(pid)  # nothing runs any more: any replica may
        assert on_a.get_pipeline(pid)["status"] == "STOPPED"


def test_postgresql_gone_answers_503_in_the_envelope(tmp_path: Path, server: PostgresServer) -> None:
    with (
        fresh_database(server.url()) as url,
        running_service(tmp_path, backends={"catalog": url}) as service,
        service.client() as client,
    ):
        pid = client.save_pipeline(None, pipeline_json())
        server.stop()

        code, msg = code_of(lambda: client.get_pipeline(pid))

        assert code == 503 and "catalog" in msg and PASSWORD not in msg
        server.start()
        assert client.get_pipeline(pid)["status"] == "DRAFT"
