"""W5: pause latency under full load, through the HTTP API, as a user sees it.

The service runs as its own process (bench/api.py's `start_service`) and runs W1 (bench/core.py's
pipeline, 100k keys) over a backlog far larger than the runs drain. Each run starts (resumes)
the pipeline, waits for its first output, then a seeded random 0-2.5 s (about two commit
cycles), so the request lands anywhere in a batch and anywhere between two commits, and times
the pause call: the API answers once the worker has committed and exited, and the pipeline is
PAUSED. A thread watches the output topic, the store's checkpoint and the worker process (1 ms
polls) to split that time into
- batch: finishing the batch in flight (until its outputs are appended),
- commit: committing everything since the last commit (until the checkpoint moves),
- exit: the worker process ending after its commit (until it is gone),
- rest: the supervisor seeing it, the catalog write and the HTTP round trip.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.api import KEY, ORG, SECRET, start_service
from bench.core import IN, KEYS, OUT, PIPELINE, RESULTS, SEED
from bench.scaling import write_input
from bench.table import Row
from streamcalc.client import StreamcalcClient
from streamcalc.log.embedded import open_log
from streamcalc.runtime.options import RunnerOptions
from streamcalc.state.lmdb import open_pipeline_state

RUNS = 12
BACKLOG = 4_000_000
"""Input records; 12 runs drain ~1.5M of them, so the worker never runs dry."""
MAX_DELAY_S = 2.5
POLL_S = 0.001


@dataclass
class Watch:
    """What the watcher saw, as (perf_counter time, value) at each change."""

    outputs: list[tuple[float, int]] = field(default_factory=list)
    commits: list[tuple[float, int]] = field(default_factory=list)
    """(time, committed input offset)."""
    worker_gone: float | None = None


def watch(data_dir: Path, pipeline_id: str, worker: int, until: threading.Event, seen: Watch) -> None:
    """Record output appends, commits and the worker's exit until `until` is set."""
    log_ = open_log(data_dir)
    store = open_pipeline_state(data_dir, pipeline_id)
    try:
        while not until.is_set():
            now = time.perf_counter()
            out = log_.end_offset(OUT, 0)
            if not seen.outputs or seen.outputs[-1][1] != out:
                seen.outputs.append((now, out))
            done = store.checkpoint().offsets.get((IN, 0), 0)
            if not seen.commits or seen.commits[-1][1] != done:
                seen.commits.append((now, done))
            if seen.worker_gone is None and not running(worker):
                seen.worker_gone = now
            time.sleep(POLL_S)
    finally:
        store.close()
        log_.close()


def pause_once(
    api: StreamcalcClient, data_dir: Path, pipeline_id: str, service_pid: int, delay_s: float
) -> dict[str, Any]:
    """Start the pipeline, let it run at full load, pause it; the timings of that pause."""
    api.start_pipeline(pipeline_id)
    worker = _worker_of(service_pid)
    seen, stop = Watch(), threading.Event()
    watcher = threading.Thread(target=watch, args=(data_dir, pipeline_id, worker, stop, seen))
    watcher.start()
    try:
        while len(seen.outputs) < 2:  # the first entry is the end offset before this run
            time.sleep(POLL_S)
        time.sleep(delay_s)
        requested = time.perf_counter()
        api.pause_pipeline(pipeline_id)
        answered = time.perf_counter()
    finally:
        stop.set()
        watcher.join()
    assert api.get_pipeline(pipeline_id)["status"] == "PAUSED"
    assert seen.worker_gone is not None, "the pause answered before the worker exited"
    before = [t for t, _ in seen.outputs[1:] if t < requested]
    # A request that lands during a commit finds no batch in flight, and maybe nothing to commit.
    batch_end = next((t for t, _ in seen.outputs if t > requested), requested)
    commit_end, committed = max(seen.commits[-1][0], batch_end), seen.commits[-1][1]
    previous = seen.commits[-2][1] if len(seen.commits) > 1 else 0
    log_ = open_log(data_dir)
    backlog = log_.end_offset(IN, 0) - committed
    log_.close()
    assert backlog > 0, "the worker drained its input: not under full load"
    return {
        "delay_s": delay_s,
        "pause_ms": _ms(answered - requested),
        "batch_ms": _ms(batch_end - requested),
        "commit_ms": _ms(commit_end - batch_end),
        "exit_ms": _ms(seen.worker_gone - commit_end),
        "rest_ms": _ms(answered - seen.worker_gone),
        "final_commit_records": committed - previous,
        "batch_interval_ms": [_ms(b - a) for a, b in pairwise(before)],
        "backlog_left": backlog,
    }


