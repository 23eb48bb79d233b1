"""Root of every exception streamcalc raises on purpose."""


class StreamcalcError(Exception):
    """Base class; catch this to handle any deliberate streamcalc failure."""
