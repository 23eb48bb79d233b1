"""Producer stamps as Kafka record headers (the Log contract's marks).

Every message of a stamped entry carries `streamcalc.stamp` = `seq:index:count:producerId`;
the first message each append writes of an entry also carries `streamcalc.meta` (the
stamp's meta), so the newest write of a producer holds its meta within itself. Readers
never see these headers: `user_headers` strips them.
"""

from __future__ import annotations

from typing import NamedTuple

from streamcalc.log.base import Headers

STAMP = "streamcalc.stamp"
META = "streamcalc.meta"
_RESERVED = "streamcalc."


RawHeaders = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None
"""Headers as confluent-kafka gives them."""


class Mark(NamedTuple):
    producer_id: str
    seq: int
    position: int
    """The message's index in its entry."""
    length: int
    """Messages the entry had."""


def stamp_header(producer_id: str, seq: int, position: int, length: int) -> tuple[str, bytes]:
    return STAMP, f"{seq}:{position}:{length}:{producer_id}".encode()


def mark_of(headers: RawHeaders) -> tuple[Mark | None, bytes | None]:
    """The message's mark and meta (None where it has none)."""
    mark: Mark | None = None
    meta: bytes | None = None
    for name, value in _pairs(headers):
        if name == STAMP:
            seq, position, length, producer_id = value.decode().split(":", 3)
            mark = Mark(producer_id, int(seq), int(position), int(length))
        elif name == META:
            meta = value
    return mark, meta


def user_headers(headers: RawHeaders) -> Headers:
    """The headers the writer gave, without ours."""
    return tuple((name, value) for name, value in _pairs(headers) if not name.startswith(_RESERVED))


def _pairs(headers: RawHeaders) -> list[tuple[str, bytes]]:
    """(name, value) pairs, a missing value (Kafka allows it) read as b"" and text as UTF-8."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(n, v.encode() if isinstance(v, str) else v or b"") for n, v in items]
