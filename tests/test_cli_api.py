"""`streamcalc pipeline|state|produce|consume` against a real service over HTTP, through the SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from service.api_support import (
    APP_KEY,
    APP_SECRET,
    IN,
    ORG,
    OUT,
    STAGE,
    Service,
    free_port,
    pipeline_json,
    record,
    released,
    running_service,
    wait_for,
)
from streamcalc.cli import app
from streamcalc.cli.remote import topics

runner = CliRunner()
SCRATCH = f"CLI_SCRATCH_{ORG}"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("cli-api")) as svc:
        yield svc


def env(url: str, **overrides: str | None) -> dict[str, str | None]:
    base = {
        "STREAMCALC_URL": url,
        "STREAMCALC_ORG_ID": ORG,
        "STREAMCALC_APP_KEY": APP_KEY,
        "STREAMCALC_APP_SECRET": APP_SECRET,
        "COLUMNS": "200",
    }
    return {**base, **overrides}


def cli(url: str, *args: str, input: str | None = None, **overrides: str | None) -> Result:
    result = runner.invoke(app, list(args), input=input, env=env(url, **overrides))
    assert APP_SECRET not in result.output, "the secret was echoed"
    return result


def ok(url: str, *args: str, input: str | None = None) -> Result:
    result = cli(url, *args, input=input)
    assert result.exit_code == 0, result.output
    return result


def ndjson(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def rows(text: str) -> list[list[str]]:
    """The body rows of rich tables in `text`, as stripped cells."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line[:1] == "│"]


def outputs(url: str) -> list[tuple[str, float]]:
    lines = ndjson(ok(url, "consume", OUT, "--limit", "1000").stdout)
    return [(x["record"]["assetId"], x["record"]["value"]) for x in lines]


def state(url: str, pid: str, *assets: str) -> list[tuple[str, float]]:
    items = ndjson(
        ok(url, "state", "get", pid, STAGE, "--assets", ",".join(assets), "--points", "p", "--json").stdout
    )
    return [(i["assetId"], i["windows"][0]["sum"]) for i in items]


