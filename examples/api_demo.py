"""Drive a running `make run` service with the Python SDK: save, release, start, ingest,
read results and stage state, pause, delete state, resume.

    .venv/bin/python examples/api_demo.py    # while `make run` serves on 127.0.0.1:8080
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from streamcalc.client import StreamcalcClient

URL = os.environ.get("STREAMCALC_URL", "http://127.0.0.1:8080")
ORG = os.environ.get("STREAMCALC_BOOTSTRAP_ORG_ID", "demo")
KEY = os.environ.get("STREAMCALC_BOOTSTRAP_APP_KEY", "demo-app-key")
SECRET = os.environ.get("STREAMCALC_BOOTSTRAP_APP_SECRET", "demo-app-secret")
HERE = Path(__file__).parent


def main() -> None:
    definition = json.loads((HERE / "energy-sum.json").read_text())
    records = [json.loads(line) for line in (HERE / "records.ndjson").read_text().splitlines()]
    stage = "SimplifiedTimeWindowAggregator_01"
    with StreamcalcClient(URL, ORG, KEY, SECRET) as api:
        pid = api.save_pipeline(None, definition, name="energy demo")
        api.release_pipeline(pid)
        api.start_pipeline(pid)
        print("pipeline", pid, api.get_pipeline(pid)["status"])
        start = api.consume("MEASURE_POINT_CAL_demo", limit=10_000)["nextOffset"]
        print("ingested", api.produce("MEASURE_POINT_INTERNAL_demo", records))
        time.sleep(2)
        for r in api.consume("MEASURE_POINT_CAL_demo", offset=start)["records"]:
            print("result", r["record"]["assetId"], r["record"]["pointId"], r["record"]["value"])
        api.pause_pipeline(pid)
        print("state", api.get_stage_state(pid, stage, ["meter-1", "meter-2"], ["energy_delta"]))
        print("deleted meter-1:", api.delete_stage_state(pid, stage, ["meter-1"], ["energy_delta"]))
        print("state", api.get_stage_state(pid, stage, ["meter-1", "meter-2"], ["energy_delta"]))
        api.start_pipeline(pid)
        print("resumed:", api.get_pipeline(pid)["status"])
        api.stop_pipeline(pid)


if __name__ == "__main__":
    main()
