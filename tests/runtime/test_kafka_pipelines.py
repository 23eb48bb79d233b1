"""Pipelines of several workers on Kafka: records that another Kafka producer keys by assetId
reach the worker that owns their asset (none goes to the error lane as misplaced), a missing
source topic is created with the workers' partitions, and one they cannot share is refused.
(The crash matrix on Kafka is in test_crash.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer
from runtime_support import (
    IN,
    RunResult,
    generate_messages,
    per_key,
    snapshot,
    sum_pipeline,
    supervising,
    wait_until,
)

from streamcalc.backends import Backends
from streamcalc.log import TopicConfig
from streamcalc.pipeline import PipelineError
from streamcalc.records import decode_record
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import Supervisor, WorkerStatus


@pytest.fixture
def supervisor(tmp_path: Path, kafka_url: str) -> Iterator[Supervisor]:
    with supervising(tmp_path, log=kafka_url, backoff_initial_s=0.02, backoff_max_s=0.1) as sup:
        yield sup


def topic_config(tmp_path: Path, kafka_url: str, name: str) -> TopicConfig | None:
    backends = Backends.resolve(tmp_path, log=kafka_url)
    try:
        return backends.log.topic(name)
    finally:
        backends.close()


def committed_input(tmp_path: Path, kafka_url: str) -> int:
    """Source records the workers have committed, all partitions together."""
    backends = Backends.resolve(tmp_path, log=kafka_url)
    try:
        offsets = backends.state.store("p1").checkpoint(0).offsets
        offsets |= backends.state.store("p1").checkpoint(1).offsets
        return sum(o for (t, _), o in offsets.items() if t == IN)
    finally:
        backends.close()


def test_an_external_producer_keyed_by_asset_feeds_two_workers_and_nothing_is_misplaced(
    tmp_path: Path,
    kafka_url: str,
    supervisor: Supervisor,
    reference: Callable[[list[bytes], dict[str, object]], RunResult],
) -> None:
    records = []
    for m in generate_messages(4_000, keys=60):
        try:
            records.append((decode_record(m).assetId, m))
        except msgspec.DecodeError:  # no asset to key it by
            continue
    expected = reference([m for _, m in records], sum_pipeline())
    supervisor.start("p1", sum_pipeline(), RunnerOptions(workers=2, max_wait_s=0.01, commit_interval_s=0.05))
    config = topic_config(tmp_path, kafka_url, IN)
    assert config is not None and config.partitions == 2  # created for the two workers
    producer = Producer(
        {"bootstrap.servers": kafka_url.removeprefix("kafka://"), "partitioner": "murmur2_random"}
    )
    for asset, m in records:
        producer.produce(IN, value=m, key=asset.encode())
    assert producer.flush(30) == 0
    wait_until(lambda: committed_input(tmp_path, kafka_url) == len(records), what="both workers to catch up")
    supervisor.pause("p1")
    result = snapshot(tmp_path, "p1")
    assert not [e for e in result.errors if b"belongs to partition" in e]
    assert result.errors == expected.errors
    assert per_key(result.outputs) == per_key(expected.outputs)
    assert result.state == expected.state


def test_a_source_topic_the_workers_cannot_share_is_refused(
    tmp_path: Path, kafka_url: str, supervisor: Supervisor
) -> None:
    backends = Backends.resolve(tmp_path, log=kafka_url)
    backends.log.ensure_topic(TopicConfig(IN, 3))
    backends.close()
    with pytest.raises(
        PipelineError, match=f"topic {IN} has 3 partition\\(s\\), which 2 workers cannot share"
    ):
        supervisor.start("p1", sum_pipeline(), RunnerOptions(workers=2))
    assert supervisor.info("p1") is None
    supervisor.start("p1", sum_pipeline(in_topic="NEW"), RunnerOptions(workers=4))
    config = topic_config(tmp_path, kafka_url, "NEW")
    assert config is not None and config.partitions == 4
    info = supervisor.info("p1")
    assert info is not None and info.status == WorkerStatus.RUNNING
    supervisor.stop("p1")
