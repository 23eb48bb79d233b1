"""Log errors."""

from streamcalc.errors import StreamcalcError


class LogError(StreamcalcError):
    """A log failure."""


class InvalidTopic(LogError):
    """A topic name or partition that the log cannot hold; fix the name or the partition."""
