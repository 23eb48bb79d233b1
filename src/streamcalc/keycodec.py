"""Byte keys built from length-prefixed strings, for the LMDB-backed state store and log.

Length prefixes keep any id unambiguous (ids may contain any separator), and a key built
from fewer parts is a byte prefix of the longer keys, so prefix scans are range scans.
"""

from __future__ import annotations

import struct

_LEN = struct.Struct(">H")
_PARTITION = struct.Struct(">I")


def part(s: str) -> bytes:
    b = s.encode()
    return _LEN.pack(len(b)) + b


def parts(key: bytes, count: int, pos: int = 0) -> tuple[list[str], int]:
    """Read `count` string parts from `key` at `pos`; returns them and the position after."""
    out: list[str] = []
    for _ in range(count):
        (n,) = _LEN.unpack_from(key, pos)
        pos += 2
        out.append(key[pos : pos + n].decode())
        pos += n
    return out, pos


def topic_partition_key(topic: str, partition: int) -> bytes:
    return part(topic) + _PARTITION.pack(partition)


def split_topic_partition(key: bytes) -> tuple[str, int]:
    (topic,), pos = parts(key, 1)
    return topic, _PARTITION.unpack_from(key, pos)[0]
