"""W2: one-minute tumbling average (FixedTimeWindowAggregator) with 1 % late records.

One power reading per second per meter over one hour (bench/workloads.py `w2_records`), in
time order except 1 % shifted back by up to the one-minute lateness, so each of them lands in
a window that already fired and is re-emitted (`late`). EDHKafkaConsumer ->
FixedTimeWindowAggregator (avg, 1 minute, latencyMinutes 1) -> EDHKafkaProducer, through the
real worker process like W1.

Sizes: the full workload is 10k meters (36M records). Per million records, measured while other
work shared the 2 cores: streamcalc 6-9 s, PyFlink ~31 s (3.6M records in 112 s), so `make
bench` runs 1k meters (3.6M records, under a minute with its input) and `make bench-peers` the
full size, once per engine (streamcalc ~6 min, PyFlink ~20 min).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from bench import workloads
from bench.core import RESULTS, side_by_side, throughput_rows
from bench.table import Row

SEED = 20261125
SECONDS, LATE_FRACTION, LATENCY_MINUTES = 3_600, 0.01, 1
SMALL_KEYS, FULL_KEYS = 1_000, 10_000
IN, OUT = "MEASURE_POINT_INTERNAL_w2", "MEASURE_POINT_CAL_w2"
ENOS_RECORDS_PER_S = 6_500  # FixedTimeWindowAggregator, 2 cores, 4 GB
PIPELINE: dict[str, Any] = {
    "stages": [
        {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
        {
            "instanceName": "FixedTimeWindowAggregator_01",
            "config": {
                "latencyMinutes": LATENCY_MINUTES,
                "rules": [
                    {
                        "inputPoint": "meter::power",
                        "windowSize": 1,
                        "windowUnit": "minute",
                        "aggregator": "avg",
                        "outputPoint": "meter::power_avg1m",
                    }
                ],
            },
        },
        {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
    ]
}


def run(full: bool = False, peers: bool = False) -> list[Row]:
    """W2 at 10k meters (`full`) or 1k, once per engine; writes w2.json."""
    keys = FULL_KEYS if full else SMALL_KEYS
    records = keys * SECONDS
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-w2-") as tmp:
        jsonl = Path(tmp) / "w2.jsonl"
        chunks = workloads.w2_records(keys, SECONDS, LATE_FRACTION, LATENCY_MINUTES * 60_000, SEED)
        workloads.write_jsonl(jsonl, chunks)
        ours, theirs = side_by_side("W2", jsonl, PIPELINE, (IN, OUT), keys, 1, peers)
    RESULTS.mkdir(exist_ok=True)
    report = {"keys": keys, "records": records, "w2_runs": ours, "w2_pyflink_runs": theirs}
    (RESULTS / "w2.json").write_text(json.dumps(report, indent=2) + "\n")
    size = "full size" if full else f"scaled to {keys // 1000}k of the 10k meters"
    title = (
        f"W2 1-min tumbling avg, 1% late ({records / 1e6:g}M records, {keys // 1000}k meters x 1 h of 1 s; "
        f"{size})"
    )
    return throughput_rows(title, ours, theirs, ("FixedTimeWindowAggregator", ENOS_RECORDS_PER_S))
