"""Fixtures for the service tests: catalogs on tmp files and authenticators, on a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamcalc.catalog.sqlite import SqliteCatalog
from streamcalc.clock import ManualClock
from streamcalc.service.auth import Authenticator

START_MS = 1_700_000_000_000


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def catalog_factory(tmp_path: Path, manual_clock: ManualClock) -> Iterator[Callable[..., SqliteCatalog]]:
    """`make(path=tmp_path/"catalog.sqlite3", clock=manual_clock)`; closes every catalog it opened."""
    opened: list[SqliteCatalog] = []

    def make(path: Path | None = None, clock: ManualClock | None = None) -> SqliteCatalog:
        catalog = SqliteCatalog(path or tmp_path / "catalog.sqlite3", clock or manual_clock)
        opened.append(catalog)
        return catalog

    yield make
    for catalog in opened:
        catalog.close()


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
