"""`make bench`, API part: Get and Delete Stage State of 100,000 keys over HTTP.

The service runs as its own process (`streamcalc serve`), as in production; the SDK calls it
over loopback, signing each request. 316 assets x 316 points = 99,856 keys of a paused
pipeline's window stage; each delete is timed after the keys are written back.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench.core import PIPELINE, RESULTS, STAGE
from bench.table import Row
from streamcalc.client import StreamcalcClient
from streamcalc.library.windows.simplified import SumState, Window
from streamcalc.state.lmdb import open_pipeline_state

RUNS = 20
ORG, KEY, SECRET = "bench", "bench-app-key", "bench-app-secret"
ASSETS = [f"asset{i:03d}" for i in range(316)]
POINTS = [f"point{j:03d}" for j in range(316)]


def start_service(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STREAMCALC_BOOTSTRAP_ORG_ID": ORG,
        "STREAMCALC_BOOTSTRAP_APP_KEY": KEY,
        "STREAMCALC_BOOTSTRAP_APP_SECRET": SECRET,
    }
    service = subprocess.Popen(
        [sys.executable, "-m", "streamcalc.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return service
        except httpx.TransportError:
            if time.monotonic() > deadline or service.poll() is not None:
                service.kill()
                raise RuntimeError("the service did not start") from None
            time.sleep(0.1)


def fill_state(data_dir: Path, pipeline_id: str) -> None:
    value = msgspec.msgpack.encode(
        SumState((Window("meter::sum15", 1_767_225_600_000, 1_767_226_500_000, 2.5, 3),))
    )
    store = open_pipeline_state(data_dir, pipeline_id)
    try:
        cp = store.checkpoint()
        store.commit({STAGE: {(a, p): value for a in ASSETS for p in POINTS}}, cp, cp.advance({}))
    finally:
        store.close()


def timed(call: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    result = call()
    return (time.perf_counter() - t) * 1000, result


def run() -> list[Row]:
    """Time Get and Delete Stage State over HTTP; writes api.json."""
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-api-") as tmp:
        data_dir = Path(tmp)
        port = 18_000 + os.getpid() % 1000
        service = start_service(data_dir, port)
        try:
            with StreamcalcClient(f"http://127.0.0.1:{port}", ORG, KEY, SECRET) as api:
                pid = api.save_pipeline(None, PIPELINE, name="bench")
                api.release_pipeline(pid)
                api.start_pipeline(pid)
                api.pause_pipeline(pid)
                fill_state(data_dir, pid)
                gets, deletes = [], []
                for _ in range(RUNS):
                    ms, items = timed(lambda: api.get_stage_state(pid, STAGE, ASSETS, POINTS))
                    assert len(items) == len(ASSETS) * len(POINTS)
                    gets.append(ms)
                for _ in range(RUNS):
                    fill_state(data_dir, pid)
                    ms, deleted = timed(lambda: api.delete_stage_state(pid, STAGE, ASSETS, POINTS))
                    assert deleted is True
                    deletes.append(ms)
                assert api.get_stage_state(pid, STAGE, ASSETS, POINTS) == []
        finally:
            service.terminate()
            service.wait()
    report = {
        "keys": len(ASSETS) * len(POINTS),
        "runs": RUNS,
        "get_ms": _stats(gets),
        "delete_ms": _stats(deletes),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2) + "\n")
    title = f"W4 Stage State over HTTP, {report['keys']:,} keys (316 x 316), {RUNS} runs"
    d, g = report["delete_ms"], report["get_ms"]
    return [
        Row(
            title,
            "Delete Stage State p50",
            round(d["p50"]),
            "ms",
            reference="target < 300 ms",
            ratio="met" if d["p50"] < 300 else "not met",
        ),
        Row(title, "Delete Stage State p95", round(d["p95"]), "ms"),
        Row(title, "Get Stage State p50 (all keys have state)", round(g["p50"]), "ms"),
        Row(title, "Get Stage State p95", round(g["p95"]), "ms"),
    ]


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "max": ordered[-1],
    }


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.api")
