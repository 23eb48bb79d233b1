"""The Kafka log beyond the contract (test_log_contract.py runs that on it): what other Kafka
clients see of it and feed it, ends and lag where the broker's ListOffsets is wrong, a cut-short
append's mark, settings from the environment with secrets redacted, and a broker that is gone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from log_support import ALL, msgs

from redis_server import free_port
from streamcalc.backends import Backends, BackendUnavailable
from streamcalc.log import AppendEntry, ProducerStamp, StampMark, TopicConfig
from streamcalc.log.kafka import KafkaLog
from streamcalc.log.kafka_settings import client_settings, redacted
from streamcalc.log.kafka_stamps import META, stamp_header


@pytest.fixture
def log(kafka_url: str, tmp_path: Path) -> Iterator[KafkaLog]:
    backends = Backends.resolve(tmp_path, log=kafka_url)
    log_ = backends.log
    assert isinstance(log_, KafkaLog)
    yield log_
    backends.close()


def brokers(kafka_url: str) -> str:
    return kafka_url.removeprefix("kafka://")


def test_a_plain_consumer_reads_our_values_keys_and_headers(log: KafkaLog, kafka_url: str) -> None:
    log.ensure_topic(TopicConfig("MEASURE_POINT_CAL_o1", partitions=4))
    p = log.partition_for("asset-7", 4)
    log.append(
        [AppendEntry("MEASURE_POINT_CAL_o1", p, [b'{"v":1}', b'{"v":2}'], keys=[b"asset-7"] * 2)],
        ProducerStamp("pipe", 1, b"meta"),
    )
    consumer = Consumer({"bootstrap.servers": brokers(kafka_url), "group.id": "plain"})
    consumer.assign([TopicPartition("MEASURE_POINT_CAL_o1", p, 0)])
    got = [consumer.poll(10) for _ in range(2)]
    consumer.close()
    assert [(m.value(), m.key()) for m in got] == [(b'{"v":1}', b"asset-7"), (b'{"v":2}', b"asset-7")]
    assert {name for name, _ in got[0].headers()} == {"streamcalc.stamp", "streamcalc.meta"}


def test_records_another_producer_keys_by_asset_land_where_partition_for_says(
    log: KafkaLog, kafka_url: str
) -> None:
    log.ensure_topic(TopicConfig("MEASURE_POINT_ORIGIN_o1", partitions=6))
    producer = Producer({"bootstrap.servers": brokers(kafka_url), "partitioner": "murmur2_random"})
    assets = [f"asset{i}" for i in range(60)]
    for asset in assets:
        producer.produce("MEASURE_POINT_ORIGIN_o1", value=asset.encode(), key=asset.encode())
    assert producer.flush(10) == 0
    placed = {
        m.decode(): p for p in range(6) for m in log.read("MEASURE_POINT_ORIGIN_o1", p, 0, ALL).messages
    }
    assert placed == {a: log.partition_for(a, 6) for a in assets}


def test_end_offset_and_lag_count_every_record_of_a_multi_record_batch(log: KafkaLog) -> None:
    # one append of 10 is one produce batch: some brokers' ListOffsets then says 1 (Tansu)
    log.append([AppendEntry("t", 0, msgs("m", 10))])
    assert log.end_offset("t", 0) == 10
    assert log.lag("g", "t") == {0: 10}
    log.commit_offsets("g", {("t", 0): 4})
    assert log.lag("g", "t") == {0: 6}
    assert log.reset_offsets("g", "t", "latest") == {0: 10}


def test_an_entry_cut_short_is_marked_as_far_as_it_landed_and_finished_by_start(
    log: KafkaLog, kafka_url: str
) -> None:
    # what a producer killed mid-entry leaves: the first 2 of its 5 messages, as it marked them
    entry = AppendEntry("t", 0, msgs("e", 5))
    log.ensure_topic(TopicConfig("t"))
    producer = Producer({"bootstrap.servers": brokers(kafka_url)})
    for i in range(2):
        headers = [stamp_header("w", 4, i, 5), *([(META, b"m4")] if i == 0 else [])]
        producer.produce("t", value=entry.messages[i], partition=0, headers=headers)
    assert producer.flush(10) == 0
    log.append([AppendEntry("t", 0, [b"other"])], ProducerStamp("v", 1))
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 4, b"m4"), written=2, count=5)
    log.append([entry._replace(start=2)], ProducerStamp("w", 4, b"m4"))
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 4, b"m4"), written=5, count=5)
    assert log.read("t", 0, 0, ALL).messages == [*entry.messages[:2], b"other", *entry.messages[2:]]


def test_last_stamp_finds_a_mark_far_behind_other_writers(log: KafkaLog) -> None:
    log.append([AppendEntry("t", 0, msgs("mine", 3))], ProducerStamp("w", 9, b"m9"))
    for _ in range(5):
        log.append([AppendEntry("t", 0, msgs("theirs", 400))], ProducerStamp("v", 1))
    assert log.last_stamp("t", 0, "w") == StampMark(ProducerStamp("w", 9, b"m9"), written=3, count=3)


def test_retention_is_the_brokers_the_topics_carry_it_and_enforce_retention_drops_nothing(
    log: KafkaLog, kafka_url: str
) -> None:
    """What the Kafka log owes of the retention part of the contract (test_log_retention.py
    runs the rest on the logs that enforce it themselves): a topic's retention becomes the
    topic's own broker configs, which any Kafka tool sees, and the broker, not streamcalc,
    drops messages."""
    log.ensure_topic(TopicConfig("aged", partitions=2, retention_ms=60_000))
    log.ensure_topic(TopicConfig("sized", retention_bytes=4_096))
    log.append([AppendEntry("aged", 0, msgs("m", 3)), AppendEntry("sized", 0, msgs("s", 2))])

    admin = AdminClient({"bootstrap.servers": brokers(kafka_url)})
    described = admin.describe_configs([ConfigResource("topic", "aged"), ConfigResource("topic", "sized")])
    configs = {resource.name: future.result(10) for resource, future in described.items()}
    assert configs["aged"]["retention.ms"].value == "60000"
    assert configs["sized"]["retention.bytes"].value == "4096"
    assert log.topic("aged") == TopicConfig("aged", partitions=2, retention_ms=60_000)

    assert log.enforce_retention() == 0
    assert log.read("aged", 0, 0, ALL).messages == msgs("m", 3)
    assert log.read("sized", 0, 0, ALL).messages == msgs("s", 2)


def test_settings_come_from_the_environment_and_secrets_are_redacted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {
        "STREAMCALC_KAFKA__SASL_USERNAME": "svc",
        "STREAMCALC_KAFKA__SASL_PASSWORD": "hunter2",
        "STREAMCALC_KAFKA__CLIENT_ID": "plant-7",
        "STREAMCALC_LOG": "ignored",
    }
    settings = client_settings("kafka://k1:9092,k2:9093", environ)
    assert settings == {
        "bootstrap.servers": "k1:9092,k2:9093",
        "client.id": "plant-7",
        "sasl.username": "svc",
        "sasl.password": "hunter2",
    }
    assert redacted(settings)["sasl.password"] == "***"
    assert redacted(settings)["sasl.username"] == "svc"
    monkeypatch.setenv("STREAMCALC_KAFKA__SSL_KEY_PASSWORD", "s3cret")
    with caplog.at_level(logging.INFO, logger="streamcalc.log.kafka"):
        Backends.resolve(tmp_path, log=kafka_url).log.close()
    assert "ssl.key.password" in caplog.text
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("kafka://user:pw@k1:9092", "takes no credentials"),
        ("kafka://k1", "host:port"),
        ("kafka://k1:9092/path", "host:port"),
    ],
)
def test_bad_kafka_urls_are_refused_without_printing_a_password(tmp_path: Path, url: str, why: str) -> None:
    with pytest.raises(BackendUnavailable, match=why) as caught:
        Backends.resolve(tmp_path, log=url).check("log")
    assert "pw" not in str(caught.value)


def test_brokers_that_do_not_answer_fail_the_open_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMCALC_KAFKA_TIMEOUT_S", "1")
    url = f"kafka://127.0.0.1:{free_port()}"
    with pytest.raises(BackendUnavailable, match=f"--log {url}: cannot open it"):
        Backends.resolve(tmp_path, log=url).check("log")
