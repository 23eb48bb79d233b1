"""Backend settings: a flag wins, then STREAMCALC_LOG / STREAMCALC_STATE / STREAMCALC_CATALOG /
STREAMCALC_DATA_DIR / STREAMCALC_ALLOW_VOLATILE_STATE, then the embedded defaults (so `make run`
needs none of them)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from streamcalc.backends.root import Backends
from streamcalc.clock import SYSTEM_CLOCK, Clock


class BackendSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMCALC_", frozen=True, extra="ignore")

    data_dir: Path = Path(".data")
    """Where the file backends keep their data by default, and where worker specs and logs go."""
    log: str = "embedded"
    state: str = "lmdb"
    catalog: str = "sqlite"
    allow_volatile_state: bool = False
    """STREAMCALC_ALLOW_VOLATILE_STATE=true or `--allow-volatile-state`: see `VolatileState`."""

    @classmethod
    def from_flags(cls, **flags: object) -> BackendSettings:
        """Settings from command-line flags; a flag given as None falls back to the environment."""
        return cls(**{k: v for k, v in flags.items() if v is not None})  # type: ignore[arg-type]

    def backends(self, clock: Clock = SYSTEM_CLOCK) -> Backends:
        """The composition root for these settings (`BackendConfigError` for a bad URL)."""
        return Backends.resolve(
            self.data_dir,
            log=self.log,
            state=self.state,
            catalog=self.catalog,
            allow_volatile_state=self.allow_volatile_state,
            clock=clock,
        )