def run() -> list[Row]:
    """Time RUNS pauses under full load; write pause.json/.md and return the table rows."""
    rng = random.Random(SEED)
    opts = RunnerOptions()
    with TemporaryDirectory(prefix="streamcalc-bench-pause-") as tmp:
        data_dir = Path(tmp)
        write_input(data_dir, BACKLOG, KEYS)
        port = 19_000 + os.getpid() % 1000
        service = start_service(data_dir, port)
        try:
            with StreamcalcClient(f"http://127.0.0.1:{port}", ORG, KEY, SECRET) as api:
                pipeline_id = api.save_pipeline(None, PIPELINE, name="bench-pause")
                api.release_pipeline(pipeline_id)
                runs = []
                for i in range(RUNS):
                    runs.append(
                        pause_once(api, data_dir, pipeline_id, service.pid, rng.uniform(0, MAX_DELAY_S))
                    )
                    print(f"W5 pause {i + 1}/{RUNS}: {runs[-1]['pause_ms']:.0f} ms", flush=True)
                http_ms = []
                for _ in range(20):
                    t = time.perf_counter()
                    api.get_pipeline(pipeline_id)
                    http_ms.append(_ms(time.perf_counter() - t))
        finally:
            service.terminate()
            service.wait()
    pauses = [r["pause_ms"] for r in runs]
    batch_ms = statistics.median(ms for r in runs for ms in r["batch_interval_ms"])
    report = {
        "runs": runs,
        "pause_ms": _stats(pauses),
        "phases_ms_p50": {
            p: statistics.median(r[f"{p}_ms"] for r in runs) for p in ("batch", "commit", "exit", "rest")
        },
        "final_commit_records_p50": statistics.median(r["final_commit_records"] for r in runs),
        "batch_interval_ms_p50": batch_ms,
        "runner": {
            "max_batch_records": opts.max_batch_records,
            "max_wait_s": opts.max_wait_s,
            "commit_interval_s": opts.commit_interval_s,
            "commit_max_records": opts.commit_max_records,
            "commit_max_batches": opts.commit_max_batches,
        },
        "http_status_call_ms_p50": statistics.median(http_ms),
    }
    write_results(report)
    return rows(report)


def rows(report: dict[str, Any]) -> list[Row]:
    batch_ms = report["batch_interval_ms_p50"]
    linger_ms = report["runner"]["max_wait_s"] * 1000
    phases = ", ".join(f"{p} {ms:.0f}" for p, ms in report["phases_ms_p50"].items())
    reference = f"one batch: {batch_ms:.0f} ms measured ({linger_ms:.0f} ms linger)"
    return [
        Row(
            workload=f"W5 pause under full load (W1 over HTTP, {len(report['runs'])} runs)",
            measure=f"pause {q}",
            value=round(ms, 1),
            unit="ms",
            reference=reference,
            ratio=f"{ms / batch_ms:.1f} batches: target < 1 batch {'met' if ms < batch_ms else 'not met'}",
            note=f"p50 ms per phase: {phases}" if q == "p50" else "",
        )
        for q, ms in (("p50", report["pause_ms"]["p50"]), ("p95", report["pause_ms"]["p95"]))
    ]


def write_results(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pause.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| run | delay s | pause ms | batch in flight | final commit | worker exit | rest | "
        "records committed at pause |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {i} | {r['delay_s']:.2f} | {r['pause_ms']:.0f} | {r['batch_ms']:.0f} | {r['commit_ms']:.0f} | "
        f"{r['exit_ms']:.0f} | {r['rest_ms']:.0f} | {r['final_commit_records']:,} |"
        for i, r in enumerate(report["runs"], 1)
    ]
    p = report["pause_ms"]
    lines += [
        "",
        "Phases (ms): batch in flight = request -> its outputs appended; final commit -> the "
        "checkpoint moved; worker exit -> the process gone; rest = the supervisor noticing, the "
        "catalog write, HTTP. Records committed at pause = input records the last commit covered.",
        "",
        f"pause p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f} ms; a batch under this load takes "
        f"{report['batch_interval_ms_p50']:.0f} ms (p50), the runner's linger is "
        f"{report['runner']['max_wait_s'] * 1000:.0f} ms; an HTTP status call takes "
        f"{report['http_status_call_ms_p50']:.1f} ms (p50).",
    ]
    (RESULTS / "pause.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _worker_of(service_pid: int) -> int:
    """The pid of the service's worker process (it has one pipeline running)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if (
                int(stat.rsplit(")", 1)[1].split()[1]) == service_pid
                and b"streamcalc.runtime.worker" in cmdline
            ):
                return int(proc.name)
    raise RuntimeError("the service runs no worker")


def running(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (exited, not yet reaped)."""
    try:
        return (Path(f"/proc/{pid}/stat")).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _stats(ms: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(ms),
        "p95": statistics.quantiles(ms, n=20, method="inclusive")[18],
        "max": max(ms),
    }


if __name__ == "__main__":
    run()
