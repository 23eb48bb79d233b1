"""Dry-run delete, the deletions kept for undo and restoring them, over real HTTP (ours: same
auth and envelope as the EnOS APIs)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    APP_KEY,
    APP_SECRET,
    IN,
    ORG,
    OUT,
    STAGE,
    Service,
    code_of,
    record,
    released,
    running_service,
    wait_for,
)

from streamcalc.backends import Backends
from streamcalc.catalog.sqlite import open_catalog
from streamcalc.client import StreamcalcClient
from streamcalc.clock import ManualClock

ASSETS = ["a1", "a2", "a3"]
SUMS = {"a1": 3.0, "a2": 10.0, "a3": 100.0}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> Iterator[StreamcalcClient]:
    with service.client() as c:
        yield c


def running_with_state(client: StreamcalcClient, topic: str = IN) -> str:
    """A running pipeline whose stage holds a1=3, a2=10, a3=100 (committed)."""
    pid = released(client, in_topic=topic)
    client.start_pipeline(pid)
    client.produce(topic, [record("a1", 1), record("a2", 10), record("a1", 2, 1), record("a3", 100)])
    wait_for(lambda: sums(client, pid) == SUMS, what="the state committed")
    return pid


def paused_with_state(client: StreamcalcClient, topic: str = IN) -> str:
    pid = running_with_state(client, topic)
    client.pause_pipeline(pid)
    return pid


def sums(client: StreamcalcClient, pid: str) -> dict[str, float]:
    items = client.get_stage_state(pid, STAGE, [*ASSETS, "nobody"], ["p"])
    return {i["assetId"]: i["windows"][0]["sum"] for i in items}


def audit(service: Service, pid: str) -> list[tuple[str, dict[str, Any]]]:
    return [(a.action, a.detail) for a in open_catalog(service.data_dir).audit_log(ORG, pid)]


def test_a_dry_run_counts_the_keys_that_hold_state_and_deletes_nothing(
    service: Service, client: StreamcalcClient
) -> None:
    pid = running_with_state(client)

    assert client.delete_stage_state_dry_run(pid, STAGE, ["a1", "a3", "nobody"], ["p", "q"]) == 2  # running
    client.pause_pipeline(pid)
    assert client.delete_stage_state_dry_run(pid, STAGE, ASSETS, ["p"]) == 3

    assert sums(client, pid) == SUMS
    assert client.stage_state_deletions(pid) == []
    assert audit(service, pid) == []


def test_a_dry_run_at_the_limit_reads_every_key(client: StreamcalcClient) -> None:
    pid = paused_with_state(client)
    assets = [*ASSETS, *(f"x{i}" for i in range(313))]
    points = ["p", *(f"q{i}" for i in range(315))]
    assert client.delete_stage_state_dry_run(pid, STAGE, assets, points) == 3


def test_a_delete_is_listed_then_restored_exactly_and_the_pipeline_resumes_with_it(
    service: Service, client: StreamcalcClient
) -> None:
    pid = paused_with_state(client)
    before = client.get_stage_state(pid, STAGE, ASSETS, ["p"])

    assert client.delete_stage_state(pid, STAGE, ["a1", "a3", "nobody"], ["p"]) is True
    assert sums(client, pid) == {"a2": 10}
    (deletion,) = client.stage_state_deletions(pid)
    assert {k: v for k, v in deletion.items() if k not in ("deletionId", "time")} == {
        "stageInstanceName": STAGE,
        "keys": 2,
        "assets": 3,
        "points": 1,
        "by": APP_KEY,
        "restorable": True,
    }

    assert client.restore_stage_state(pid, deletion["deletionId"]) == 2

    assert client.get_stage_state(pid, STAGE, ASSETS, ["p"]) == before
    (restored,) = client.stage_state_deletions(pid)
    assert restored["restorable"] is False and restored["restoredAt"] >= deletion["time"]
    code, msg = code_of(lambda: client.restore_stage_state(pid, deletion["deletionId"]))
    assert code == 61199 and "restored already" in msg
    assert [(action, detail.get("deletionId")) for action, detail in audit(service, pid)] == [
        ("deleteStageState", deletion["deletionId"]),
        ("restoreStageState", deletion["deletionId"]),
    ]

    client.start_pipeline(pid)  # resumes on the restored windows
    client.produce(IN, [record("a1", 5, 10), record("a3", 5, 10)])
    wait_for(lambda: sums(client, pid) == {"a1": 8, "a2": 10, "a3": 105}, what="sums on the restored state")
    outputs = [r["record"] for r in client.consume(OUT, limit=100)["records"]]
    assert [(r["assetId"], r["value"]) for r in outputs[-2:]] == [("a1", 8), ("a3", 105)]


def test_deletions_of_one_pause_are_restored_newest_first(client: StreamcalcClient) -> None:
    pid = paused_with_state(client)
    client.delete_stage_state(pid, STAGE, ["a1"], ["p"])
    client.delete_stage_state(pid, STAGE, ["a2"], ["p"])
    second, first = client.stage_state_deletions(pid)
    assert (second["restorable"], first["restorable"]) == (True, False)

    code, msg = code_of(lambda: client.restore_stage_state(pid, first["deletionId"]))
    assert code == 61199 and f"restore the later deletion {second['deletionId']} first" in msg

    client.restore_stage_state(pid, second["deletionId"])
    assert [d["restorable"] for d in client.stage_state_deletions(pid)] == [False, True]
    client.restore_stage_state(pid, first["deletionId"])
    assert sums(client, pid) == SUMS


@pytest.mark.parametrize("since", ["resume", "stop", "reset offset", "release"])
def test_a_restore_is_refused_once_the_pipeline_moved_on(client: StreamcalcClient, since: str) -> None:
    pid = paused_with_state(client)
    client.delete_stage_state(pid, STAGE, ["a1"], ["p"])
    (deletion,) = client.stage_state_deletions(pid)
    if since == "resume":
        client.start_pipeline(pid)
        client.pause_pipeline(pid)
    elif since == "stop":
        client.stop_pipeline(pid)
    elif since == "reset offset":
        client.reset_offset(pid)
    else:
        client.release_pipeline(pid)  # a paused pipeline stays paused, on a new release

    code, msg = code_of(lambda: client.restore_stage_state(pid, deletion["deletionId"]))

    assert code == 61199 and msg.startswith(f"Deletion {deletion['deletionId']} cannot be restored: ")
    assert [d["restorable"] for d in client.stage_state_deletions(pid)] == [False]
    assert "a1" not in sums(client, pid)


def test_a_delete_that_finds_no_state_keeps_nothing(service: Service, client: StreamcalcClient) -> None:
    pid = paused_with_state(client)
    client.delete_stage_state(pid, STAGE, ["a1"], ["p"])

    assert client.delete_stage_state(pid, STAGE, ["nobody", "a1"], ["p"]) is True

    (deletion,) = client.stage_state_deletions(pid)
    assert deletion["restorable"] is True  # the empty delete changed nothing
    assert [d.get("keysDeleted") for _, d in audit(service, pid)] == [1, 0]
    assert audit(service, pid)[1][1]["deletionId"] is None


def test_a_delete_whose_values_cannot_be_kept_deletes_nothing(
    service: Service, client: StreamcalcClient
) -> None:
    pid = paused_with_state(client)
    with closing(sqlite3.connect(service.data_dir / "catalog.sqlite3")) as conn:  # the catalog refuses writes
        conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON deletions BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        conn.commit()

    code, msg = code_of(lambda: client.delete_stage_state(pid, STAGE, ASSETS, ["p"]))

    assert (code, msg) == (503, "Service unavailable: the catalog failed; retry later.")
    assert sums(client, pid) == SUMS
    assert client.stage_state_deletions(pid) == []


def test_deletions_are_dropped_after_the_retention_time(tmp_path: Path) -> None:
    clock = ManualClock(1_790_000_000_000)
    ticks = itertools.count()
    with (
        running_service(tmp_path, clock=clock, deletion_retention_s=60) as service,
        StreamcalcClient(
            service.url, ORG, APP_KEY, APP_SECRET, now_ms=lambda: clock.wall_ms() + next(ticks)
        ) as client,
    ):
        pid = paused_with_state(client)
        client.delete_stage_state(pid, STAGE, ["a1"], ["p"])
        (deletion,) = client.stage_state_deletions(pid)
        clock.advance(59)
        assert len(client.stage_state_deletions(pid)) == 1

        clock.advance(2)

        assert client.stage_state_deletions(pid) == []
        code, msg = code_of(lambda: client.restore_stage_state(pid, deletion["deletionId"]))
        assert code == 61199 and "kept 60 s" in msg
        backends = Backends.resolve(tmp_path)  # the service's LMDB, shared in this process
        try:  # the values the store kept went with the listing
            assert backends.state.store(pid).restore_kept(deletion["deletionId"]) == 0
        finally:
            backends.close()


def test_another_org_sees_and_restores_no_deletion(service: Service, client: StreamcalcClient) -> None:
    pid = paused_with_state(client)
    client.delete_stage_state(pid, STAGE, ["a1"], ["p"])
    (deletion,) = client.stage_state_deletions(pid)
    other = open_catalog(service.data_dir).create_account("o2")

    with service.client("o2", other.app_key, other.app_secret) as theirs:
        assert code_of(lambda: theirs.stage_state_deletions(pid)) == (
            61106,
            "Wrong pipelineId or OU has no privilege",
        )
        assert code_of(lambda: theirs.restore_stage_state(pid, deletion["deletionId"]))[0] == 61106
        assert code_of(lambda: theirs.delete_stage_state_dry_run(pid, STAGE, ["a2"], ["p"]))[0] == 61106

    assert client.stage_state_deletions(pid)[0]["restorable"] is True


def test_bad_undo_requests_name_the_parameter(client: StreamcalcClient) -> None:
    pid = paused_with_state(client)
    state = "/streaming/v2.0/stage-state"
    body = {"pipelineId": pid, "stageInstanceName": STAGE, "assetIds": "a1", "pointIds": "p"}

    assert code_of(lambda: client.call("POST", state, {"action": "get", "dryRun": "true"}, body)) == (
        61102,
        "Missing param dryRun: only action=delete has a dry run",
    )
    assert (
        code_of(lambda: client.call("POST", state, {"action": "delete", "dryRun": "maybe"}, body))[0] == 61102
    )
    code, msg = code_of(lambda: client.call("POST", state, {"action": "restore"}, {"pipelineId": pid}))
    assert code == 61102 and "deletionId" in msg
    code, msg = code_of(lambda: client.restore_stage_state(pid, "no-such-deletion"))
    assert code == 61199 and "No deletion no-such-deletion" in msg
    code, msg = code_of(lambda: client.call("GET", f"{state}/deletions"))
    assert code == 61102 and "pipelineId" in msg
    assert sums(client, pid) == SUMS
