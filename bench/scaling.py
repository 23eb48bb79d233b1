"""Scaling: W1 (bench/core.py's pipeline and records) over 10k-10M keys and batch sizes 100-10,000.

Each key count gets one seeded input; each batch size reads a prefix of it as a pipeline of its
own (own state, own output topic) through the real worker process, timed from spawn until the
store has committed the last record. Per run: records/s; records per worker CPU-second (what
other processes on a busy machine cannot take away); bytes written per record (the file pages
the worker dirtied, /proc/PID/io write_bytes: an upper bound of its disk writes, as LMDB copies
every page a commit touches); the worker's peak RSS, all of it and the anonymous part (LMDB
maps the log and the state, so file pages the kernel may drop count in the total); state file
bytes per key holding state.

Record counts: max(1M, 3 x keys), so a key is touched ~3 times or more, except
- batch 100: at most 1M records (so 1M of the 3M at 1M keys): per-batch costs dominate there;
- 10M keys: batch 10,000 only. 30M records take ~11 min at the ~45k records/s reached there
  on a quiet machine; the other two batch sizes would add ~25 min more.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from bench import workloads
from bench.core import IN, OUT, PIPELINE, RESULTS, SEED, proc_field
from bench.table import Row
from streamcalc.backends import Backends
from streamcalc.runtime.keyed_state import DEFAULT_MAX_CACHED_KEYS
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.worker import worker_command
from streamcalc.runtime.worker_spec import write_spec
from streamcalc.state.lmdb import open_pipeline_state

KEYS = (10_000, 100_000, 1_000_000, 10_000_000)
BATCHES = (100, 1_000, 10_000)
RECORDS_PER_APPEND = 1_000
"""Records per input log append, as an ingest request or an upstream pipeline's batch would
write them. The log stores an append as one value, so a read decodes the whole append: with
bench/core.py's 50k-record appends, a 100-record batch would decode 50k records per read."""
RSS_SAMPLE_S = 0.05


@dataclass(frozen=True)
class Cell:
    keys: int
    batch: int
    records: int


def plan(keys: Sequence[int] = KEYS, batches: Sequence[int] = BATCHES) -> list[Cell]:
    """The runs of the grid, in the order they run (see the module docstring for the counts)."""
    cells = []
    for k in keys:
        full = max(1_000_000, 3 * k)
        for b in batches:
            if k >= 10_000_000 and b != 10_000:
                continue
            cells.append(Cell(k, b, min(full, 1_000_000) if b == 100 else full))
    return cells


def write_input(data_dir: Path, records: int, keys: int, per_append: int = RECORDS_PER_APPEND) -> None:
    """W1's records (bench/workloads.py, with core's seed) over `keys` keys, appended to W1's input
    topic `per_append` at a time."""
    stream = chain.from_iterable(workloads.w1_records(records, keys, SEED))
    appends = iter(lambda: list(islice(stream, per_append)), [])
    workloads.append_records(data_dir, IN, appends)


def keys_with_state(records: int, keys: int) -> float:
    """How many of `keys` uniformly drawn keys `records` records are expected to touch."""
    return keys * -math.expm1(records * math.log1p(-1 / keys))


def run_cell(data_dir: Path, cell: Cell) -> dict[str, Any]:
    """Run the first `cell.records` input records at `cell.batch` records per batch; the state is
    deleted afterwards (the input and the output topic stay until the data dir goes)."""
    pipeline_id = f"k{cell.keys}-b{cell.batch}"
    pipeline = copy.deepcopy(PIPELINE)
    pipeline["stages"][-1]["config"]["topic"] = f"{OUT}-b{cell.batch}"
    options = RunnerOptions(max_batch_records=cell.batch)
    write_spec(data_dir, pipeline_id, pipeline, options, Backends.resolve(data_dir).urls)
    store = open_pipeline_state(data_dir, pipeline_id)
    commits: list[tuple[float, int]] = []
    peak_anon_kb = 0
    load_before = os.getloadavg()[0]
    started = next_sample = time.perf_counter()
    worker = subprocess.Popen(worker_command(data_dir, pipeline_id))
    try:
        while (done := store.checkpoint().offsets.get((IN, 0), 0)) < cell.records:
            now = time.perf_counter()
            if done and (not commits or commits[-1][1] != done):
                commits.append((now, done))
            if now >= next_sample:
                peak_anon_kb = max(peak_anon_kb, proc_field(worker.pid, "status", "RssAnon"))
                next_sample = now + RSS_SAMPLE_S
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}")
            time.sleep(0.005)
        finished = time.perf_counter()
        commits.append((finished, done))
        peak_kb = proc_field(worker.pid, "status", "VmHWM")
        cpu_s = _cpu_seconds(worker.pid)
        written = proc_field(worker.pid, "io", "write_bytes")
        peak_anon_kb = max(peak_anon_kb, proc_field(worker.pid, "status", "RssAnon"))
    finally:
        worker.terminate()
        worker.wait()
        store.close()
    state_dir = data_dir / "state" / pipeline_id
    state_bytes = sum(f.stat().st_size for f in state_dir.iterdir())
    shutil.rmtree(state_dir)
    stateful = keys_with_state(cell.records, cell.keys)
    return {
        **asdict(cell),
        "keys_with_state": round(stateful),
        "seconds_from_spawn": finished - started,
        "records_per_s": done / (finished - started),
        "last_third_records_per_s": last_third_rate(commits),
        "records_per_worker_cpu_s": done / cpu_s,
        "written_bytes_per_record": written / done,
        "worker_peak_rss_mb": peak_kb / 1024,
        "worker_peak_anon_rss_mb": peak_anon_kb / 1024,
        "state_file_bytes_per_key": state_bytes / stateful,
        "load_average_before": load_before,
    }


