"""ServiceSettings.from_env: STREAMCALC_* variables under the arguments given."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamcalc.service.settings import DEFAULT_DELETION_RETENTION_S, ServiceSettings


def test_deletion_retention_defaults_to_seven_days_and_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STREAMCALC_DELETION_RETENTION_S", raising=False)
    assert ServiceSettings.from_env(tmp_path).deletion_retention_s == DEFAULT_DELETION_RETENTION_S == 604_800

    monkeypatch.setenv("STREAMCALC_DELETION_RETENTION_S", "3600")
    assert ServiceSettings.from_env(tmp_path).deletion_retention_s == 3600
    assert ServiceSettings.from_env(tmp_path, deletion_retention_s=60).deletion_retention_s == 60

    monkeypatch.setenv("STREAMCALC_DELETION_RETENTION_S", "-1")
    with pytest.raises(ValueError, match="deletion_retention_s"):
        ServiceSettings.from_env(tmp_path)
