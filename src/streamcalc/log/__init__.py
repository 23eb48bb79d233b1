"""Log: the Log contract (`base`) and its backends (`embedded`, `memory`, `kafka` with its
`kafka_*` helpers).

Importing this package loads no backend: the composition root (`streamcalc.backends`) opens
the one a URL names.
"""

from streamcalc.log.base import (
    AppendEntry,
    Headers,
    Log,
    ProducerStamp,
    ReadResult,
    ResetTarget,
    StampMark,
    TopicConfig,
    check_topic_name,
)
from streamcalc.log.errors import InvalidTopic, LogError, LogUnavailable

__all__ = [
    "AppendEntry",
    "Headers",
    "InvalidTopic",
    "Log",
    "LogError",
    "LogUnavailable",
    "ProducerStamp",
    "ReadResult",
    "ResetTarget",
    "StampMark",
    "TopicConfig",
    "check_topic_name",
]
