"""State: the StateStore contract and its backends."""

from streamcalc.state.base import Checkpoint, StateKey, StateStore, StateWrites, TopicPartition
from streamcalc.state.errors import OffsetRegression, StaleCheckpoint, StateError
from streamcalc.state.lmdb import LmdbStateStore, check_pipeline_id, open_pipeline_state

__all__ = [
    "Checkpoint",
    "LmdbStateStore",
    "OffsetRegression",
    "StaleCheckpoint",
    "StateError",
    "StateKey",
    "StateStore",
    "StateWrites",
    "TopicPartition",
    "check_pipeline_id",
    "open_pipeline_state",
]
