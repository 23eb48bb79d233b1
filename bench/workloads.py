"""Seeded workloads shared by streamcalc and the peer: the same records, as JSON lines on disk.

Both engines read one file: streamcalc appends its lines to the embedded log before the clock
starts (a line is already the log's wire format, one JSON record per message); the PyFlink
peer reads it with its file source. Outputs are compared by count and an order-free digest,
because the peer's parallel sink interleaves keys differently (per key, order is the same).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from streamcalc.backends import Backends
from streamcalc.log import AppendEntry, TopicConfig
from streamcalc.records import Record, encode_records

T0_MS = 1_767_225_600_000
"""2026-01-01T00:00Z: a whole minute, hour and day, so windows start at the first record."""
CHUNK = 50_000


class _Asset(msgspec.Struct):
    assetId: str


_asset = msgspec.json.Decoder(_Asset)
"""Reads only the asset of a message, to place it in its partition."""
"""Records per generated chunk and per log append."""


def w1_records(records: int, keys: int, seed: int) -> Iterator[list[Record]]:
    """W1: `records` energy deltas, one every 10 ms, each of a random meter of `keys`."""
    rng = random.Random(seed)
    for start in range(0, records, CHUNK):
        yield [
            Record(
                orgId="bench",
                modelId="meter",
                modelIdPath="/meter",
                assetId=f"m{rng.randrange(keys)}",
                pointId="delta",
                time=T0_MS + i * 10,
                value=round(rng.random(), 3),
            )
            for i in range(start, min(start + CHUNK, records))
        ]


def w2_records(
    keys: int, seconds: int, late_fraction: float, max_late_ms: int, seed: int
) -> Iterator[list[Record]]:
    """W2: one power reading per second for each of `keys` meters over `seconds`, in time
    order, except that `late_fraction` of them arrive with their time shifted back by 1 ms
    to `max_late_ms` (late, but within that lateness of the key's event time)."""
    rng = random.Random(seed)
    chunk: list[Record] = []
    for s in range(seconds):
        second = T0_MS + s * 1_000
        for k in range(keys):
            late = rng.random() < late_fraction
            chunk.append(
                Record(
                    orgId="bench",
                    modelId="meter",
                    modelIdPath="/meter",
                    assetId=f"a{k}",
                    pointId="power",
                    time=second - rng.randint(1, max_late_ms) if late else second,
                    value=round(rng.random() * 100, 2),
                )
            )
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def write_jsonl(path: Path, chunks: Iterable[list[Record]]) -> int:
    """Write the records as JSON lines; returns how many."""
    count = 0
    with path.open("wb") as f:
        for chunk in chunks:
            f.write(b"\n".join(encode_records(chunk)) + b"\n")
            count += len(chunk)
    return count


def jsonl_chunks(path: Path) -> Iterator[list[bytes]]:
    with path.open("rb") as f:
        chunk: list[bytes] = []
        for line in f:
            chunk.append(line.rstrip(b"\n"))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def append_jsonl(data_dir: Path, topic: str, path: Path, partitions: int = 1, log: str = "embedded") -> int:
    """Append the file's lines to `topic` of `log` (a URL; the embedded log under `data_dir` by
    default), keyed and placed by asset over `partitions` as the service's producers do."""
    return _append(data_dir, topic, jsonl_chunks(path), partitions, log)


def append_records(data_dir: Path, topic: str, chunks: Iterable[list[Record]]) -> int:
    """Append the records, encoded as write_jsonl writes them, without the file in between."""
    return _append(data_dir, topic, (encode_records(chunk) for chunk in chunks))


def _append(
    data_dir: Path, topic: str, chunks: Iterable[list[bytes]], partitions: int = 1, log: str = "embedded"
) -> int:
    backends = Backends.resolve(data_dir, log=log)
    log_ = backends.log
    count = 0
    try:
        log_.ensure_topic(TopicConfig(topic, partitions))
        for chunk in chunks:
            placed: dict[int, tuple[list[bytes], list[bytes | None]]] = {}
            for m in chunk:
                asset = _asset.decode(m).assetId
                p = 0 if partitions == 1 else log_.partition_for(asset, partitions)
                values, keys = placed.setdefault(p, ([], []))
                values.append(m)
                keys.append(asset.encode())
            log_.append([AppendEntry(topic, p, vs, ks) for p, (vs, ks) in sorted(placed.items())])
            count += len(chunk)
    finally:
        backends.close()
    return count


@dataclass(frozen=True)
class Digest:
    """How many output records, and the sum of their hashes (so order does not matter)."""

    count: int
    sum64: str

    @classmethod
    def of(cls, messages: Iterable[bytes]) -> Digest:
        """Each message is hashed in a canonical form (JSON re-encoded with sorted keys), so
        two engines that write the same record with keys or spacing in another order agree."""
        decode, encode = msgspec.json.decode, msgspec.json.Encoder(order="sorted").encode
        count = total = 0
        for raw in messages:
            h = hashlib.blake2b(encode(decode(raw)), digest_size=8).digest()
            total = (total + int.from_bytes(h, "big")) % 2**64
            count += 1
        return cls(count, f"{total:016x}")


def log_messages(data_dir: Path, topic: str, log: str = "embedded") -> Iterator[bytes]:
    """Every message of `topic` (partition 0) in `log` (a URL; the embedded log under `data_dir`
    by default)."""
    backends = Backends.resolve(data_dir, log=log)
    try:
        offset = 0
        while (read := backends.log.read(topic, 0, offset, CHUNK)).messages:
            yield from read.messages
            offset = read.next_offset
    finally:
        backends.close()


def file_messages(paths: Iterable[Path]) -> Iterator[bytes]:
    """The non-empty lines of the files, e.g. the part files of the peer's sink."""
    for path in paths:
        with path.open("rb") as f:
            yield from (stripped for line in f if (stripped := line.strip()))
