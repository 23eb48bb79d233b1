"""Records: the internal measurement-point record, its codecs and the origin-format normaliser."""

from streamcalc.records.codec import Rejected, decode_record, decode_records, encode_record, encode_records
from streamcalc.records.model import MAX_ID_LENGTH, Record, Value
from streamcalc.records.origin import OriginError, OriginMessage, decode_origin_messages, normalise_origin

__all__ = [
    "MAX_ID_LENGTH",
    "OriginError",
    "OriginMessage",
    "Record",
    "Rejected",
    "Value",
    "decode_origin_messages",
    "decode_record",
    "decode_records",
    "encode_record",
    "encode_records",
    "normalise_origin",
]
