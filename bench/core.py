"""`make bench`: W1 end to end through the real worker process, and the stage-state delete.

W1: EDHKafkaConsumer -> PointSelector -> SimplifiedTimeWindowAggregator -> EDHKafkaProducer,
1M records over 100k keys (bench/workloads.py), embedded log in and out, LMDB state, run by
the real worker process exactly as the supervisor runs it, and again by two workers over a
2-partition input (without the peer, which runs at parallelism 2). The records are written once as
JSON lines and appended to a fresh log before each run's clock starts; with `peers`, each
run is followed by the PyFlink peer over the same file (bench/peers/), so the two alternate.
Delete: 100,000 keys (316 assets x 316 points) of one stage in one transaction.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import workloads
from bench.peers import flink
from bench.table import Row
from streamcalc.backends import Backends
from streamcalc.log import TopicConfig
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.worker import worker_command
from streamcalc.runtime.worker_spec import write_spec
from streamcalc.state.lmdb import open_pipeline_state

RESULTS = Path(__file__).parent / "results"
RECORDS, KEYS, SEED = 1_000_000, 100_000, 20261124
WORKERS = 2
"""W1 is also run as a pipeline of this many workers (the cores of the machine)."""
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
    """W1's input, straight into the log under `data_dir`."""
    workloads.append_records(data_dir, IN, workloads.w1_records(RECORDS, KEYS, SEED))


def run_worker(
    data_dir: Path,
    pipeline_id: str,
    definition: dict[str, Any],
    topics: tuple[str, str],
    keys: int,
    workers: int = 1,
    state: str = "lmdb",
    log: str = "embedded",
) -> dict[str, Any]:
    """Run `definition` in `workers` worker processes on `log` and `state` (URLs) until they have
    committed all of the input topic, timed from the spawn; then measure them and digest the
    outputs. The steady
    rate counts from the first commit (None if that commit covered everything). Peak RSS
    (summed over the workers) counts the pages of the memory-mapped log and state files each
    touched; the anonymous part (sampled every ~50 ms) is their own memory."""
    topic_in, topic_out = topics
    backends = Backends.resolve(data_dir, log=log, state=state)
    partitions = range(backends.log.ensure_topic(TopicConfig(topic_in)).partitions)
    records = sum(backends.log.end_offset(topic_in, p) for p in partitions)
    write_spec(data_dir, pipeline_id, definition, RunnerOptions(workers=workers), backends.urls)
    store = backends.state.store(pipeline_id)
    commits: list[tuple[float, int]] = []
    peak_anon_kb = polls = 0
    started = time.perf_counter()
    procs = [subprocess.Popen(worker_command(data_dir, pipeline_id, k)) for k in range(workers)]

    def summed(field: str) -> int:
        return sum(proc_field(w.pid, "status", field) for w in procs)

    try:
        while (done := sum(store.checkpoint().offsets.get((topic_in, p), 0) for p in partitions)) < records:
            if not commits or commits[-1][1] != done:
                commits.append((time.perf_counter(), done))
            if any(w.poll() is not None for w in procs):
                raise RuntimeError(f"a worker exited with {[w.returncode for w in procs]}")
            if polls % 10 == 0:
                peak_anon_kb = max(peak_anon_kb, summed("RssAnon"))
            polls += 1
            time.sleep(0.005)
        finished = time.perf_counter()
        peak_rss_kb = summed("VmHWM")
        peak_anon_kb = max(peak_anon_kb, summed("RssAnon"))
        seq = store.checkpoint().seq
    finally:
        for w in procs:
            w.terminate()
        for w in procs:
            w.wait()
        backends.close()
    first_time, first_done = next(((t, n) for t, n in commits if n > 0), (finished, records))
    digest = workloads.Digest.of(workloads.log_messages(data_dir, topic_out, log))
    lmdb_dir = data_dir / "state" / pipeline_id
    state_bytes = sum(f.stat().st_size for f in lmdb_dir.iterdir()) if lmdb_dir.is_dir() else None
    return {
        "records": records,
        "keys": keys,
        "last_batch_seq": seq,
        "outputs": digest.count,
        "outputs_digest": digest.sum64,
        "seconds_from_spawn": finished - started,
        "records_per_s": records / (finished - started),
        "steady_records_per_s": (records - first_done) / (finished - first_time)
        if first_done < records
        else None,
        "worker_peak_rss_mb": peak_rss_kb / 1024,
        "worker_peak_anon_rss_mb": peak_anon_kb / 1024,
        "state_file_bytes_per_key": None if state_bytes is None else state_bytes / keys,
    }


