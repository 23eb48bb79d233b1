"""Byte keys built from string parts, for the LMDB-backed state store and log.

Each part is its UTF-8 bytes with NUL escaped as NUL 0xFF, ended by NUL NUL. Byte order of
keys is then the order of their parts (so scans come out sorted by asset, then point), any
id is unambiguous, and a key of fewer parts is a byte prefix of the longer keys, so prefix
scans are range scans.
"""

from __future__ import annotations

import struct

_END = b"\x00\x00"
_PARTITION = struct.Struct(">I")


def part(s: str) -> bytes:
    return s.encode().replace(b"\x00", b"\x00\xff") + _END


def parts(key: bytes, count: int, pos: int = 0) -> tuple[list[str], int]:
    """Read `count` string parts from `key` at `pos`; returns them and the position after."""
    out: list[str] = []
    for _ in range(count):
        end = key.index(_END, pos)  # a NUL in an id is always NUL 0xFF, so this is the end
        out.append(key[pos:end].replace(b"\x00\xff", b"\x00").decode())
        pos = end + 2
    return out, pos


def topic_partition_key(topic: str, partition: int) -> bytes:
    return part(topic) + _PARTITION.pack(partition)


def split_topic_partition(key: bytes) -> tuple[str, int]:
    (topic,), pos = parts(key, 1)
    return topic, _PARTITION.unpack_from(key, pos)[0]