def last_third_rate(commits: Sequence[tuple[float, int]]) -> float:
    """Records/s over the last third of a run's input, from its commits (time, records done):
    the rate the run settled at, where state has grown to its final size."""
    end_t, end_n = commits[-1]
    start_t, start_n = next((t, n) for t, n in commits if n >= end_n * 2 / 3)
    if start_n == end_n:  # one commit covered the whole last third: use the one before it
        start_t, start_n = max((t, n) for t, n in commits if n < end_n)
    return (end_n - start_n) / (end_t - start_t)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cells: Sequence[Cell] | None = None) -> list[Row]:
    """Run the grid (one data dir per key count, removed after it), write scaling.json/.md/.png."""
    cells = plan() if cells is None else cells
    results = []
    for keys in dict.fromkeys(c.keys for c in cells):
        group = [c for c in cells if c.keys == keys]
        with tempfile.TemporaryDirectory(prefix="streamcalc-bench-scaling-") as tmp:
            t = time.perf_counter()
            write_input(Path(tmp), max(c.records for c in group), keys)
            print(f"scaling: {keys:,} keys, input written in {time.perf_counter() - t:.0f}s", flush=True)
            for cell in group:
                results.append(run_cell(Path(tmp), cell))
                r = results[-1]
                print(
                    f"scaling: {keys:,} keys, batch {cell.batch:,}, {cell.records:,} records: "
                    f"{r['records_per_s']:,.0f} records/s, peak RSS {r['worker_peak_rss_mb']:,.0f} MB",
                    flush=True,
                )
    write_results(results)
    return [_row(r) for r in results]


def write_results(results: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "max_cached_keys": DEFAULT_MAX_CACHED_KEYS,
        "runs": results,
    }
    (RESULTS / "scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| keys | batch | records | records/s | last third records/s | records per worker CPU-s | "
        "written B/record | peak RSS MB | peak anon RSS MB | state B/key | load before |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['keys']:,} | {r['batch']:,} | {r['records']:,} | {r['records_per_s']:,.0f} | "
        f"{r['last_third_records_per_s']:,.0f} | {r['records_per_worker_cpu_s']:,.0f} | "
        f"{r['written_bytes_per_record']:,.0f} | "
        f"{r['worker_peak_rss_mb']:,.0f} | {r['worker_peak_anon_rss_mb']:,.0f} | "
        f"{r['state_file_bytes_per_key']:,.0f} | {r['load_average_before']:.1f} |"
        for r in results
    ]
    (RESULTS / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(results, RESULTS / "scaling.png")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """records/s and peak RSS against keys (log x), one line per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter

    fig, (rate_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    for batch in sorted({r["batch"] for r in results}):
        runs = sorted((r for r in results if r["batch"] == batch), key=lambda r: r["keys"])
        keys = [r["keys"] for r in runs]
        (line,) = rate_ax.plot(
            keys, [r["records_per_s"] for r in runs], "o-", label=f"batch {batch:,}: per second"
        )
        rate_ax.plot(
            keys,
            [r["records_per_worker_cpu_s"] for r in runs],
            "s--",
            color=line.get_color(),
            label=f"batch {batch:,}: per worker CPU-second",
        )
        rss_ax.plot(
            keys,
            [r["worker_peak_rss_mb"] for r in runs],
            "o-",
            color=line.get_color(),
            label=f"batch {batch:,}: all",
        )
        rss_ax.plot(
            keys,
            [r["worker_peak_anon_rss_mb"] for r in runs],
            "s--",
            color=line.get_color(),
            label=f"batch {batch:,}: anonymous",
        )
    for ax in (rate_ax, rss_ax):
        ax.set_xscale("log")
        ax.set_xticks(KEYS, [_short(k) for k in KEYS])
        ax.set_xlabel("keys (assets x points with state)")
        ax.axvline(DEFAULT_MAX_CACHED_KEYS, color="grey", linestyle=":", linewidth=1)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    rate_ax.yaxis.set_major_formatter(lambda y, _: _short(y))
    rate_ax.set_ylabel("records, end to end")
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_title("W1 throughput (dotted: worker state cache limit)")
    rss_ax.set_ylabel("worker peak RSS, MB (log)")
    rss_ax.set_yscale("log")
    rss_ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    rss_ax.yaxis.set_major_formatter(lambda y, _: f"{y:,.0f}")
    rss_ax.yaxis.set_minor_formatter(NullFormatter())
    rss_ax.set_title("W1 worker memory")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(n: float) -> str:
    """10000 -> 10k, 1000000 -> 1M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


def _row(r: dict[str, Any]) -> Row:
    return Row(
        workload=f"W1 scaling: {r['keys']:,} keys, batch {r['batch']:,} ({r['records']:,} records)",
        measure="records/s",
        value=round(r["records_per_s"]),
        unit="records/s",
        note=(
            f"peak RSS {r['worker_peak_rss_mb']:,.0f} MB ({r['worker_peak_anon_rss_mb']:,.0f} anonymous), "
            f"state {r['state_file_bytes_per_key']:,.0f} B/key"
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--keys", type=int, nargs="*", default=list(KEYS))
    parser.add_argument("--batches", type=int, nargs="*", default=list(BATCHES))
    args = parser.parse_args()
    run(plan(args.keys, args.batches))


if __name__ == "__main__":
    main()