def proc_field(pid: int, file: str, name: str) -> int:
    """The number after `name:` in /proc/PID/`file` of a live process (kB in `status`, e.g.
    VmHWM, its peak resident set; bytes in `io`)."""
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise KeyError(f"{name} in /proc/{pid}/{file}")


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


def side_by_side(
    workload: str,
    jsonl: Path,
    definition: dict[str, Any],
    topics: tuple[str, str],
    keys: int,
    rounds: int,
    peers: bool,
    workers: int = 1,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`rounds` streamcalc runs (of `workers` workers) over the JSON lines, each in a fresh data
    dir, each followed by a PyFlink run over the same file when `peers` (A/B alternate, as the
    load drifts)."""
    ours, theirs = [], []
    for i in range(rounds):
        with tempfile.TemporaryDirectory(prefix="streamcalc-bench-") as tmp:
            workloads.append_jsonl(Path(tmp), topics[0], jsonl, workers)
            ours.append(run_worker(Path(tmp), workload.lower(), definition, topics, keys, workers))
        print(
            f"{workload} streamcalc ({workers} worker(s)) {i + 1}/{rounds}: "
            f"{ours[-1]['records_per_s']:,.0f} rec/s",
            flush=True,
        )
        if peers:
            theirs.append(flink.run(workload.lower(), jsonl, ours[-1]["records"]))
            print(
                f"{workload} PyFlink {i + 1}/{rounds}: {theirs[-1]['records_per_s']:,.0f} rec/s", flush=True
            )
    return ours, theirs


def throughput_rows(
    title: str,
    ours: list[dict[str, Any]],
    theirs: list[dict[str, Any]],
    enos: tuple[str, int],
    target: float | None = None,
) -> list[Row]:
    """The rows of a log-in -> log-out workload: the median run of each engine (by records/s),
    streamcalc/PyFlink ratios (`target`: the records/s ratio to meet), and EnOS's published
    figure for `enos` = (operator, records/s)."""
    s = median_run(ours)
    rates = f"{min(r['records_per_s'] for r in ours):,.0f}-{max(r['records_per_s'] for r in ours):,.0f}"
    runs = f"median of {len(ours)}, range {rates}" if len(ours) > 1 else "1 run"
    enos_name, enos_rate = enos
    rows = [
        Row(
            title,
            "records/s from worker spawn to last commit",
            round(s["records_per_s"]),
            "records/s",
            enos=f"{enos_rate:,} records/s ({enos_name})",
            enos_ratio=f"{s['records_per_s'] / enos_rate:.1f}x",
            note=runs,
        ),
        Row(title, "records/s after the first commit", round(s["steady_records_per_s"]), "records/s"),
        Row(
            title,
            "worker peak RSS (VmHWM; mapped LMDB pages count)",
            round(s["worker_peak_rss_mb"]),
            "MB",
            note=f"anonymous (the worker's own memory): {s['worker_peak_anon_rss_mb']:,.0f} MB",
        ),
        Row(title, "state on disk per key (LMDB files)", round(s["state_file_bytes_per_key"]), "B/key"),
    ]
    if not theirs:
        return rows
    f = median_run(theirs)
    rate, steady, rss, state = rows
    vs = s["records_per_s"] / f["records_per_s"]
    goal = f" (target >= {target:g}x: {'met' if vs >= target else 'not met'})" if target else ""
    return [
        replace(
            rate,
            reference=(
                f"PyFlink {f['records_per_s']:,.0f} records/s from job launch "
                f"({f['records_per_s_from_execute']:,.0f} from execute(), JVM up)"
            ),
            ratio=f"{vs:.1f}x{goal}",
            note=f"{runs}; PyFlink {len(theirs)} run(s), parallelism {f['parallelism']}",
        ),
        replace(
            steady,
            reference=f"PyFlink {f['records_per_s_from_task_open']:,.0f} records/s from its first task open",
            ratio=f"{s['steady_records_per_s'] / f['records_per_s_from_task_open']:.1f}x",
        ),
        replace(
            rss,
            reference=f"PyFlink {f['peak_rss_mb']:,.0f} MB (driver + JVM)",
            ratio=_less_or_more(s["worker_peak_rss_mb"], f["peak_rss_mb"]),
        ),
        replace(state, reference="PyFlink: heap state backend, nothing on disk (no checkpoints)"),
        outputs_row(title, s, f, "PyFlink"),
    ]


def same_outputs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two runs wrote the same records: equal count and order-free digest."""
    return (a["outputs"], a["outputs_digest"]) == (b["outputs"], b["outputs_digest"])


def outputs_row(title: str, ours: dict[str, Any], theirs: dict[str, Any], peer: str) -> Row:
    """The row that says whether streamcalc and `peer` wrote the same records."""
    return Row(
        title,
        "outputs (same records both sides?)",
        ours["outputs"],
        "records",
        reference=f"{peer} {theirs['outputs']:,} records",
        ratio="equal" if same_outputs(ours, theirs) else "DIFFER",
        note=f"order-free digest streamcalc {ours['outputs_digest']}, {peer} {theirs['outputs_digest']}",
    )


def _less_or_more(ours: float, theirs: float) -> str:
    """e.g. "3.4x less" or "2.0x more" (memory: smaller is better, so no ratio below 1)."""
    return f"{theirs / ours:.1f}x less" if ours <= theirs else f"{ours / theirs:.1f}x more"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median records/s."""
    return sorted(runs, key=lambda r: r["records_per_s"])[len(runs) // 2]


def run(peers: bool = False, rounds: int = 3) -> list[Row]:
    """W1 (`rounds` runs, alternating with PyFlink when `peers`) and the delete; writes core.json."""
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-w1-") as tmp:
        jsonl = Path(tmp) / "w1.jsonl"
        workloads.write_jsonl(jsonl, workloads.w1_records(RECORDS, KEYS, SEED))
        ours, theirs = side_by_side("W1", jsonl, PIPELINE, (IN, OUT), KEYS, rounds, peers)
        parallel, _ = side_by_side("W1", jsonl, PIPELINE, (IN, OUT), KEYS, rounds, False, WORKERS)
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-") as tmp:
        delete = run_delete(Path(tmp))
    RESULTS.mkdir(exist_ok=True)
    report = {
        "w1_runs": ours,
        f"w1_{WORKERS}_workers_runs": parallel,
        "w1_pyflink_runs": theirs,
        "delete": delete,
    }
    (RESULTS / "core.json").write_text(json.dumps(report, indent=2) + "\n")
    title = f"W1 keyed running sum ({RECORDS / 1e6:g}M records, {KEYS // 1000}k keys)"
    slowest = min(ENOS_RECORDS_PER_S, key=ENOS_RECORDS_PER_S.__getitem__)
    enos = (f"{slowest}, its slowest stage", ENOS_RECORDS_PER_S[slowest])
    return [
        *throughput_rows(title, ours, theirs, enos, target=5),
        *throughput_rows(f"{title}, {WORKERS} workers over {WORKERS} partitions", parallel, [], enos),
        Row(
            "Delete 100,000 keys (316 x 316) in one LMDB transaction",
            f"p50 of {delete['runs']}",
            round(delete["p50_ms"], 1),
            "ms",
            reference="target < 100 ms",
            ratio="met" if delete["p50_ms"] < 100 else "not met",
            note=f"max {delete['max_ms']:.1f} ms",
        ),
    ]


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.core")
