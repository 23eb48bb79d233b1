"""Helpers for runtime tests: generated input, reference runs, worker processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from streamcalc.backends import Backends
from streamcalc.log import AppendEntry, TopicConfig
from streamcalc.log.embedded import EmbeddedLog, open_log
from streamcalc.log.partitioners import crc32_partition
from streamcalc.pipeline import build_graph
from streamcalc.records import Record, decode_record, encode_record
from streamcalc.runtime.errorlane import error_topic
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.runner import OnCommit, Runner
from streamcalc.runtime.supervisor import Supervisor
from streamcalc.runtime.worker import worker_command
from streamcalc.runtime.worker_spec import read_spec, spec_path, write_spec
from streamcalc.state import StateStore
from streamcalc.state.lmdb import open_pipeline_state

IN, OUT = "MEASURE_POINT_INTERNAL_o1", "MEASURE_POINT_CAL_o1"
FEW_COMMITS = RunnerOptions(
    max_wait_s=0,
    max_batch_records=300,
    commit_max_batches=3,
    commit_interval_s=600,
    commit_when_drained=False,
)
"""A commit every third batch only: up to three batches appended but uncommitted at a time."""
STAGE = "SimplifiedTimeWindowAggregator_01"
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def sum_pipeline(window_unit: str = "minute", in_topic: str = IN, out_topic: str = OUT) -> dict[str, Any]:
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": in_topic}},
            {"instanceName": "PointSelector_01", "config": {"points": ["m1::p", "m1::q"]}},
            {
                "instanceName": STAGE,
                "config": {
                    "rules": [
                        {
                            "inputPoint": "m1::p",
                            "windowSize": 1,
                            "windowUnit": window_unit,
                            "outputPoint": "m1::p_sum",
                        },
                        {
                            "inputPoint": "m1::q",
                            "windowSize": 1,
                            "windowUnit": "hour",
                            "outputPoint": "m1::q_sum",
                        },
                    ]
                },
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": out_topic}},
        ]
    }


def record(asset: str, point: str, time_ms: int, value: Any, model: str = "m1") -> Record:
    return Record(
        orgId="o1",
        modelId=model,
        modelIdPath=f"/{model}",
        assetId=asset,
        pointId=point,
        time=time_ms,
        value=value,
    )


def generate_messages(n: int, keys: int, seed: int = 7) -> list[bytes]:
    """Deterministic input: mostly good records over `keys` assets and two points, with
    unselected points, late records (older window), non-numeric values and broken JSON."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(n):
        t = BASE_MS + i * 250
        roll = rng.random()
        if roll < 0.005:
            out.append(b'{"assetId": "broken", ')
            continue
        if roll < 0.01:
            t -= 180_000  # three minutes back: the key's window has moved on
        point = rng.choice(["p", "p", "p", "q", "other"])
        value: Any = "n/a" if roll > 0.995 else rng.choice([1, 2, 3, 0.5, 1.25])
        out.append(encode_record(record(f"a{rng.randrange(keys)}", point, t, value)))
    return out


def fill(log_: EmbeddedLog, topic: str, messages: list[bytes], chunk: int = 5_000) -> None:
    for i in range(0, len(messages), chunk):
        log_.append([AppendEntry(topic, 0, messages[i : i + chunk])])


def read_all(log_: EmbeddedLog, topic: str, partition: int = 0) -> list[bytes]:
    return log_.read(topic, partition, 0, 10**9).messages


@dataclass
class RunResult:
    outputs: list[bytes]
    """In log order: per (asset, point) that order is fixed by the input, whatever the batches."""
    errors: list[bytes]
    """Sorted: within a batch, source and stage rejections interleave by batch boundaries."""
    state: list[tuple[str, str, bytes]]


def snapshot(data_dir: Path, pipeline_id: str) -> RunResult:
    log_ = open_log(data_dir)
    try:
        with opened_store(data_dir, pipeline_id) as store:
            return RunResult(
                read_all(log_, OUT), sorted(read_all(log_, error_topic(pipeline_id))), list(store.scan(STAGE))
            )
    finally:
        log_.close()


