"""`make bench`, library part: records/s of each stateful operator, end to end.

Each operator runs alone between the embedded log source and destination (decode, the
operator with its LMDB state, encode, commit), 200k records over 10k keys, with the worker's
GC settings - so the figure is the operator plus the runtime around it - as a pipeline of
one worker (in this process) and of two (forked processes over a 2-partition topic), beside
EnOS's published per-operator figure (2 cores, 4 GB).
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import RESULTS
from bench.table import Row
from streamcalc.gctuning import GC_GEN0_THRESHOLD
from streamcalc.log import AppendEntry, TopicConfig
from streamcalc.log.embedded import open_log
from streamcalc.log.partitioners import crc32_partition
from streamcalc.pipeline import build_graph
from streamcalc.records import Record, encode_records
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.runner import Runner
from streamcalc.state.lmdb import open_pipeline_state

RECORDS, KEYS, SEED = 200_000, 10_000, 3
IN, OUT = "MEASURE_POINT_INTERNAL_ops", "MEASURE_POINT_CAL_ops"
P = {"inputPoint": "m::p", "outputPoint": "m::p_out"}
OPERATORS: dict[str, tuple[dict[str, Any], int]] = {
    # name: (config, EnOS records/s on 2 cores)
    "SimplifiedTimeWindowAggregator": ({"rules": [{**P, "windowSize": 15, "windowUnit": "minute"}]}, 20_000),
    "FixedTimeWindowAggregator": (
        {"latencyMinutes": 1, "rules": [{**P, "windowSize": 1, "windowUnit": "minute", "aggregator": "avg"}]},
        6_500,
    ),
    "SlidingTimeWindowAggregator": (
        {
            "latencyMinutes": 0,
            "rules": [
                {
                    **P,
                    "windowSize": 5,
                    "windowUnit": "minute",
                    "slideSize": 1,
                    "slideUnit": "minute",
                    "aggregator": "sum",
                }
            ],
        },
        6_600,
    ),
    "LastRecordAppender": ({"rules": [P]}, 6_300),
    "LastChangedRecordAppender": ({"rules": [P]}, 6_300),
    "LatestRecordMerger": (
        {
            "cacheExpireMinutes": 5,
            "rules": [
                {"inputPoint": "m::p"},
                {"inputPoint": "m::q", "isTrigger": True, "outputPoint": "m::merged"},
            ],
        },
        10_100,
    ),
    "LatePointTagger": ({"rules": [P]}, 12_300),
    "RecordCapturer": ({"points": ["m::p"]}, 13_000),
}
TARGET_RATIO = 20
ROUNDS = 3
WORKERS = 2
"""Worker processes of the pipeline: EnOS's figures are for 2 cores."""


def generate() -> list[Record]:
    rng = random.Random(SEED)
    t0 = 1_767_225_600_000
    return [
        Record(
            orgId="o",
            modelId="m",
            modelIdPath="/m",
            assetId=f"a{rng.randrange(KEYS)}",
            pointId="q" if rng.random() < 0.05 else "p",
            time=t0 + i * 20 - rng.choice([0, 0, 0, 1_000]),
            value=round(rng.random() * 10, 2),
        )
        for i in range(RECORDS)
    ]


def measure(name: str, config: dict[str, Any], records: list[Record], workers: int) -> float:
    """Records/s of the operator run by `workers` runners over a topic of as many partitions,
    the input placed by asset as the service's producers do. Each worker is a process of its
    own, forked with the input written, as the supervisor runs a pipeline's workers (less
    the interpreter start, which a 200k-record run would mostly measure)."""
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {"instanceName": f"{name}_01", "config": config},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-ops-") as tmp:
        data = Path(tmp)
        log_ = open_log(data)
        log_.ensure_topic(TopicConfig(IN, workers))
        placed: dict[int, list[Record]] = {}
        for r in records:
            placed.setdefault(crc32_partition(r.assetId, workers), []).append(r)
        for partition, part in placed.items():
            messages = encode_records(part)
            for i in range(0, len(messages), 50_000):
                log_.append([AppendEntry(IN, partition, messages[i : i + 50_000])])
        log_.close()
        options = RunnerOptions(max_wait_s=0, workers=workers)
        gc.collect()
        started = time.perf_counter()
        if workers == 1:
            consumed = _run_worker(data, definition, options, 0)
        else:
            consumed = _run_forked(data, definition, options)
        elapsed = time.perf_counter() - started
    assert consumed == RECORDS
    return RECORDS / elapsed


def _run_worker(data: Path, definition: dict[str, Any], options: RunnerOptions, worker: int) -> int:
    log_ = open_log(data)
    store = open_pipeline_state(data, "ops")
    try:
        runner = Runner("ops", build_graph(definition), log_, store, options=options, worker=worker)
        runner.recover()
        gc.freeze()
        while runner.run_once():
            pass
        runner.flush()
        gc.unfreeze()
    finally:
        store.close()
        log_.close()
    return runner.stats.records_in


def _run_forked(data: Path, definition: dict[str, Any], options: RunnerOptions) -> int:
    """Run each worker in a forked process; the records they consumed, summed."""
    children = []
    for worker in range(options.workers):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: no LMDB handle of the parent's is open here
            os.close(read)
            code = 1
            try:
                os.write(write, str(_run_worker(data, definition, options, worker)).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        children.append((pid, read))
    consumed = 0
    for pid, read in children:
        with os.fdopen(read) as pipe:
            got = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"a bench worker failed with status {status}")
        consumed += int(got)
    return consumed


def run() -> list[Row]:
    """Each stateful operator alone, beside EnOS's figure (2 cores): with one worker and with
    two, the median of ROUNDS runs each, the operators taking turns so that a drift of the
    machine's speed hits them alike; writes operators.json."""
    records = generate()
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
    runs: dict[str, dict[int, list[float]]] = {name: {1: [], WORKERS: []} for name in OPERATORS}
    try:
        for _ in range(ROUNDS):
            for name, (config, _) in OPERATORS.items():
                for workers in (1, WORKERS):
                    runs[name][workers].append(measure(name, config, records, workers))
    finally:
        gc.set_threshold(*thresholds)
    rates = {name: {w: statistics.median(rs) for w, rs in by.items()} for name, by in runs.items()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operators.json").write_text(json.dumps({"median": rates, "runs": runs}, indent=2) + "\n")
    rows = []
    for name, by in rates.items():
        enos, rate, one = OPERATORS[name][1], by[WORKERS], by[1]
        spread = runs[name][WORKERS]
        rows.append(
            Row(
                f"{name} alone, log in -> log out ({RECORDS // 1000}k records, {KEYS // 1000}k keys)",
                f"records/s, {WORKERS} workers, median of {ROUNDS}",
                round(rate),
                "records/s",
                reference=f"target >= {TARGET_RATIO}x EnOS",
                ratio="met" if rate / enos >= TARGET_RATIO else "not met",
                enos=f"{enos:,} records/s",
                enos_ratio=f"{rate / enos:.1f}x",
                note=f"runs {min(spread):,.0f}-{max(spread):,.0f}; 1 worker {one:,.0f} ({one / enos:.1f}x)",
            )
        )
    return rows


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.operators")
