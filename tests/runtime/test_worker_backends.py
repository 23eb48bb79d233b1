"""Which backends a pipeline's workers run on: those of the supervisor, through their spec."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from runtime_support import (
    BASE_MS,
    IN,
    OUT,
    STAGE,
    WorkerProcess,
    fill,
    prepare,
    read_all,
    record,
    sum_pipeline,
    wait_until,
)

from streamcalc.backends import Backends, BackendUrls
from streamcalc.clock import SYSTEM_CLOCK
from streamcalc.log.embedded import open_url as open_log_url
from streamcalc.records import encode_record
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import BackendsNotShared, Supervisor
from streamcalc.runtime.worker import worker_command
from streamcalc.runtime.worker_spec import read_spec, spec_path, write_spec

FAST = RunnerOptions(max_batch_records=500, max_wait_s=0.01)
INPUT = [encode_record(record(a, "p", BASE_MS + i, 1)) for i in range(3) for a in ("a1", "a2")]


def test_workers_run_on_the_supervisors_backends_wherever_they_are(tmp_path: Path) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    backends = Backends.resolve(
        data, log=f"embedded://{elsewhere / 'log'}", state=f"lmdb:{elsewhere / 'state'}"
    )
    fill(backends.log, IN, INPUT)
    supervisor = Supervisor(backends, data)
    try:
        supervisor.start("p1", sum_pipeline(), FAST)
        wait_until(lambda: len(read_all(backends.log, OUT)) == len(INPUT), what="the outputs")
        supervisor.pause("p1")
        keys = [(a, p) for a, p, _ in backends.state.store("p1").scan(STAGE)]
    finally:
        supervisor.close()
        backends.close()

    assert read_spec(data, "p1").backends == backends.urls
    assert keys == [("a1", "p"), ("a2", "p")]
    assert (data / "logs" / "p1.log").exists()  # specs and worker logs stay under the data dir
    assert not (data / "log").exists() and not (data / "state").exists()


def test_a_spec_of_an_earlier_release_runs_on_the_embedded_backends_of_the_data_dir(
    tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    prepare(tmp_path, INPUT, sum_pipeline(), max_wait_s=0.01)
    path = spec_path(tmp_path, "p1")
    spec = json.loads(path.read_text())
    del spec["backends"]
    path.write_text(json.dumps(spec))
    assert read_spec(tmp_path, "p1").backend_urls(tmp_path) == Backends.resolve(tmp_path).urls

    worker = worker_factory(tmp_path)
    log_ = open_log_url(str(tmp_path / "log"), SYSTEM_CLOCK)
    try:
        wait_until(lambda: len(read_all(log_, OUT)) == len(INPUT), what="the outputs")
    finally:
        log_.close()
    assert worker.stop() == 0, worker.output


def test_a_worker_told_another_log_runs_on_it(tmp_path: Path) -> None:
    prepare(tmp_path / "spec", [], sum_pipeline(), max_wait_s=0.01)
    log_ = open_log_url(str(tmp_path / "other"), SYSTEM_CLOCK)
    fill(log_, IN, INPUT)
    command = [*worker_command(tmp_path / "spec", "p1"), "--log", f"embedded:{tmp_path / 'other'}"]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(read_all(log_, OUT)) == len(INPUT), what="the outputs")
    finally:
        worker.terminate()
        assert worker.wait(30) == 0
        log_.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--log", "pulsar://broker:6650"], "--log 'pulsar://broker:6650': unknown backend 'pulsar'"),
        (["--state", "lmdb:{tmp}/file/state"], "--state lmdb://{tmp}/file/state: cannot open it"),
    ],
)
def test_a_worker_whose_backends_cannot_be_opened_exits_2_with_one_line(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    prepare(tmp_path, [], sum_pipeline())
    (tmp_path / "file").write_text("")
    flags = [f.format(tmp=tmp_path) for f in flags]

    proc = subprocess.run(
        [*worker_command(tmp_path, "p1"), *flags], capture_output=True, text=True, timeout=60
    )

    assert proc.returncode == 2, proc.stderr
    assert message.format(tmp=tmp_path) in proc.stderr and "Traceback" not in proc.stderr


def test_the_supervisor_refuses_pipelines_on_backends_of_one_process(tmp_path: Path) -> None:
    urls = BackendUrls(Backends.resolve(tmp_path).urls.log, "memory", "memory")
    supervisor = Supervisor(Backends(urls), tmp_path)
    try:
        with pytest.raises(BackendsNotShared) as info:
            supervisor.start("p1", sum_pipeline())
    finally:
        supervisor.close()
    assert str(info.value) == (
        "cannot start pipeline p1: --state memory is reachable from this process only, "
        "and its worker processes need a log and state they can open too"
    )
    assert supervisor.info("p1") is None and not spec_path(tmp_path, "p1").exists()


def test_a_worker_spec_is_readable_by_its_user_only(tmp_path: Path) -> None:
    """A spec carries the backend URLs, and a Redis URL may hold a password."""
    urls = Backends.resolve(tmp_path, state="redis://:secret@127.0.0.1:1/0").urls
    path = write_spec(tmp_path, "p1", {"stages": []}, RunnerOptions(), urls)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