def run_in_process(
    data_dir: Path,
    pipeline_id: str,
    definition: dict[str, Any],
    on_commit: OnCommit | None = None,
    **options: Any,
) -> Runner:
    """Run until the input is consumed, in this process."""
    log_ = open_log(data_dir)
    store = open_pipeline_state(data_dir, pipeline_id)
    try:
        runner = Runner(
            pipeline_id,
            build_graph(definition),
            log_,
            store,
            options=RunnerOptions(max_wait_s=0, **options),
            on_commit=on_commit,
        )
        runner.recover()
        while runner.run_once():
            pass
        runner.flush()
        return runner
    finally:
        store.close()
        log_.close()


def committed_offset(data_dir: Path, pipeline_id: str, topic: str = IN) -> int:
    with opened_store(data_dir, pipeline_id) as store:
        return store.checkpoint().offsets.get((topic, 0), -1)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def worker_pids(data_dir: Path) -> list[int]:
    """The worker processes alive on `data_dir`, whoever started them (from /proc: a zombie has
    no command line)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:  # gone meanwhile
            continue
        if b"streamcalc.runtime.worker" in cmdline and str(data_dir).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


class WorkerProcess:
    """A real worker process (python -m streamcalc.runtime.worker) for one pipeline."""

    def __init__(
        self, data_dir: Path, pipeline_id: str, failpoint: str | None = None, worker: int = 0
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k != "STREAMCALC_FAILPOINT"}
        if failpoint:
            env["STREAMCALC_FAILPOINT"] = failpoint
        self.process = subprocess.Popen(
            worker_command(data_dir, pipeline_id, worker),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = 60) -> int:
        try:
            return self.process.wait(timeout_s)
        finally:
            if self.process.stdout:
                self.output = self.process.stdout.read().decode(errors="replace")
                self.process.stdout.close()


def prepare(
    data_dir: Path, messages: list[bytes], definition: dict[str, Any], state: str = "lmdb", **options: Any
) -> None:
    log_ = open_log(data_dir)
    fill(log_, IN, messages)
    log_.close()
    write_p1_spec(data_dir, definition, RunnerOptions(**options), state)


def write_p1_spec(
    data_dir: Path, definition: dict[str, Any], options: RunnerOptions, state: str = "lmdb"
) -> None:
    """Pipeline p1's worker spec on the embedded log of `data_dir` and `state` (a URL), as a
    supervisor writes it."""
    write_spec(data_dir, "p1", definition, options, Backends.resolve(data_dir, state=state).urls)


@contextmanager
def supervising(data_dir: Path, state: str = "lmdb", **options: Any) -> Iterator[Supervisor]:
    """A supervisor on the embedded log of `data_dir` and `state` (a URL); closed, then its
    backends, at the end."""
    backends = Backends.resolve(data_dir, state=state)
    supervisor = Supervisor(backends, data_dir, **options)
    try:
        yield supervisor
    finally:
        supervisor.close()
        backends.close()


@contextmanager
def opened_store(data_dir: Path, pipeline_id: str = "p1") -> Iterator[StateStore]:
    """The store of `pipeline_id` on the state its spec under `data_dir` names (LMDB under
    `data_dir` before there is a spec), closed with its backend afterwards."""
    if spec_path(data_dir, pipeline_id).exists():
        backends = Backends(read_spec(data_dir, pipeline_id).backend_urls(data_dir))
    else:
        backends = Backends.resolve(data_dir)
    try:
        yield backends.state.store(pipeline_id)
    finally:
        backends.close()


def fill_by_asset(data_dir: Path, messages: list[bytes], partitions: int = 2) -> None:
    """Input partitioned by asset, as the workers of a pipeline need it (a message that is no
    record goes to partition 0: it only reaches the error lane)."""
    placed: dict[int, list[bytes]] = {}
    for m in messages:
        try:
            p = crc32_partition(decode_record(m).assetId, partitions)
        except msgspec.DecodeError:
            p = 0
        placed.setdefault(p, []).append(m)
    log_ = open_log(data_dir)
    log_.ensure_topic(TopicConfig(IN, partitions))
    log_.append([AppendEntry(IN, p, ms) for p, ms in sorted(placed.items())])
    log_.close()


def per_key(outputs: list[bytes]) -> dict[tuple[str, str], list[bytes]]:
    """Outputs by key in log order: what a pipeline guarantees about their order, whatever the
    workers."""
    keyed: dict[tuple[str, str], list[bytes]] = {}
    for raw in outputs:
        r = decode_record(raw)
        keyed.setdefault((r.assetId, r.pointId), []).append(raw)
    return keyed
