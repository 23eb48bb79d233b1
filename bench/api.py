"""`make bench`, API part: Get and Delete Stage State of 100,000 keys over HTTP, on LMDB state
and on Redis state (a private redis-server, appendfsync always), one after the other.

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
from tests.redis_server import RedisServer

from bench.core import PIPELINE, RESULTS, STAGE
from bench.table import Row
from streamcalc.backends import Backends
from streamcalc.client import StreamcalcClient
from streamcalc.library.windows.simplified import SumState, Window

RUNS = 20
SERVE = [sys.executable, "-m", "streamcalc.cli", "serve"]
ORG, KEY, SECRET = "bench", "bench-app-key", "bench-app-secret"
ASSETS = [f"asset{i:03d}" for i in range(316)]
POINTS = [f"point{j:03d}" for j in range(316)]


def start_service(data_dir: Path, port: int, state: str = "lmdb") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STREAMCALC_BOOTSTRAP_ORG_ID": ORG,
        "STREAMCALC_BOOTSTRAP_APP_KEY": KEY,
        "STREAMCALC_BOOTSTRAP_APP_SECRET": SECRET,
    }
    service = subprocess.Popen(
        [*SERVE, "--port", str(port), "--data-dir", str(data_dir), "--state", state],
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


def fill_state(data_dir: Path, pipeline_id: str, state: str = "lmdb") -> None:
    value = msgspec.msgpack.encode(
        SumState((Window("meter::sum15", 1_767_225_600_000, 1_767_226_500_000, 2.5, 3),))
    )
    backends = Backends.resolve(data_dir, state=state)
    try:
        store = backends.state.store(pipeline_id)
        cp = store.checkpoint()
        store.commit({STAGE: {(a, p): value for a in ASSETS for p in POINTS}}, cp, cp.advance({}))
    finally:
        backends.close()


def timed(call: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    result = call()
    return (time.perf_counter() - t) * 1000, result


def one_rule_per_point(definition: dict[str, Any]) -> dict[str, Any]:
    """`definition` with a rule of its window stage for each of the 316 points (selected too)."""
    doc = json.loads(json.dumps(definition))
    for stage in doc["stages"]:
        if stage["instanceName"] == STAGE:
            rule = stage["config"]["rules"][0]
            stage["config"]["rules"] = [
                {**rule, "inputPoint": f"meter::{p}", "outputPoint": f"meter::{p}_sum15"} for p in POINTS
            ]
        elif "points" in stage["config"]:
            stage["config"]["points"] = [f"meter::{p}" for p in POINTS]
    return doc


def run() -> list[Row]:
    """Time Get and Delete Stage State over HTTP on each state backend, and on a pipeline of
    316 rules; writes api.json."""
    report: dict[str, Any] = {"keys": len(ASSETS) * len(POINTS), "runs": RUNS}
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-api-") as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            for name, (_, state, definition, _, _) in CASES.items():
                url = server.url() if state == "redis" else state
                report[name] = measure(Path(tmp) / name, url, definition)
        finally:
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2) + "\n")
    title = f"W4 Stage State over HTTP, {report['keys']:,} keys (316 x 316), {RUNS} runs"
    rows = []
    for name, (on, _, _, delete_goal, get_goal) in CASES.items():
        d, g, r = (report[name][k] for k in ("delete_ms", "get_ms", "get_received_ms"))
        rows += [
            _goal_row(title, f"Delete Stage State p50, {on}", d, delete_goal),
            _goal_row(
                title,
                f"Get Stage State p50, answer received (all keys have state), {on}",
                r,
                get_goal,
                "; about 17 MB of JSON",
            ),
            Row(
                title,
                f"Get Stage State p50 through the Python SDK (the answer decoded to dicts), {on}",
                round(g["p50"]),
                "ms",
                note=f"p95 {g['p95']:.0f} ms",
            ),
        ]
    return rows


def _goal_row(title: str, measure: str, ms: dict[str, float], goal: int, more: str = "") -> Row:
    """A p50 against its target, with the p95 in the note."""
    return Row(
        title,
        measure,
        round(ms["p50"]),
        "ms",
        reference=f"target <= {goal} ms",
        ratio="met" if ms["p50"] <= goal else "not met",
        note=f"p95 {ms['p95']:.0f} ms{more}",
    )


CASES: dict[str, tuple[str, str, dict[str, Any], int, int]] = {
    "lmdb": ("LMDB", "lmdb", PIPELINE, 100, 300),
    "lmdb_316_rules": ("LMDB, 316 rules (one per point)", "lmdb", one_rule_per_point(PIPELINE), 100, 300),
    "redis": ("Redis (appendfsync always)", "redis", PIPELINE, 150, 500),
}
"""name -> (label, state, pipeline, Delete target ms, Get target ms)."""


def measure(data_dir: Path, state: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Get, then Delete, Stage State of every key `RUNS` times each, on a service on `state`."""
    port = 18_000 + os.getpid() % 1000
    service = start_service(data_dir, port, state)
    try:
        with StreamcalcClient(f"http://127.0.0.1:{port}", ORG, KEY, SECRET) as api:
            pid = api.save_pipeline(None, definition, name="bench")
            api.release_pipeline(pid)
            api.start_pipeline(pid)
            api.pause_pipeline(pid)
            fill_state(data_dir, pid, state)
            gets, received, deletes = [], [], []
            body = {"pipelineId": pid, "stageInstanceName": STAGE}
            body |= {"assetIds": ",".join(ASSETS), "pointIds": ",".join(POINTS)}
            for _ in range(RUNS):
                ms, items = timed(lambda: api.get_stage_state(pid, STAGE, ASSETS, POINTS))
                assert len(items) == len(ASSETS) * len(POINTS)
                gets.append(ms)
                ms, answer = timed(
                    lambda: api.request("POST", "/streaming/v2.0/stage-state", {"action": "get"}, body)
                )
                assert answer.status_code == 200 and len(answer.content) > 100 * len(items)
                received.append(ms)
            for _ in range(RUNS):
                fill_state(data_dir, pid, state)
                ms, deleted = timed(lambda: api.delete_stage_state(pid, STAGE, ASSETS, POINTS))
                assert deleted is True
                deletes.append(ms)
            assert api.get_stage_state(pid, STAGE, ASSETS, POINTS) == []
    finally:
        service.terminate()
        service.wait()
    return {"get_ms": _stats(gets), "get_received_ms": _stats(received), "delete_ms": _stats(deletes)}


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
