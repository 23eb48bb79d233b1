"""The composition root: backend URLs (`urls`), settings (`settings`) and the `Backends` that
every entry point is built on (`root`)."""

from streamcalc.backends.root import Backends, BackendUnavailable, VolatileState
from streamcalc.backends.settings import BackendSettings
from streamcalc.backends.urls import BackendConfigError, BackendUrls

__all__ = [
    "BackendConfigError",
    "BackendSettings",
    "BackendUnavailable",
    "BackendUrls",
    "Backends",
    "VolatileState",
]
