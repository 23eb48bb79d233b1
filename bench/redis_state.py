"""`make bench`, Redis part: W1 with Redis state beside W1 with LMDB state, interleaved in one
run (target: Redis >= 60% of LMDB's records/s), on a private redis-server as streamcalc
requires it (AOF, appendfsync always) on this machine's loopback. The Get and Delete Stage
State rows on Redis are in bench/api.py.

W1 here is 300k records over 30k keys (a third of the main W1), so three rounds of each fit
in a minute or two; both sides run the same records through the real worker process."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tests.redis_server import RedisServer

from bench import workloads
from bench.core import IN, OUT, PIPELINE, RESULTS, SEED, median_run, run_worker, same_outputs
from bench.table import Row

RECORDS, KEYS, ROUNDS = 300_000, 30_000, 3
TARGET = 0.6


def run() -> list[Row]:
    """W1 on LMDB and on Redis state, alternating; writes redis_state.json."""
    runs: dict[str, list[dict[str, Any]]] = {"lmdb": [], "redis": []}
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-redis-") as tmp:
        jsonl = Path(tmp) / "w1.jsonl"
        workloads.write_jsonl(jsonl, workloads.w1_records(RECORDS, KEYS, SEED))
        server = RedisServer(Path(tmp) / "redis")
        try:
            for i in range(ROUNDS):
                for name in ("lmdb", "redis"):
                    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-", dir=tmp) as data:
                        workloads.append_jsonl(Path(data), IN, jsonl, 1)
                        state = server.url(i) if name == "redis" else "lmdb"
                        runs[name].append(run_worker(Path(data), "w1", PIPELINE, (IN, OUT), KEYS, 1, state))
                    print(
                        f"W1 on {name} state {i + 1}/{ROUNDS}: {runs[name][-1]['records_per_s']:,.0f} rec/s"
                    )
        finally:
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "redis_state.json").write_text(json.dumps(runs, indent=2) + "\n")
    lmdb, redis_ = (median_run(runs[n]) for n in ("lmdb", "redis"))
    same = same_outputs(lmdb, redis_)
    ratio = redis_["records_per_s"] / lmdb["records_per_s"]
    title = f"W1 with Redis state ({RECORDS / 1e3:g}k records, {KEYS // 1000}k keys, 1 worker)"
    return [
        Row(
            title,
            "records/s, Redis state (appendfsync always)",
            round(redis_["records_per_s"]),
            "records/s",
            reference=f"LMDB state {lmdb['records_per_s']:,.0f} records/s, same run",
            ratio=f"{ratio:.0%} of LMDB (target >= {TARGET:.0%}: {'met' if ratio >= TARGET else 'not met'})",
            note=f"median of {ROUNDS} each, interleaved; outputs {'equal' if same else 'DIFFER'}",
        ),
    ]


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.redis_state")
