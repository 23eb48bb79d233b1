"""The key types every part shares, defined once: a stage's state key and a log partition."""

from __future__ import annotations

StateKey = tuple[str, str]
"""(assetId, pointId): what stage state is kept per."""

TopicPartition = tuple[str, int]
"""(topic, partition): what offsets are kept per."""
