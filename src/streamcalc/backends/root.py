"""The composition root: the one place that turns backend URLs into a log, a state backend and
a catalog. The service, the supervisor, the worker and the CLI are handed a `Backends`; none
of them names a backend class."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from streamcalc.backends.urls import SCHEMES, BackendUrls, Part, redact, resolve, split
from streamcalc.catalog.base import Catalog
from streamcalc.clock import SYSTEM_CLOCK, Clock
from streamcalc.errors import StreamcalcError
from streamcalc.log.base import Log
from streamcalc.state.base import StateBackend


class BackendUnavailable(StreamcalcError):
    """A backend could not be opened (a directory that cannot be written, a server that does
    not answer); the message names the flag and the URL, the cause is chained."""


class VolatileState(StreamcalcError):
    """The state backend may lose commits it acknowledged, and volatile state was not allowed.
    A pipeline keeps its state and its source offsets there: a lost commit would redo or skip
    work, so no pipeline runs on it unless `--allow-volatile-state` accepts that."""


class Backends:
    """The log, state backend and catalog of one process, each opened on first use (a worker
    never opens the catalog) and closed together."""

    def __init__(self, urls: BackendUrls, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.urls = urls
        self.clock = clock
        self._lock = threading.Lock()
        self._opened: dict[Part, Any] = {}

    @classmethod
    def resolve(
        cls,
        data_dir: Path,
        *,
        log: str = "embedded",
        state: str = "lmdb",
        catalog: str = "sqlite",
        allow_volatile_state: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Backends:
        """Backends from URLs as given on a command line (bare schemes under `data_dir`)."""
        urls = BackendUrls(
            resolve("log", log, data_dir),
            resolve("state", state, data_dir),
            resolve("catalog", catalog, data_dir),
            allow_volatile_state,
        )
        return cls(urls, clock=clock)

    @property
    def log(self) -> Log:
        log_: Log = self._open("log")
        return log_

    @property
    def state(self) -> StateBackend:
        state: StateBackend = self._open("state")
        return state

    @property
    def catalog(self) -> Catalog:
        catalog: Catalog = self._open("catalog")
        return catalog

    def require_durable_state(self) -> None:
        """`VolatileState` unless the state backend keeps what it acknowledged, or volatile
        state was allowed: called before any pipeline runs on it."""
        reason = self.state.volatility()
        if reason is not None and not self.urls.allow_volatile_state:
            raise VolatileState(
                f"--state {redact(self.urls.state)}: {reason}. A pipeline's state and source offsets "
                "would not survive a crash of it; make it durable (Redis: appendonly yes, "
                "appendfsync always) or accept the risk with --allow-volatile-state"
            )

    def check(self, *parts: Part) -> None:
        """Open `parts` (all three by default) now, so a bad URL or an unreachable server fails
        at start with `BackendUnavailable` rather than at the first request."""
        for part in parts or ("log", "state", "catalog"):
            self._open(part)

    def close(self) -> None:
        """Close what was opened (catalog, state, then log); later calls do nothing."""
        with self._lock:
            opened, self._opened = self._opened, {}
        for part in ("catalog", "state", "log"):
            if part in opened:
                opened[part].close()

    def _open(self, part: Part) -> Any:
        with self._lock:
            if part not in self._opened:
                url = getattr(self.urls, part)
                scheme, place = split(part, url)
                module = importlib.import_module(SCHEMES[part][scheme].module)
                try:
                    self._opened[part] = module.open_url(place, self.clock)
                except Exception as e:  # whatever the backend's library raises (sqlite3, a driver)
                    reason = " ".join(str(e).split())  # one line, though libpq adds a hint on another
                    raise BackendUnavailable(f"--{part} {redact(url)}: cannot open it: {reason}") from e
            return self._opened[part]
