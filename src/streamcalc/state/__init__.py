"""State: the StateStore contract (`base`) and its backends, one module each (`lmdb`, `memory`).

Importing this package loads no backend: the composition root (`streamcalc.backends`) opens
the one a URL names.
"""

from streamcalc.state.base import Checkpoint, StateBackend, StateStore, StateWrites
from streamcalc.state.errors import OffsetRegression, StaleCheckpoint, StateError, StateUnavailable

__all__ = [
    "Checkpoint",
    "OffsetRegression",
    "StaleCheckpoint",
    "StateBackend",
    "StateError",
    "StateStore",
    "StateUnavailable",
    "StateWrites",
]
