"""`make bench`, library part: records/s of each stateful operator, end to end.

Each operator runs alone between the embedded log source and destination (decode, the
operator with its LMDB state, encode, commit), 200k records over 10k keys, in this process
with the worker's GC settings - so the figure is the operator plus the runtime around it,
beside EnOS's published per-operator figure (2 cores, 4 GB).
"""

from __future__ import annotations

import gc
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import RESULTS
from bench.table import Row
from streamcalc.log import AppendEntry, open_log
from streamcalc.pipeline import build_graph
from streamcalc.records import Record, encode_records
from streamcalc.runtime.policy import RunnerOptions
from streamcalc.runtime.runner import Runner
from streamcalc.runtime.worker import GC_GEN0_THRESHOLD
from streamcalc.state import open_pipeline_state

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


def generate() -> list[bytes]:
    rng = random.Random(SEED)
    t0 = 1_767_225_600_000
    return encode_records(
        [
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
    )


def measure(name: str, config: dict[str, Any], messages: list[bytes]) -> float:
    definition = {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {"instanceName": f"{name}_01", "config": config},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-ops-") as tmp:
        log_ = open_log(Path(tmp))
        store = open_pipeline_state(Path(tmp), "ops")
        for i in range(0, len(messages), 50_000):
            log_.append([AppendEntry(IN, 0, messages[i : i + 50_000])])
        runner = Runner("ops", build_graph(definition), log_, store, options=RunnerOptions(max_wait_s=0))
        runner.recover()
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        while runner.run_once():
            pass
        runner.flush()
        elapsed = time.perf_counter() - started
        gc.unfreeze()
        store.close()
        log_.close()
    assert runner.stats.records_in == RECORDS
    return RECORDS / elapsed


def run() -> list[Row]:
    """Each stateful operator alone, beside EnOS's figure; writes operators.json."""
    messages = generate()
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
    try:
        rates = {name: measure(name, config, messages) for name, (config, _) in OPERATORS.items()}
    finally:
        gc.set_threshold(*thresholds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operators.json").write_text(json.dumps(rates, indent=2) + "\n")
    rows = []
    for name, rate in rates.items():
        enos = OPERATORS[name][1]
        rows.append(
            Row(
                f"{name} alone, log in -> log out ({RECORDS // 1000}k records, {KEYS // 1000}k keys)",
                "records/s, in process",
                round(rate),
                "records/s",
                reference=f"target >= {TARGET_RATIO}x EnOS",
                ratio="met" if rate / enos >= TARGET_RATIO else "not met",
                enos=f"{enos:,} records/s",
                enos_ratio=f"{rate / enos:.0f}x",
            )
        )
    return rows


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.operators")
