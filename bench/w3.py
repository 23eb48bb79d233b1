"""W3: electric energy from meter readings (template 3) for a day of 1-minute readings.

Each meter counts about 0.5 kWh a minute; 1 % of the meters reset once (the reading drops to
near 0) at a random minute. The template (slope threshold [0, 60] kWh/h, scale 1, daily output
plus 15-minute detail outputs) is expanded into its operator pipeline (PointSelector ->
LastChangedRecordAppender -> CumulantDecomposer -> FixedTimeWindowAggregator) and run by the
real worker process like W1. Sizes: the full workload is 10k meters (14.4M records) and runs in
`make bench-peers`; `make bench` runs 1k meters (1.44M records). There is no peer run of W3.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import workloads
from bench.core import RESULTS, run_worker, throughput_rows
from bench.table import Row
from streamcalc.pipeline import load_pipeline_document
from streamcalc.records import Record

SEED = 20261126
MINUTES, RESET_FRACTION = 1_440, 0.01
SMALL_METERS, FULL_METERS = 1_000, 10_000
IN, OUT = "MEASURE_POINT_INTERNAL_w3", "MEASURE_POINT_CAL_w3"
ENOS_RECORDS_PER_S = 6_100  # CumulantDecomposer, the slowest stage of the chain (2 cores, 4 GB)
TEMPLATE: dict[str, Any] = {
    "templateType": 3,
    "template": {
        "sourceTopic": IN,
        "destinationTopic": OUT,
        "policies": [
            {
                "inputPoint": "meter::kwh",
                "slopeThreshold": {"type": "fixed", "min": 0, "max": 60},
                "scale": {"type": "fixed", "value": 1},
                "dailyOutputPoint": "meter::kwh_day",
                "detailOutput": {"outputPoint": "meter::kwh_15m", "windowSize": 15, "windowUnit": "minute"},
            }
        ],
    },
}


def readings(meters: int, seed: int) -> Iterator[list[Record]]:
    """One reading a minute of every meter, minute by minute, over one UTC day."""
    rng = random.Random(seed)
    value = [rng.uniform(1_000, 100_000) for _ in range(meters)]
    reset_at = {m: rng.randrange(1, MINUTES) for m in range(meters) if rng.random() < RESET_FRACTION}
    chunk: list[Record] = []
    for minute in range(MINUTES):
        t = workloads.T0_MS + minute * 60_000
        for m in range(meters):
            value[m] = rng.uniform(0, 1) if reset_at.get(m) == minute else value[m] + rng.uniform(0.4, 0.6)
            chunk.append(
                Record(
                    orgId="bench",
                    modelId="meter",
                    modelIdPath="/meter",
                    assetId=f"meter{m}",
                    pointId="kwh",
                    time=t,
                    value=round(value[m], 3),
                )
            )
            if len(chunk) == workloads.CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def run(full: bool = False) -> list[Row]:
    """W3 at 10k meters (`full`) or 1k; writes w3.json."""
    meters = FULL_METERS if full else SMALL_METERS
    definition = load_pipeline_document(TEMPLATE).model_dump(exclude_unset=True)
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-w3-") as tmp:
        workloads.append_records(Path(tmp), IN, readings(meters, SEED))
        ours = run_worker(Path(tmp), "w3", definition, (IN, OUT), meters)
    print(f"W3 streamcalc: {ours['records_per_s']:,.0f} rec/s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "w3.json").write_text(json.dumps({"meters": meters, "run": ours}, indent=2) + "\n")
    size = "full size" if full else f"scaled to {meters // 1000}k of the 10k meters"
    title = f"W3 energy by meter reading, template 3 ({meters * MINUTES / 1e6:g}M records, {size})"
    return throughput_rows(
        title, [ours], [], ("CumulantDecomposer, the chain's slowest stage", ENOS_RECORDS_PER_S)
    )
