"""Record codecs for the data path: JSON bytes, one message per record.

JSON is the EnOS wire format on Kafka as well, so a topic's bytes mean the same on the
embedded log and on Kafka. Decoding is per message so one bad message never hides the
others: it comes back as a `Rejected` with the decoder's precise reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from streamcalc.records.model import Record

_decoder = msgspec.json.Decoder(Record)
_encoder = msgspec.json.Encoder()


class Rejected(msgspec.Struct, frozen=True):
    """A message that is not a valid record, with the index it had in its batch."""

    index: int
    reason: str
    raw: bytes


def decode_record(raw: bytes) -> Record:
    """Decode one record; raises msgspec.DecodeError (incl. ValidationError) with the reason."""
    return _decoder.decode(raw)


def decode_records(messages: Sequence[bytes]) -> tuple[list[Record], list[Rejected]]:
    """Decode a batch; invalid messages are returned apart, in order, with their reason."""
    try:  # the common all-valid batch in one C loop; any bad message takes the loop below
        return list(map(_decoder.decode, messages)), []
    except msgspec.DecodeError:
        pass
    records: list[Record] = []
    rejected: list[Rejected] = []
    decode = _decoder.decode
    append = records.append
    for i, raw in enumerate(messages):
        try:
            append(decode(raw))
        except msgspec.DecodeError as e:
            rejected.append(Rejected(i, f"invalid record: {e}", bytes(raw)))
    return records, rejected


def encode_record(record: Record) -> bytes:
    return _encoder.encode(record)


def encode_records(records: Sequence[Record]) -> list[bytes]:
    return list(map(_encoder.encode, records))
