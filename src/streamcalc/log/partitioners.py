"""Partitioners of the form `h(key) mod partitions` (see the Log contract), one per backend family."""

from __future__ import annotations

import zlib

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def crc32_partition(key: str, partitions: int) -> int:
    """The embedded log's: CRC-32 of the UTF-8 key (topics written so far are placed by it)."""
    return 0 if partitions == 1 else zlib.crc32(key.encode()) % partitions


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (its Java client's `Utils.murmur2`), as a signed 32-bit int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2_partition(key: str, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record: positive murmur2 of the key mod partitions."""
    return 0 if partitions == 1 else (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
