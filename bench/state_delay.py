"""`make bench`, state delay: how long after a record's output is visible Get Stage State shows
the record, on a running pipeline that has caught up (W1's pipeline, one worker, over HTTP).

Each round sends one record for a new asset, polls the output topic until the record's
output is there (the moment a consumer could see it), then polls Get Stage State until the
asset's window holds the record. Both polls are back to back with no sleep, so the figures
include one HTTP call of resolution (~1-2 ms).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api import KEY, ORG, SECRET, start_service
from bench.core import IN, OUT, PIPELINE, RESULTS, STAGE
from bench.table import Row
from streamcalc.client import StreamcalcClient

ROUNDS = 30
START_MS = 1_767_225_600_000


def run() -> list[Row]:
    """The delay in `ROUNDS` rounds; writes state_delay.json."""
    output_ms, state_ms = [], []
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-delay-") as tmp:
        port = 19_000 + os.getpid() % 1000
        service = start_service(Path(tmp), port)
        try:
            with StreamcalcClient(f"http://127.0.0.1:{port}", ORG, KEY, SECRET) as api:
                pid = api.save_pipeline(None, PIPELINE, name="delay")
                api.release_pipeline(pid)
                api.start_pipeline(pid)
                for i in range(ROUNDS):
                    sent = time.perf_counter()
                    api.produce(IN, [_record(f"asset{i}")])
                    while not api.consume(OUT, offset=i, limit=1)["records"]:
                        pass
                    seen = time.perf_counter()
                    while not api.get_stage_state(pid, STAGE, [f"asset{i}"], ["delta"]):
                        pass
                    output_ms.append((seen - sent) * 1000)
                    state_ms.append((time.perf_counter() - seen) * 1000)
                api.pause_pipeline(pid)
        finally:
            service.terminate()
            service.wait()
    report = {"rounds": ROUNDS, "output_visible_ms": output_ms, "state_after_output_ms": state_ms}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "state_delay.json").write_text(json.dumps(report, indent=2) + "\n")
    title = f"State delay on a caught-up pipeline (W1 pipeline over HTTP, {ROUNDS} rounds)"
    return [
        Row(
            title,
            "Get Stage State shows a record, after its output is visible, p50",
            round(statistics.median(state_ms), 1),
            "ms",
            reference="before: up to the 1 s commit interval",
            note=f"max {max(state_ms):.1f} ms; ingest to output visible: p50 "
            f"{statistics.median(output_ms):.0f} ms",
        )
    ]


def _record(asset: str) -> dict[str, Any]:
    return {
        "orgId": ORG,
        "modelId": "meter",
        "modelIdPath": "/meter",
        "assetId": asset,
        "pointId": "delta",
        "time": START_MS,
        "value": 1.0,
    }


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.state_delay")
