"""Runs the PyFlink peer (flink_job.py) in its own virtualenv and measures it from outside.

Three clocks, all wall time on this machine: from the launch of the job's process (Python
start, PyFlink import, JVM start, mini-cluster start, job submission and run: what a user
waits for), from `execute()` (the JVM is up; the mini-cluster start and job deployment are
still in), and from the first task's `open()` (only the run). Peak RSS is the sum of the
peaks of every process in the job's tree (the Python driver and the JVM that hosts the
mini-cluster and, in thread mode, the Python functions).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.workloads import Digest, file_messages

PEER_DIR = Path(__file__).parent
VENV = PEER_DIR / ".venv"
PARALLELISM = 2
"""The machine's 2 cores. Thread mode runs every task's Python in one embedded interpreter, so
the tasks share its lock: W1 probes at parallelism 1 ran 10-25 % faster (same load)."""
RSS_SAMPLE_S = 0.1


def run(workload: str, input_path: Path, records: int, parallelism: int = PARALLELISM) -> dict[str, Any]:
    """Run the peer over `input_path` (`records` JSON lines); its timings, memory and outputs."""
    python = VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no PyFlink virtualenv at {VENV}: run `make bench-peers`")
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-flink-") as tmp:
        out = Path(tmp) / "out"
        stdout, stderr = Path(tmp) / "stdout", Path(tmp) / "stderr"
        command = [str(python), str(PEER_DIR / "flink_job.py"), "--workload", workload]
        command += ["--input", str(input_path), "--output", str(out), "--parallelism", str(parallelism)]
        with stdout.open("wb") as so, stderr.open("wb") as se:
            launched = time.time()
            env = _environment(Path(tmp))
            job = subprocess.Popen(command, stdout=so, stderr=se, env=env, cwd=PEER_DIR)
            peak_kb = wait_sampling_rss(job)
        if job.returncode != 0:
            tail = stderr.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the PyFlink job failed with exit {job.returncode}:\n{tail}")
        timing = json.loads(stdout.read_text().strip().splitlines()[-1])
        digest = Digest.of(file_messages(sorted(p for p in (out / "records").rglob("*") if p.is_file())))
    done = timing["finished"]
    return {
        "records": records,
        "parallelism": parallelism,
        "outputs": digest.count,
        "outputs_digest": digest.sum64,
        "seconds_from_launch": done - launched,
        "records_per_s": records / (done - launched),
        "jvm_start_s": timing["jvm_ready"] - launched,
        "records_per_s_from_execute": records / (done - timing["submitted"]),
        "records_per_s_from_task_open": records / (done - timing["first_task_open"]),
        "peak_rss_mb": peak_kb / 1024,
    }


def _environment(tmp: Path) -> dict[str, str]:
    """The embedded interpreter of thread mode (pemja) does not see the virtualenv's packages
    on its own (it starts from the base Python), so they go on PYTHONPATH. The JVM's temporary
    files (~25 MB a run) go to `tmp`, removed after the run, instead of piling up in /tmp."""
    site = next((VENV / "lib").glob("python3*/site-packages"))
    return {**os.environ, "PYTHONPATH": str(site), "JAVA_TOOL_OPTIONS": f"-Djava.io.tmpdir={tmp}"}


def wait_sampling_rss(job: subprocess.Popen[bytes]) -> int:
    """Wait for the job; the sum over its process tree of each process's peak RSS, in kB."""
    peaks: dict[int, int] = {}
    while job.poll() is None:
        for pid in _tree(job.pid):
            peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kb(pid))
        time.sleep(RSS_SAMPLE_S)
    return sum(peaks.values())


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _vm_hwm_kb(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)
