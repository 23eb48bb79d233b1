"""`make bench`, Kafka part: W1 over a Kafka-protocol broker (Tansu, one broker on this
machine's loopback, memory storage) beside W1 on the embedded log, interleaved, and the
broker's own consume rate as the ceiling: how fast a plain confluent-kafka consumer reads the
same input topic, without processing anything.

W1 here is 300k records over 30k keys (as bench/redis_state.py), one worker, LMDB state; a
fresh broker per run. Both sides run the same records through the real worker process."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from tests.kafka_broker import TansuBroker
from tests.redis_server import free_port

from bench import workloads
from bench.core import IN, OUT, PIPELINE, RESULTS, SEED, median_run, run_worker
from bench.table import Row

RECORDS, KEYS, ROUNDS = 300_000, 30_000, 3


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


def run() -> list[Row]:
    """W1 on Kafka and on the embedded log, alternating; writes kafka_log.json."""
    runs: dict[str, list[dict[str, Any]]] = {"embedded": [], "kafka": []}
    ceilings: list[float] = []
    with tempfile.TemporaryDirectory(prefix="streamcalc-bench-kafka-") as tmp:
        jsonl = Path(tmp) / "w1.jsonl"
        workloads.write_jsonl(jsonl, workloads.w1_records(RECORDS, KEYS, SEED))
        for i in range(ROUNDS):
            for name in ("embedded", "kafka"):
                with tempfile.TemporaryDirectory(prefix="streamcalc-bench-", dir=tmp) as data:
                    broker = TansuBroker(Path(data) / "tansu", free_port()) if name == "kafka" else None
                    try:
                        log = f"kafka://{broker.address}" if broker else "embedded"
                        workloads.append_jsonl(Path(data), IN, jsonl, 1, log)
                        if broker:
                            ceilings.append(consume_rate(broker.address, IN, RECORDS))
                        runs[name].append(run_worker(Path(data), "w1", PIPELINE, (IN, OUT), KEYS, 1, log=log))
                    finally:
                        if broker:
                            broker.stop()
                print(f"W1 on the {name} log {i + 1}/{ROUNDS}: {runs[name][-1]['records_per_s']:,.0f} rec/s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kafka_log.json").write_text(
        json.dumps({**runs, "consume_ceiling": ceilings}, indent=2) + "\n"
    )
    embedded, kafka = (median_run(runs[n]) for n in ("embedded", "kafka"))
    same = (embedded["outputs"], embedded["outputs_digest"]) == (kafka["outputs"], kafka["outputs_digest"])
    ceiling = sorted(ceilings)[len(ceilings) // 2]
    title = f"W1 over Kafka ({RECORDS / 1e3:g}k records, {KEYS // 1000}k keys, 1 worker, Tansu broker)"
    return [
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


if __name__ == "__main__":
    from bench.table import publish

    publish(run(), RESULTS, "python -m bench.kafka_log")
