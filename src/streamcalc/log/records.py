"""Measurement-point records as log messages: the record's JSON, keyed by its assetId and
placed by the log's partitioner, so other Kafka producers and consumers see what ours do."""

from __future__ import annotations

from collections.abc import Iterable

from streamcalc.log.base import AppendEntry, Log
from streamcalc.records import Record, encode_record


def record_entries(log_: Log, topic: str, partitions: int, records: Iterable[Record]) -> list[AppendEntry]:
    """One entry per partition that gets records, in partition order."""
    values: dict[int, list[bytes]] = {}
    keys: dict[int, list[bytes | None]] = {}
    partition_for = log_.partition_for
    for r in records:
        p = partition_for(r.assetId, partitions)
        values.setdefault(p, []).append(encode_record(r))
        keys.setdefault(p, []).append(r.assetId.encode())
    return [AppendEntry(topic, p, values[p], keys[p]) for p in sorted(values)]
