"""Service settings: arguments first, then STREAMCALC_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_DELETION_RETENTION_S = 7 * 24 * 3600


class Bootstrap(BaseModel):
    """An org and service account that `serve` makes sure exist (e.g. for a demo or first run)."""

    model_config = ConfigDict(frozen=True)

    org_id: str
    app_key: str
    app_secret: SecretStr


class ServiceSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_dir: Path
    token_ttl_s: int = Field(7200, ge=60)
    signature_window_s: int = Field(300, ge=1)
    """How far apim-timestamp may be from the server clock; also how long replays are remembered."""
    lag_sample_interval_s: float = Field(10.0, gt=0)
    deletion_retention_s: int = Field(DEFAULT_DELETION_RETENTION_S, ge=0)
    """How long a Delete Stage State keeps the deleted values for undo (STREAMCALC_DELETION_RETENTION_S)."""
    bootstrap: Bootstrap | None = None
    metrics_token: SecretStr | None = None
    """The operator's bearer token for /metrics (STREAMCALC_METRICS_TOKEN): every org's pipelines."""

    @classmethod
    def from_env(cls, data_dir: Path, **overrides: object) -> ServiceSettings:
        env = os.environ
        keys = (
            "STREAMCALC_BOOTSTRAP_ORG_ID",
            "STREAMCALC_BOOTSTRAP_APP_KEY",
            "STREAMCALC_BOOTSTRAP_APP_SECRET",
        )
        bootstrap = None
        if all(env.get(k) for k in keys):
            bootstrap = Bootstrap(
                org_id=env[keys[0]], app_key=env[keys[1]], app_secret=SecretStr(env[keys[2]])
            )
        retention = (
            {"deletion_retention_s": env["STREAMCALC_DELETION_RETENTION_S"]}
            if env.get("STREAMCALC_DELETION_RETENTION_S")
            else {}
        )
        token = env.get("STREAMCALC_METRICS_TOKEN")
        metrics = {"metrics_token": token} if token else {}
        return cls.model_validate(
            {"data_dir": data_dir, "bootstrap": bootstrap, **retention, **metrics, **overrides}
        )
