"""streamcalc: stream processing for IoT measurement points with exactly-once stage state."""

__version__ = "0.1.0"
