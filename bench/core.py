"""`make bench`: end-to-end throughput of the core runtime and the stage-state delete.

W1: EDHKafkaConsumer -> PointSelector -> SimplifiedTimeWindowAggregator -> EDHKafkaProducer,
1M records over 100k keys, embedded log in and out, LMDB state, run by the real worker
process exactly as the supervisor runs it. Input is written before the clock starts.
Delete: 100,000 keys (316 assets x 316 points) of one stage in one transaction.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from streamcalc.log import AppendEntry, open_log
from streamcalc.records import Record, encode_records
from streamcalc.runtime.policy import RunnerOptions
from streamcalc.runtime.spec import write_spec
from streamcalc.runtime.worker import worker_command
from streamcalc.state import open_pipeline_state

RESULTS = Path(__file__).parent / "results"
RECORDS, KEYS, SEED = 1_000_000, 100_000, 20261124
IN, OUT, STAGE = (
    "MEASURE_POINT_INTERNAL_bench",
    "MEASURE_POINT_CAL_bench",
    "SimplifiedTimeWindowAggregator_01",
)
ENOS_RECORDS_PER_S = {"PointSelector": 16_200, "SimplifiedTimeWindowAggregator": 20_000}  # 2 cores, 4 GB
PIPELINE: dict[str, Any] = {
    "stages": [
        {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
        {"instanceName": "PointSelector_01", "config": {"points": ["meter::delta"]}},
        {
            "instanceName": STAGE,
            "config": {
                "rules": [
                    {
                        "inputPoint": "meter::delta",
                        "windowSize": 15,
                        "windowUnit": "minute",
                        "outputPoint": "meter::sum15",
                    },
                ]
            },
        },
        {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
    ]
}


def generate(data_dir: Path) -> None:
    rng = random.Random(SEED)
    log_ = open_log(data_dir)
    t0 = 1_767_225_600_000
    for start in range(0, RECORDS, 50_000):
        records = [
            Record(
                orgId="bench",
                modelId="meter",
                modelIdPath="/meter",
                assetId=f"m{rng.randrange(KEYS)}",
                pointId="delta",
                time=t0 + i * 10,
                value=round(rng.random(), 3),
            )
            for i in range(start, start + 50_000)
        ]
        log_.append([AppendEntry(IN, 0, encode_records(records))])
    log_.close()


def run_w1(data_dir: Path) -> dict[str, Any]:
    write_spec(data_dir, "w1", PIPELINE, RunnerOptions())
    store = open_pipeline_state(data_dir, "w1")
    commits: list[tuple[float, int]] = []
    started = time.perf_counter()
    worker = subprocess.Popen(worker_command(data_dir, "w1"))
    try:
        while (done := store.checkpoint().offsets.get((IN, 0), 0)) < RECORDS:
            if not commits or commits[-1][1] != done:
                commits.append((time.perf_counter(), done))
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}")
            time.sleep(0.005)
        finished = time.perf_counter()
        seq = store.checkpoint().seq
    finally:
        worker.terminate()
        worker.wait()
        store.close()
    first_time, first_done = next((t, n) for t, n in commits if n > 0)
    log_ = open_log(data_dir)
    outputs = log_.end_offset(OUT, 0)
    log_.close()
    state_bytes = sum(f.stat().st_size for f in (data_dir / "state" / "w1").iterdir())
    return {
        "records": RECORDS,
        "keys": KEYS,
        "last_batch_seq": seq,
        "outputs": outputs,
        "seconds_from_spawn": finished - started,
        "records_per_s": RECORDS / (finished - started),
        "steady_records_per_s": (RECORDS - first_done) / (finished - first_time),
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "state_file_bytes_per_key": state_bytes / KEYS,
    }


def run_delete(data_dir: Path, runs: int = 7) -> dict[str, Any]:
    assets = [f"asset{i:03d}" for i in range(316)]
    points = [f"point{j:03d}" for j in range(316)]
    value = bytes(40)
    store = open_pipeline_state(data_dir, "delete")
    timings = []
    try:
        for _ in range(runs):
            cp = store.checkpoint()
            store.commit({STAGE: {(a, p): value for a in assets for p in points}}, cp, cp.advance({}))
            t = time.perf_counter()
            deleted = store.delete_keys(STAGE, assets, points)
            timings.append((time.perf_counter() - t) * 1000)
            assert deleted == 316 * 316 and next(store.scan(STAGE), None) is None
    finally:
        store.close()
    return {"keys": 316 * 316, "runs": runs, "p50_ms": statistics.median(timings), "max_ms": max(timings)}


def main(runs: int = 3) -> None:
    w1_runs = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="streamcalc-bench-") as tmp:
            generate(Path(tmp))
            w1_runs.append(run_w1(Path(tmp)))
            print(f"W1 run {i + 1}/{runs}: {w1_runs[-1]['records_per_s']:,.0f} records/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-") as tmp:
        delete = run_delete(Path(tmp))
    rates = sorted(r["records_per_s"] for r in w1_runs)
    w1 = next(r for r in w1_runs if r["records_per_s"] == rates[len(rates) // 2])
    enos = min(ENOS_RECORDS_PER_S.values())
    rows = [
        (
            f"W1 keyed running sum, end to end from worker spawn (records/s, median of {runs})",
            f"{w1['records_per_s']:,.0f} ({rates[0]:,.0f}-{rates[-1]:,.0f})",
            f"{enos:,} (slowest stage)",
            f"{w1['records_per_s'] / enos:.1f}x",
            ">= 100,000",
        ),
        (
            f"Delete 100,000 keys (316 x 316) in one transaction (ms, p50 of {delete['runs']})",
            f"{delete['p50_ms']:.1f} (max {delete['max_ms']:.1f})",
            "-",
            "-",
            "< 100",
        ),
    ]
    report = {
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "w1_runs": w1_runs,
        "delete": delete,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "core.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| measure | streamcalc | EnOS reference (2 cores) | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    extra = (
        f"W1 median run: {w1['records']:,} records over {w1['keys']:,} keys, {w1['outputs']:,} outputs, "
        f"{w1['seconds_from_spawn']:.2f}s from spawn, worker peak RSS {w1['worker_peak_rss_mb']:.0f} MB, "
        f"state file {w1['state_file_bytes_per_key']:.0f} B/key; "
        f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}"
    )
    (RESULTS / "core.md").write_text("\n".join([*lines, "", extra]) + "\n")
    print("\n".join(lines))
    print(extra)


if __name__ == "__main__":
    main()
