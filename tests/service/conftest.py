"""Fixtures for the service tests: authenticators on a manual clock (the clock and catalogs are in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamcalc.catalog.sqlite import SqliteCatalog
from streamcalc.clock import ManualClock
from streamcalc.service.auth import Authenticator


@pytest.fixture
def authenticator_factory(
    catalog_factory: Callable[..., SqliteCatalog], manual_clock: ManualClock
) -> Callable[..., Authenticator]:
    """`make(catalog=None, *, token_ttl_s=7200, window_s=300)` on manual_clock."""

    def make(
        catalog: SqliteCatalog | None = None, *, token_ttl_s: int = 7200, window_s: int = 300
    ) -> Authenticator:
        return Authenticator(
            catalog or catalog_factory(), manual_clock, token_ttl_s=token_ttl_s, window_s=window_s
        )

    return make
