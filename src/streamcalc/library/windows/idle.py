"""Which keys of a window aggregator went idle: no record for `idleTimeoutMinutes` of
processing time while they hold windows.

The index lives in the worker, not in the state: it is rebuilt from the state (each key's
`arrival`) by one scan at first use, so after a restart or a failed batch it holds exactly
what the committed state implies. Which keys are idle at a batch's `now_ms` is then a
function of state and batch alone, and a re-run batch closes the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamcalc.keys import StateKey
from streamcalc.library.base import KeyedState
from streamcalc.library.windows.panes import WindowKeyState
from streamcalc.records import Record


class ArrivalIndex:
    """Keys holding windows, by the processing time of their last record, oldest first.

    Batches arrive with a `now_ms` that does not go back while a worker runs, so moving a key
    to the end on arrival keeps the order and finding the idle keys looks at the front only.
    A wall clock set back across a restart breaks the order once; it is then sorted again.
    """

    def __init__(self, timeout_ms: int) -> None:
        self._timeout = timeout_ms
        self._arrival: dict[StateKey, int] | None = None
        self._ordered = True

    def due(self, now_ms: int, state: KeyedState[Any]) -> bool:
        """Whether some key has been idle for the timeout at `now_ms`."""
        arrival = self._index(state)
        return bool(arrival) and next(iter(arrival.values())) + self._timeout <= now_ms

    def take_idle(self, now_ms: int, state: KeyedState[Any]) -> list[StateKey]:
        """The keys idle at `now_ms`, by (arrival, key), out of the index."""
        arrival = self._index(state)
        deadline = now_ms - self._timeout
        idle = []
        for key, seen in arrival.items():
            if seen > deadline:
                break
            idle.append(key)
        idle.sort(key=lambda k: (arrival[k], k))  # ties in key order, as a rebuilt index has them
        for key in idle:
            del arrival[key]
        return idle

    def arrived(
        self, last: dict[StateKey, Record], working: Mapping[StateKey, WindowKeyState | None], now_ms: int
    ) -> None:
        """Note a batch's keys (`last`: each key's last record in it) in their states and here."""
        arrival = self._arrival
        assert arrival is not None, "take_idle runs first in each batch"
        if arrival and now_ms < next(reversed(arrival.values())):
            self._ordered = False
        for key, record in last.items():
            state = working[key]
            assert state is not None, "a key with a record has state"
            state.arrival, state.org_id, state.model_id_path = now_ms, record.orgId, record.modelIdPath
            arrival.pop(key, None)
            if state.has_windows():
                arrival[key] = now_ms

    def _index(self, state: KeyedState[Any]) -> dict[StateKey, int]:
        if self._arrival is None:
            self._arrival = {k: s.arrival for k, s in state.scan() if s.arrival and s.has_windows()}
            self._ordered = False
        if not self._ordered:
            self._arrival = dict(sorted(self._arrival.items(), key=lambda item: (item[1], item[0])))
            self._ordered = True
        return self._arrival