def write_ndjson(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return path


@pytest.mark.slow
def test_the_whole_story_through_the_cli(service: Service, tmp_path: Path) -> None:
    url = service.url
    (tmp_path / "pipeline.json").write_text(json.dumps(pipeline_json()))
    pid = ok(
        url, "pipeline", "save", "--file", str(tmp_path / "pipeline.json"), "--name", "daily sums"
    ).stdout
    pid = pid.strip()
    assert [r[:3] for r in rows(ok(url, "pipeline", "list").stdout)] == [[pid, "daily sums", "DRAFT"]]
    assert ok(url, "pipeline", "release", pid).stdout.strip() == f"released {pid}"
    ok(url, "pipeline", "start", pid, "--kafka-rate", "1000000")

    first = [record(a, v, i) for i, (a, v) in enumerate([("a1", 1), ("a2", 10), ("a1", 2), ("a3", 100)])]
    produced = ok(url, "produce", IN, str(write_ndjson(tmp_path / "in.ndjson", first)), "--batch", "3")
    assert f"produced 4 record(s) to {IN}; rejected 0" in produced.stdout
    wait_for(lambda: len(outputs(url)) == 4, what="outputs")
    assert outputs(url) == [("a1", 1), ("a2", 10), ("a1", 3), ("a3", 100)]
    wait_for(lambda: state(url, pid, "a1", "a2", "a3", "nobody") == [("a1", 3), ("a2", 10), ("a3", 100)])

    table = ok(url, "state", "get", pid, STAGE, "--assets", "a1,a2,a3,nobody", "--points", "p").stdout
    assert [r[:2] for r in rows(table)] == [["a1", "p"], ["a2", "p"], ["a3", "p"]]
    assert json.loads(rows(table)[0][2])["windows"][0]["sum"] == 3
    assert "3 of 4 key(s) have state" in table

    running = cli(url, "state", "delete", pid, STAGE, "--assets", "a1", "--points", "p", "--yes")
    assert running.exit_code == 1 and "61199" in running.stderr

    ok(url, "pipeline", "pause", pid)
    declined = cli(url, "state", "delete", pid, STAGE, "--assets", "a1,a3", "--points", "p", input="n\n")
    assert declined.exit_code == 1 and "2 asset(s) x 1 point(s) = 2 key(s)" in declined.stderr
    assert state(url, pid, "a1", "a3") == [("a1", 3), ("a3", 100)]
    deleted = ok(url, "state", "delete", pid, STAGE, "--assets", "a1,a3", "--points", "p", "--yes")
    assert deleted.stdout.strip() == "deleted: true"
    (tmp_path / "assets.txt").write_text("a1\na2\n\na3\n")
    left = ok(url, "state", "get", pid, STAGE, "--assets-file", str(tmp_path / "assets.txt"), "--points", "p")
    assert [r[0] for r in rows(left.stdout)] == ["a2"]

    ok(url, "pipeline", "start", pid)
    second = [record("a1", 5, 10), record("a2", 5, 10), record("a3", 5, 10)]
    ok(url, "produce", IN, "-", input=json.dumps(second))
    wait_for(lambda: len(outputs(url)) == 7, what="outputs after resume")
    assert outputs(url)[4:] == [("a1", 5), ("a2", 15), ("a3", 5)]

    assert [r[:3] for r in rows(ok(url, "pipeline", "list").stdout)] == [[pid, "daily sums", "RUNNING"]]
    listed = rows(ok(url, "pipeline", "list", "--released").stdout)
    assert [r[:3] for r in listed] == [[pid, "daily sums", "RUNNING"]]
    shown = ok(url, "pipeline", "show", pid, "--released").stdout
    assert ["pipelineName", "daily sums"] in rows(shown) and ["status", "RUNNING"] in rows(shown)
    assert f'"instanceName": "{STAGE}"' in shown
    raw = json.loads(ok(url, "pipeline", "show", pid, "--json").stdout)
    assert raw["pipelineId"] == pid and raw["pipelineJson"] == pipeline_json()
    wait_for(lambda: rows(ok(url, "pipeline", "lag", pid).stdout)[-1][1:] == ["7", "0"], what="lag 0 at 7")


def test_produce_reports_rejected_records_by_their_index_in_the_input(
    service: Service, tmp_path: Path
) -> None:
    items = [record("a1", 1), {**record("a1", 2), "time": -1}, record("a2", 3), record("a3", 4, org="o2")]
    (tmp_path / "in.json").write_text(json.dumps(items))

    result = cli(service.url, "produce", SCRATCH, str(tmp_path / "in.json"), "--batch", "1")

    assert result.exit_code == 1
    assert f"produced 2 record(s) to {SCRATCH}; rejected 2" in result.stdout
    assert "message 1: invalid record" in result.stderr and "message 3: orgId o2" in result.stderr
    consumed = ndjson(ok(service.url, "consume", SCRATCH, "--offset", "1", "--limit", "5").stdout)
    assert consumed == [{"offset": 1, "record": record("a2", 3)}]


def test_consume_follow_reads_on_until_ctrl_c(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"CLI_FOLLOW_{ORG}"
    ok(
        service.url,
        "produce",
        topic,
        str(write_ndjson(tmp_path / "in.ndjson", [record("a", 1), record("b", 2)])),
    )
    waits: list[float] = []

    def interrupt(seconds: float) -> None:
        waits.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr(topics, "_wait", interrupt)
    result = ok(service.url, "consume", topic, "--limit", "1", "--follow")

    assert [x["offset"] for x in ndjson(result.stdout)] == [0, 1]
    assert waits == [topics.FOLLOW_INTERVAL_S] and "next offset 2" in result.stderr


def test_start_sends_the_resource_config(service: Service) -> None:
    with service.client() as client:
        pid = released(client)

    result = cli(service.url, "pipeline", "start", pid, "--resource-config", "17")

    assert result.exit_code == 1
    assert result.stderr.startswith("61100: resourceConfig must be at most 16 CUs, got 17")


@pytest.fixture
def quiet(tmp_path: Path) -> Iterator[Service]:
    """A service of its own (nothing else listed) whose lag sampler waits an hour."""
    with running_service(tmp_path, lag_sample_interval_s=3600) as svc:
        yield svc


def test_list_shows_every_pipeline_with_its_status_and_released_filters(quiet: Service) -> None:
    with quiet.client() as client:
        first, second = released(client), released(client)
        client.start_pipeline(second)
        drafts = [client.save_pipeline(None, pipeline_json(), name=f"draft {i}") for i in range(3)]

    listed = rows(ok(quiet.url, "pipeline", "list").stdout)
    assert [r[0] for r in listed] == [first, second, *drafts]
    assert [r[2] for r in listed] == ["PUBLISHED", "RUNNING", "DRAFT", "DRAFT", "DRAFT"]
    assert "page 1; 5 in all" in ok(quiet.url, "pipeline", "list").stdout
    assert [r[0] for r in rows(ok(quiet.url, "pipeline", "list", "--released").stdout)] == [first, second]
    pages = [
        rows(ok(quiet.url, "pipeline", "list", "--page-size", "2", "--page-no", n).stdout) for n in "1234"
    ]
    assert [[r[0] for r in page] for page in pages] == [[first, second], drafts[:2], drafts[2:], []]
    paged = [rows(ok(quiet.url, "pipeline", "list", "--page-size", "3", "--page-no", n).stdout) for n in "12"]
    assert [[r[0] for r in page] for page in paged] == [[first, second, drafts[0]], drafts[1:]]


def test_lag_shows_a_row_as_soon_as_the_pipeline_starts(quiet: Service) -> None:
    with quiet.client() as client:
        pid = released(client)
        client.start_pipeline(pid)

    assert [r[1:] for r in rows(ok(quiet.url, "pipeline", "lag", pid).stdout)] == [["0", "0"]]


@pytest.mark.parametrize(
    "args",
    [("pipeline", "show", UNKNOWN), ("pipeline", "release", UNKNOWN), ("pipeline", "lag", UNKNOWN)],
)
def test_an_unknown_pipeline_prints_the_api_code_and_exits_1(service: Service, args: tuple[str, ...]) -> None:
    result = cli(service.url, *args)

    assert result.exit_code == 1
    assert result.stderr.startswith("61108: ") and result.stdout == ""


def test_wrong_credentials_are_an_api_error(service: Service) -> None:
    result = cli(service.url, "pipeline", "list", STREAMCALC_APP_SECRET="not-the-secret")

    assert result.exit_code == 1 and result.stderr.split(":")[0].isdigit()


@pytest.mark.parametrize("missing", ["STREAMCALC_ORG_ID", "STREAMCALC_APP_KEY", "STREAMCALC_APP_SECRET"])
def test_missing_credentials_exit_2_before_any_call(missing: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # a call would fail with exit 1 instead

    result = cli(closed, "pipeline", "list", **{missing: None})

    assert result.exit_code == 2
    option = "--" + missing.removeprefix("STREAMCALC_").lower().replace("_", "-")
    assert f"missing {option} (or {missing})" in result.stderr


def test_a_wrong_url_says_the_service_may_not_be_running() -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    result = cli(closed, "pipeline", "list")

    assert result.exit_code == 1
    assert f"is the service running at {closed}?" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pipeline", "save"), "a new pipeline needs --file"),
        (("pipeline", "save", "--file", "{tmp}/array.json"), "a pipeline is a JSON object"),
        (("state", "get", UNKNOWN, STAGE, "--points", "p"), "give --assets a1,a2 or --assets-file FILE"),
        (("state", "delete", UNKNOWN, STAGE, "--assets", "a", "--points", " , "), "give --points"),
        (("produce", SCRATCH, "{tmp}/bad.ndjson"), "bad.ndjson line 2: "),
    ],
)
def test_bad_input_exits_2_before_any_call(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "array.json").write_text("[]")
    (tmp_path / "bad.ndjson").write_text('{"a": 1}\n{oops\n')
    closed = f"http://127.0.0.1:{free_port()}"

    result = cli(closed, *(a.format(tmp=tmp_path) for a in args))

    assert result.exit_code == 2 and message in result.stderr


def test_dry_run_deletions_and_restore_through_the_cli(tmp_path: Path) -> None:
    with running_service(tmp_path / "service") as service, service.client() as client:
        url = service.url
        pid = released(client)
        client.start_pipeline(pid)
        client.produce(IN, [record("a1", 1), record("a2", 10)])
        wait_for(lambda: state(url, pid, "a1", "a2") == [("a1", 1), ("a2", 10)])
        ok(url, "pipeline", "pause", pid)
        keys = ("--assets", "a1,a2,nobody", "--points", "p")

        dry = ok(url, "state", "delete", pid, STAGE, *keys, "--dry-run")
        assert dry.stdout.strip() == "would delete: 2 key(s) hold state"
        assert rows(ok(url, "state", "deletions", pid).stdout) == []
        ok(url, "state", "delete", pid, STAGE, *keys, "--yes")
        assert state(url, pid, "a1", "a2") == []

        (listed,) = rows(ok(url, "state", "deletions", pid).stdout)
        deletion_id = listed[0]
        assert [listed[1:4], listed[5]] == [[STAGE, "2", APP_KEY], "yes"]
        assert ok(url, "state", "restore", pid, deletion_id).stdout.strip() == "restored: 2 key(s)"
        assert state(url, pid, "a1", "a2") == [("a1", 1), ("a2", 10)]
        (shown,) = ndjson(ok(url, "state", "deletions", pid, "--json").stdout)
        assert shown["deletionId"] == deletion_id and shown["restorable"] is False

        again = cli(url, "state", "restore", pid, deletion_id)
        assert again.exit_code == 1 and "61199" in again.stderr and "restored already" in again.stderr
