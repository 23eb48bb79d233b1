"""Log: the Log contract and its backends."""

from streamcalc.log.base import (
    AppendEntry,
    Log,
    ProducerStamp,
    ReadResult,
    ResetTarget,
    TopicConfig,
    TopicPartition,
    check_topic_name,
    partition_for,
)
from streamcalc.log.embedded import EmbeddedLog, open_log
from streamcalc.log.errors import InvalidTopic, LogError

__all__ = [
    "AppendEntry",
    "EmbeddedLog",
    "InvalidTopic",
    "Log",
    "LogError",
    "ProducerStamp",
    "ReadResult",
    "ResetTarget",
    "TopicConfig",
    "TopicPartition",
    "check_topic_name",
    "open_log",
    "partition_for",
]
