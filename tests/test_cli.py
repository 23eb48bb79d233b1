"""The command line end to end: `streamcalc run` (what `make run` starts) and `streamcalc log`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamcalc.cli import app
from streamcalc.log.partitioners import crc32_partition

EXAMPLES = Path(__file__).parent.parent / "examples"
runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.output


def read(topic: str, data_dir: Path) -> list[dict[str, object]]:
    code, out = cli("log", "read", topic, "--data-dir", str(data_dir))
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines()]


def test_append_validates_records_and_read_shows_offsets(tmp_path: Path) -> None:
    good = {
        "orgId": "o",
        "modelId": "m",
        "modelIdPath": "/m",
        "assetId": "a",
        "pointId": "p",
        "time": 1,
        "value": 2,
    }
    lines = "\n".join(json.dumps(x) for x in [good, {**good, "time": -1}, {**good, "value": [1]}, good])

    code, out = cli("log", "append", "T", "-", "--data-dir", str(tmp_path), input=lines)

    assert code == 1
    assert "appended 2 record(s) to T; rejected 2" in out
    assert "message 1" in out and "$.time" in out and "message 2" in out
    assert [(m["offset"], m["message"]["time"]) for m in read("T", tmp_path)] == [(0, 1), (1, 1)]


def test_append_normalises_origin_messages(tmp_path: Path) -> None:
    origin = {
        "orgId": "o",
        "modelId": "m",
        "payload": [
            {"assetId": "a", "time": 5, "measurepoints": {"p": 1.5, "q": {"value": 2, "quality": 9}}}
        ],
    }

    code, out = cli(
        "log", "append", "O", "-", "--origin", "--data-dir", str(tmp_path), input=json.dumps(origin)
    )

    assert code == 0, out
    assert [(m["message"]["pointId"], m["message"]["value"]) for m in read("O", tmp_path)] == [
        ("p", 1.5),
        ("q", 2),
    ]


def test_log_create_makes_a_topic_of_n_partitions_that_append_places_records_in_by_asset(
    tmp_path: Path,
) -> None:
    code, out = cli("log", "create", "T", "--partitions", "3", "--data-dir", str(tmp_path))
    assert code == 0 and "topic T created with 3 partition(s)" in out
    code, out = cli("log", "create", "T", "--partitions", "3", "--data-dir", str(tmp_path))
    assert code == 0 and "topic T exists with 3 partition(s)" in out
    code, out = cli("log", "create", "T", "--partitions", "2", "--data-dir", str(tmp_path))
    assert code == 1 and "topic T exists with 3 partition(s), not 2" in out
    assert cli("log", "create", "bad name", "--data-dir", str(tmp_path))[0] == 2
    assert cli("log", "create", "U", "--partitions", "0", "--data-dir", str(tmp_path))[0] == 2

    assets = [f"a{i}" for i in range(12)]
    lines = "\n".join(
        json.dumps(
            {
                "orgId": "o",
                "modelId": "m",
                "modelIdPath": "/m",
                "assetId": a,
                "pointId": "p",
                "time": 1,
                "value": 1,
            }
        )
        for a in assets
    )
    assert cli("log", "append", "T", "-", "--data-dir", str(tmp_path), input=lines)[0] == 0

    placed = {}
    for p in range(3):
        code, out = cli("log", "read", "T", "--partition", str(p), "--data-dir", str(tmp_path))
        placed.update({json.loads(line)["message"]["assetId"]: p for line in out.splitlines()})
    assert placed == {a: crc32_partition(a, 3) for a in assets} and len(set(placed.values())) == 3


def run_energy_sum(data_dir: Path, workers: int) -> list[str]:
    """`streamcalc run` of the example energy-sum pipeline, as a command line of its own process."""
    return [
        sys.executable,
        "-m",
        "streamcalc.cli",
        "run",
        str(EXAMPLES / "energy-sum.json"),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]


def test_run_refuses_workers_that_cannot_share_a_source_topic(tmp_path: Path) -> None:
    assert (
        cli("log", "create", "MEASURE_POINT_INTERNAL_demo", "--partitions", "3", "--data-dir", str(tmp_path))[
            0
        ]
        == 0
    )
    # a process of its own: `run` sets signal handlers, which must not outlive it in this one
    proc = subprocess.run(
        run_energy_sum(tmp_path, workers=2),
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = " ".join(proc.stderr.split())  # rich wraps long lines
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "topic MEASURE_POINT_INTERNAL_demo has 3 partition(s), which 2 workers cannot share" in err


def test_run_rejects_an_invalid_pipeline_with_the_stage_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stages": [{"instanceName": "PointSelector_01", "config": {}}]}))

    code, out = cli("run", str(bad), "--data-dir", str(tmp_path))

    out = " ".join(out.split())  # rich wraps long lines
    assert code == 2 and "stage PointSelector_01: config.points: Field required" in out


@pytest.mark.parametrize("workers", [1, 2])
def test_run_processes_appended_records_and_pauses_on_ctrl_c(tmp_path: Path, workers: int) -> None:
    data = tmp_path / "data"
    # Ctrl-C as in a terminal even when this run ignores SIGINT, as a script's background job does: exec
    # keeps an ignored signal ignored (and Python then raises no KeyboardInterrupt) but resets a handled one.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            run_energy_sum(data, workers),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, with its worker: see the finally below
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    try:
        assert proc.stdout is not None
        assert "running energy-sum" in proc.stdout.readline()
        code, out = cli(
            "log",
            "append",
            "MEASURE_POINT_INTERNAL_demo",
            str(EXAMPLES / "records.ndjson"),
            "--data-dir",
            str(data),
        )
        assert code == 0, out
        deadline = time.monotonic() + 30
        while len(sums := read("MEASURE_POINT_CAL_demo", data)) < 3:
            assert time.monotonic() < deadline, "no results"
            time.sleep(0.05)
        # in order per asset; the assets' partitions are read by different workers when there are two
        assert sorted((s["message"]["assetId"], s["message"]["value"]) for s in sums) == [  # type: ignore[index]
            ("meter-1", 1.5),
            ("meter-1", 3.5),
            ("meter-2", 4),
        ]
        errors = read("STREAMCALC_ERROR_energy-sum", data)
        assert len(errors) == 1 and "not a number" in errors[0]["message"]["reason"]  # type: ignore[index]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:  # Ctrl-C did not stop it: neither it nor its worker may outlive the test
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    assert proc.returncode == 0
    assert "paused; state and offsets are kept" in out


def test_run_reads_streamsets_exports(tmp_path: Path) -> None:
    export = {
        "pipelineConfig": {
            "stages": [
                {
                    "instanceName": "EDHKafkaConsumerUser_01",
                    "stageName": "com_streamsets_pipeline_stage_origin_kafka_cluster_KafkaDSourceUser",
                    "configuration": [{"name": "kafkaConfigBean.topic", "value": "IN"}],
                    "outputLanes": ["a"],
                },
                {
                    "instanceName": "Mystery_01",
                    "stageName": "com_example_MysteryDProcessor",
                    "configuration": [],
                    "inputLanes": ["a"],
                    "outputLanes": ["b"],
                },
            ]
        }
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))

    code, out = cli("run", str(path), "--data-dir", str(tmp_path))

    out = " ".join(out.split())  # rich wraps long lines
    assert code == 2 and "stage Mystery_01: stageName: unknown operator MysteryDProcessor" in out
