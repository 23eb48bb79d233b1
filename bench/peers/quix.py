"""Runs the Quix Streams peer (quix_job.py) in its own virtualenv against a broker, and
measures it from outside: from the launch of its process (Python start, Quix import, topic
checks, consumer-group join, state recovery, the run: what a user waits for), and from its
first record to its last (the run alone). Outputs are read back from the broker."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.peers.flink import wait_sampling_rss
from bench.workloads import Digest, log_messages

PEER_DIR = Path(__file__).parent
VENV = PEER_DIR / ".venv-quix"
IDLE_S = 2.0
"""The job stops once no record has come for this long; not counted in its time."""


def run(broker: str, topics: tuple[str, str], records: int) -> dict[str, Any]:
    """The peer over `records` records already in topic `topics[0]` of `broker` (host:port)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no Quix Streams virtualenv at {VENV}: run `make bench-peers`")
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-quix-") as tmp:
        command = [str(python), str(PEER_DIR / "quix_job.py"), "--broker", broker]
        command += ["--input", topics[0], "--output", topics[1], "--state-dir", str(Path(tmp) / "state")]
        command += ["--idle-s", str(IDLE_S)]
        stdout, stderr = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with stdout.open("wb") as so, stderr.open("wb") as se:
            launched = time.time()
            job = subprocess.Popen(command, stdout=so, stderr=se, cwd=PEER_DIR)
            peak_kb = wait_sampling_rss(job)
        if job.returncode != 0:
            tail = stderr.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the Quix Streams job failed with exit {job.returncode}:\n{tail}")
        timing = json.loads(stdout.read_text().strip().splitlines()[-1])
        digest = Digest.of(log_messages(Path(tmp), topics[1], f"kafka://{broker}"))
    last = timing["last_processed"]
    return {
        "records": records,
        "outputs": digest.count,
        "outputs_digest": digest.sum64,
        "seconds_from_launch": last - launched,
        "records_per_s": records / (last - launched),
        "startup_s": timing["first_processed"] - launched,
        "records_per_s_from_first_record": records / (last - timing["first_processed"]),
        "peak_rss_mb": peak_kb / 1024,
    }
