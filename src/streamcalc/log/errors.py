"""Log errors."""

from streamcalc.errors import StreamcalcError


class LogError(StreamcalcError):
    """A log failure."""


class InvalidTopic(LogError, ValueError):
    """A topic name or partition that the log cannot hold; fix the name or the partition.

    A ValueError too, so config models that check topic names report it as a field error."""


class LogUnavailable(LogError):
    """The log's storage or server failed or cannot be reached; the operation may not have
    happened. Retry later; the cause is chained."""
