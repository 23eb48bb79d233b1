"""`make bench`, Kafka part: W1 over a Kafka-protocol broker (Tansu, one broker on this
machine's loopback, memory storage) beside W1 on the embedded log, interleaved, and the
broker's own consume rate as the ceiling: how fast a plain confluent-kafka consumer reads the
same input topic, without processing anything.

W1 here is 300k records over 30k keys (as bench/redis_state.py), one worker, LMDB state; a
fresh broker per run. Both sides run the same records through the real worker process.

`--peers` (`make bench-peers`) adds Quix Streams over the same records after each Kafka run,
on a broker of its own (bench/peers/quix.py), exactly-once with RocksDB state and its
changelog; outputs are compared by count and digest."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from tests.kafka_broker import TansuBroker
from tests.redis_server import free_port

from bench import workloads
from bench.core import IN, OUT, PIPELINE, RESULTS, SEED, median_run, outputs_row, run_worker, same_outputs
from bench.peers import quix
from bench.table import Row
from streamcalc.backends import Backends
from streamcalc.log import TopicConfig

RECORDS, KEYS, ROUNDS = 300_000, 30_000, 3
QUIX_TARGET = 4
RETENTION_MS = 7 * 24 * 3600 * 1000


def consume_rate(address: str, topic: str, records: int) -> float:
    """Records/s of a plain consumer reading `records` of partition 0 of `topic` from the start."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": "bench-ceiling"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    started, got = time.perf_counter(), 0
    while got < records:
        got += sum(m.error() is None for m in consumer.consume(10_000, timeout=1))
    rate = records / (time.perf_counter() - started)
    consumer.close()
    return rate


@contextmanager
def fresh_broker(directory: Path, jsonl: Path) -> Iterator[str]:
    """A new Tansu broker's host:port, with the W1 records in the input topic (created with a
    retention.ms of its own, which Quix Streams needs to read back), stopped afterwards."""
    broker = TansuBroker(directory / "tansu", free_port())
    try:
        url = f"kafka://{broker.address}"
        backends = Backends.resolve(directory, log=url)
        backends.log.ensure_topic(TopicConfig(IN, retention_ms=RETENTION_MS))
        backends.close()
        workloads.append_jsonl(directory, IN, jsonl, 1, url)
        yield broker.address
    finally:
        broker.stop()


def run(peers: bool = False) -> list[Row]:
    """W1 on Kafka and on the embedded log, alternating, and Quix Streams over the same records
    after each Kafka run when `peers`; writes kafka_log.json."""
    runs: dict[str, list[dict[str, Any]]] = {"embedded": [], "kafka": [], "quix": []}
    ceilings: list[float] = []
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-kafka-") as tmp:
        jsonl = Path(tmp) / "w1.jsonl"
        workloads.write_jsonl(jsonl, workloads.w1_records(RECORDS, KEYS, SEED))
        for i in range(ROUNDS):
            with tempfile.TemporaryDirectory(prefix="streamcalc-bench-", dir=tmp) as data:
                workloads.append_jsonl(Path(data), IN, jsonl, 1)
                runs["embedded"].append(run_worker(Path(data), "w1", PIPELINE, (IN, OUT), KEYS, 1))
            with (
                tempfile.TemporaryDirectory(prefix="streamcalc-bench-", dir=tmp) as data,
                fresh_broker(Path(data), jsonl) as address,
            ):
                ceilings.append(consume_rate(address, IN, RECORDS))
                log = f"kafka://{address}"
                runs["kafka"].append(run_worker(Path(data), "w1", PIPELINE, (IN, OUT), KEYS, 1, log=log))
            if peers:
                with (
                    tempfile.TemporaryDirectory(prefix="streamcalc-bench-", dir=tmp) as data,
                    fresh_broker(Path(data), jsonl) as address,
                ):
                    runs["quix"].append(quix.run(address, (IN, OUT), RECORDS))
            for name, done in runs.items():
                if len(done) > i:
                    print(f"W1 {name} {i + 1}/{ROUNDS}: {done[-1]['records_per_s']:,.0f} rec/s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kafka_log.json").write_text(
        json.dumps({**runs, "consume_ceiling": ceilings}, indent=2) + "\n"
    )
    embedded, kafka = (median_run(runs[n]) for n in ("embedded", "kafka"))
    same = same_outputs(embedded, kafka)
    ceiling = sorted(ceilings)[len(ceilings) // 2]
    title = f"W1 over Kafka ({RECORDS / 1e3:g}k records, {KEYS // 1000}k keys, 1 worker, Tansu broker)"
    rows = [
        Row(
            title,
            "records/s from worker spawn to last commit",
            round(kafka["records_per_s"]),
            "records/s",
            reference=f"embedded log {embedded['records_per_s']:,.0f} records/s, same run",
            ratio=f"{kafka['records_per_s'] / embedded['records_per_s']:.0%} of the embedded log",
            note=f"median of {ROUNDS} each, interleaved; outputs {'equal' if same else 'DIFFER'}",
        ),
        Row(
            title,
            "broker consume rate (plain confluent-kafka consumer, no processing)",
            round(ceiling),
            "records/s",
            reference="the ceiling for anything reading this topic",
            ratio=f"streamcalc at {kafka['records_per_s'] / ceiling:.0%} of it",
        ),
    ]
    return rows + (quix_rows(title, kafka, runs["quix"]) if runs["quix"] else [])


def quix_rows(title: str, ours: dict[str, Any], runs: list[dict[str, Any]]) -> list[Row]:
    """streamcalc on Kafka against the median Quix Streams run."""
    q = median_run(runs)
    vs = ours["records_per_s"] / q["records_per_s"]
    steady = ours["steady_records_per_s"]
    return [
        Row(
            title,
            "streamcalc vs Quix Streams (exactly-once, RocksDB + changelog), from launch",
            round(ours["records_per_s"]),
            "records/s",
            reference=f"Quix Streams {q['records_per_s']:,.0f} records/s from launch to its last record",
            ratio=f"{vs:.1f}x (target >= {QUIX_TARGET:g}x: {'met' if vs >= QUIX_TARGET else 'not met'})",
            note=f"Quix {len(runs)} run(s), {q['startup_s']:.1f} s from launch to its first record",
        ),
        Row(
            title,
            "streamcalc after its first commit vs Quix from its first record",
            round(steady) if steady else 0,
            "records/s",
            reference=f"Quix Streams {q['records_per_s_from_first_record']:,.0f} records/s",
            ratio=f"{steady / q['records_per_s_from_first_record']:.1f}x" if steady else "",
            note=f"Quix peak RSS {q['peak_rss_mb']:,.0f} MB, streamcalc {ours['worker_peak_rss_mb']:,.0f} MB",
        ),
        outputs_row(title, ours, q, "Quix Streams"),
    ]


if __name__ == "__main__":
    import sys

    from bench.table import publish

    publish(run(peers="--peers" in sys.argv), RESULTS, "python -m bench.kafka_log")
