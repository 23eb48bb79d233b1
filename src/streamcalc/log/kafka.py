"""The Kafka Log: the Log contract on a Kafka cluster (or any Kafka-protocol broker), with
confluent-kafka.

Topics are Kafka topics of the same names (EnOS's `MEASURE_POINT_*_{orgId}` and the error
lanes), values the record JSON, keys the assetId, and `partition_for` is murmur2 as Kafka's
Java default partitioner, so other producers and consumers interoperate with ours. What the
contract asks and Kafka keeps without transactions:

- `append` produces with an idempotent producer (acks=all, so durable when it returns) and
  waits for every delivery report; an error or a timeout is `LogUnavailable`, and whatever
  landed is a prefix of each entry. Stamps are record headers (`kafka_stamps`), and
  `last_stamp` finds the newest one by reading back from the partition's end.
- Reads, the end offset and lag take the high watermark from fetch responses, never from
  ListOffsets (which some brokers answer wrongly, see docs/kafka-log.md); the start offset
  is ListOffsets' earliest.
- Consumer-group offsets are the group's offsets in Kafka, so Kafka's own tools see them.
- Retention is the broker's (`retention.ms`, `retention.bytes` set on the topics it
  creates): `enforce_retention` has nothing to do.

Every call that waits on the brokers is bounded (STREAMCALC_KAFKA_TIMEOUT_S, appends by the
producer's `message.timeout.ms`) and then fails with `LogUnavailable`: a worker fails and its supervisor
restarts it with backoff; the API answers 503.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from streamcalc.clock import Clock
from streamcalc.errors import translate_errors
from streamcalc.keys import TopicPartition as TP
from streamcalc.log.base import (
    AppendEntry,
    ProducerStamp,
    ReadResult,
    ResetTarget,
    StampMark,
    TopicConfig,
    check_entry,
    check_topic_name,
)
from streamcalc.log.errors import LogUnavailable
from streamcalc.log.kafka_reader import PartitionReader, offset_of, reader_settings
from streamcalc.log.kafka_settings import answer_timeout_s, client_settings, redacted
from streamcalc.log.kafka_stamps import META, Mark, mark_of, stamp_header, user_headers
from streamcalc.log.partitioners import murmur2_partition

log = logging.getLogger(__name__)

MESSAGE_TIMEOUT_MS = 30_000
"""How long an append keeps retrying a message before it fails (librdkafka's message.timeout.ms;
STREAMCALC_KAFKA__MESSAGE_TIMEOUT_MS overrides it)."""
_RETENTION = {"retention.ms": "retention_ms", "retention.bytes": "retention_bytes"}
_KAFKA_DEFAULTS = {"retention.ms": "604800000", "retention.bytes": "-1"}
_TOPIC_SETTLE_S = 0.05


@translate_errors(KafkaException, LogUnavailable, "Kafka")
class KafkaLog:
    def __init__(self, settings: dict[str, str], timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._admin = AdminClient(dict(settings))
        self._lock = threading.Lock()
        self._produce_lock = threading.Lock()
        self._producer: Producer | None = None
        self._readers: dict[TP, PartitionReader] = {}
        self._groups: dict[str, Consumer] = {}
        self._probe = Consumer(reader_settings(settings))
        self._probe_lock = threading.Lock()
        self._message_timeout_s = int(settings.get("message.timeout.ms", MESSAGE_TIMEOUT_MS)) / 1000
        self._partitions: dict[str, int] = {}
        """Partition counts seen: a topic's count never shrinks."""
        log.info("kafka log: %s", redacted(settings))
        self._topic_partitions()  # brokers that do not answer fail the open, not the first call

    # topics

    def ensure_topic(self, config: TopicConfig) -> TopicConfig:
        existing = self.topic(config.name)
        if existing is not None:
            return existing
        settings = {
            name: str(getattr(config, field))
            for name, field in _RETENTION.items()
            if getattr(config, field) is not None
        }
        future = self._admin.create_topics(
            [NewTopic(config.name, config.partitions, replication_factor=-1, config=settings)],
            request_timeout=self._timeout_s,
        )[config.name]
        try:
            future.result(self._timeout_s)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another process was first
                raise
        return self._await_topic(config.name)

    def topic(self, name: str) -> TopicConfig | None:
        counts = self._topic_partitions(check_topic_name(name))
        return self._configs(counts).get(name)

    def topics(self) -> list[TopicConfig]:
        configs = self._configs(self._topic_partitions())
        return [configs[name] for name in sorted(configs)]

    def partition_for(self, key: str, partitions: int) -> int:
        return murmur2_partition(key, partitions)

    # append / read

    def append(self, entries: Sequence[AppendEntry], producer: ProducerStamp | None = None) -> list[int]:
        for entry in entries:
            self._check(entry)
        firsts: list[int | None] = [None] * len(entries)
        errors: list[KafkaError] = []
        with self._produce_lock:
            producer_ = self._producer_or_new()
            for i, entry in enumerate(entries):
                self._produce_entry(producer_, entry, producer, _delivered(firsts, errors, i))
            left = producer_.flush(self._message_timeout_s + self._timeout_s)
            if left or errors:
                self._drop_producer()
                why = f"{left} message(s) not delivered in time" if left else str(errors[0])
                raise LogUnavailable(f"Kafka append failed: {why}")
        return [
            first if first is not None else self.end_offset(entry.topic, entry.partition)
            for first, entry in zip(firsts, entries, strict=True)
        ]

    def read(
        self, topic: str, partition: int, offset: int, max_messages: int, until: int | None = None
    ) -> ReadResult:
        offset = max(offset, 0)
        if not 0 <= partition < self._partition_count(topic) or max_messages <= 0:
            return ReadResult(offset, [], offset)
        reader = self._reader(topic, partition)
        if not reader.continues(offset) and offset > self.end_offset(topic, partition):
            return ReadResult(offset, [], offset)  # a fetch there would wait, not answer
        with reader.lock:
            got, following = reader.read(offset, max_messages, until)
        if not got:
            return ReadResult(following, [], following)
        offsets = [offset_of(m) for m in got]
        keys = [m.key() for m in got]
        headers = [user_headers(m.headers()) for m in got]
        return ReadResult(
            offset=offsets[0],
            messages=[m.value() or b"" for m in got],
            next_offset=following,
            offsets=None if offsets[-1] - offsets[0] == len(offsets) - 1 else offsets,
            keys=None if all(k is None for k in keys) else keys,
            headers=headers if any(headers) else None,
        )

    def start_offset(self, topic: str, partition: int) -> int:
        if not 0 <= partition < self._partition_count(topic):
            return 0
        with self._probe_lock:
            low, _ = self._probe.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=self._timeout_s, cached=False
            )
        return max(int(low), 0)

    def end_offset(self, topic: str, partition: int) -> int:
        """The high watermark of a fetch from the (perhaps wrongly) listed end."""
        if not 0 <= partition < self._partition_count(topic):
            return 0
        with self._probe_lock:
            tp = TopicPartition(topic, partition, OFFSET_END)
            self._probe.assign([tp])
            deadline = time.monotonic() + self._timeout_s
            while (remaining := deadline - time.monotonic()) > 0:
                event = self._probe.poll(remaining)
                if event is None:
                    break
                error = event.error()
                if error is None or error.code() == KafkaError._PARTITION_EOF:
                    _, high = self._probe.get_watermark_offsets(tp, cached=True)
                    self._probe.unassign()
                    return int(high)
                if error.fatal():
                    break
            self._probe.unassign()
        raise LogUnavailable(f"no answer from the Kafka brokers for the end of {topic}[{partition}]")

    def last_stamp(self, topic: str, partition: int, producer_id: str) -> StampMark | None:
        if not 0 <= partition < self._partition_count(topic):
            return None
        start, end = self.start_offset(topic, partition), self.end_offset(topic, partition)
        newest: list[Mark] = []
        meta: list[bytes] = []

        def found(message: Message) -> bool:
            mark, message_meta = mark_of(message.headers())
            if mark is None or mark.producer_id != producer_id:
                return False
            if not newest:
                newest.append(mark)
            if mark.seq == newest[0].seq and message_meta is not None:
                meta.append(message_meta)
                return True
            return mark.seq != newest[0].seq  # an older entry: the newest one's meta is gone

        reader = self._reader(topic, partition)
        with reader.lock:
            reader.scan_back(start, end, found)
        if not newest:
            return None
        mark = newest[0]
        stamp = ProducerStamp(producer_id, mark.seq, meta[0] if meta else b"")
        return StampMark(stamp, written=mark.position + 1, count=mark.length)

    # consumer groups

    def commit_offsets(self, group: str, offsets: Mapping[TP, int]) -> None:
        """Kafka refuses offsets of topics that do not exist (UNKNOWN_TOPIC_OR_PART)."""
        if offsets:
            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            self._group(group).commit(offsets=tps, asynchronous=False)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        partitions = self._partition_count(topic)
        if not partitions:
            return {}
        asked = [TopicPartition(topic, p) for p in range(partitions)]
        got = self._group(group).committed(asked, timeout=self._timeout_s)
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}

    def lag(self, group: str, topic: str) -> dict[int, int]:
        """Offsets between the committed one (or the start) and the end: on a topic written
        without transactions, messages."""
        committed = self.committed(group, topic)
        lags = {}
        for p in range(self._partition_count(topic)):
            start = self.start_offset(topic, p)
            lags[p] = max(self.end_offset(topic, p) - max(committed.get(p, start), start), 0)
        return lags

    def reset_offsets(self, group: str, topic: str, to: ResetTarget) -> dict[int, int]:
        offset_at = self.start_offset if to == "earliest" else self.end_offset
        offsets = {p: offset_at(topic, p) for p in range(self._partition_count(topic))}
        self.commit_offsets(group, {(topic, p): o for p, o in offsets.items()})
        return offsets

    def enforce_retention(self) -> int:
        """The broker enforces retention itself."""
        return 0

    def close(self) -> None:
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
            groups, self._groups = list(self._groups.values()), {}
        for reader in readers:
            with reader.lock:
                reader.close()
        for consumer in groups:
            consumer.close()
        with self._probe_lock:
            self._probe.close()
        with self._produce_lock:
            if self._producer is not None:
                self._producer.flush(self._timeout_s)
                self._producer = None

    # internals

    def _check(self, entry: AppendEntry) -> None:
        partitions = (
            self._partition_count(entry.topic) or self.ensure_topic(TopicConfig(entry.topic)).partitions
        )
        check_entry(entry, partitions)

    def _produce_entry(
        self,
        producer_: Producer,
        entry: AppendEntry,
        stamp: ProducerStamp | None,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        count = len(entry.messages)
        for j in range(entry.start, count):
            headers: list[tuple[str, str | bytes | None]] = []
            if entry.headers is not None:
                headers += entry.headers[j]
            if stamp is not None:
                headers.append(stamp_header(stamp.producer_id, stamp.seq, j, count))
                if j == entry.start:
                    headers.append((META, stamp.meta))
            key = entry.keys[j] if entry.keys is not None else None
            while True:
                try:
                    producer_.produce(
                        entry.topic,
                        value=entry.messages[j],
                        key=key,
                        partition=entry.partition,
                        headers=headers or None,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # librdkafka's queue is full: let deliveries drain it
                    producer_.poll(0.05)

    def _producer_or_new(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                    "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                    **self._settings,
                }
            )
        return self._producer

    def _drop_producer(self) -> None:
        """After a failed append: nothing of it may land later, behind the writes of recovery."""
        if self._producer is not None:
            self._producer.purge()
            self._producer.flush(0)
            self._producer = None

    def _reader(self, topic: str, partition: int) -> PartitionReader:
        with self._lock:
            reader = self._readers.get((topic, partition))
            if reader is None:
                reader = self._readers[(topic, partition)] = PartitionReader(
                    self._settings, topic, partition, self._timeout_s
                )
            return reader

    def _group(self, group: str) -> Consumer:
        with self._lock:
            consumer = self._groups.get(group)
            if consumer is None:
                consumer = self._groups[group] = Consumer(
                    {"group.id": group, "enable.auto.commit": False, **self._settings}
                )
            return consumer

    def _partition_count(self, topic: str) -> int:
        """The topic's partitions; 0 if it does not exist."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._topic_partitions(check_topic_name(topic)).get(topic, 0)
        return count

    def _topic_partitions(self, name: str | None = None) -> dict[str, int]:
        """Partition counts of the cluster's topics (internal ones left out), or of `name` only."""
        metadata = self._admin.list_topics(timeout=self._timeout_s)
        counts = {
            t.topic: len(t.partitions)
            for t in metadata.topics.values()
            if t.topic and not t.topic.startswith("__") and t.error is None and name in (None, t.topic)
        }
        self._partitions.update(counts)
        return counts

    def _configs(self, counts: dict[str, int]) -> dict[str, TopicConfig]:
        if not counts:
            return {}
        futures = self._admin.describe_configs(
            [ConfigResource("topic", name) for name in counts], request_timeout=self._timeout_s
        )
        configs = {}
        for resource, future in futures.items():
            entries = future.result(self._timeout_s)
            retention = {field: _retention(entries.get(name)) for name, field in _RETENTION.items()}
            configs[resource.name] = TopicConfig(resource.name, counts[resource.name], **retention)
        return configs

    def _await_topic(self, name: str) -> TopicConfig:
        """The topic once the metadata shows it (a new topic takes a moment on a cluster)."""
        deadline = time.monotonic() + self._timeout_s
        while (config := self.topic(name)) is None:
            if time.monotonic() > deadline:
                raise LogUnavailable(f"Kafka: topic {name} was created but does not show in the metadata")
            time.sleep(_TOPIC_SETTLE_S)
        return config


def _retention(entry: Any) -> int | None:
    """A retention the topic sets itself, or None (the broker's, or unlimited).

    A topic's own setting is reported as DYNAMIC_TOPIC_CONFIG by Kafka; some brokers (Tansu)
    report it as DEFAULT_CONFIG, which on Kafka only ever carries Kafka's built-in default,
    so a DEFAULT_CONFIG value other than that default is the topic's own too."""
    if entry is None or entry.value is None:
        return None
    value = int(entry.value)
    own = entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value or (
        entry.source == ConfigSource.DEFAULT_CONFIG.value and entry.value != _KAFKA_DEFAULTS.get(entry.name)
    )
    return value if own and value > 0 else None


def _delivered(
    firsts: list[int | None], errors: list[KafkaError], index: int
) -> Callable[[KafkaError | None, Message], None]:
    """The delivery report of entry `index`'s messages: its first offset, or the error."""

    def report(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(error)
        elif firsts[index] is None:
            firsts[index] = offset_of(message)

    return report


def open_url(place: str, clock: Clock) -> KafkaLog:
    """The log of a `kafka://host:port[,host:port...]` URL, with the STREAMCALC_KAFKA__ settings."""
    return KafkaLog(client_settings(place, os.environ), answer_timeout_s(os.environ))


__all__ = ["KafkaLog", "open_url"]
