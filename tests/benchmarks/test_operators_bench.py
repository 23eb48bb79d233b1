"""bench/operators.py: every stateful operator runs through its runners with one worker and two."""

from __future__ import annotations

import pytest
from bench import operators


@pytest.mark.parametrize("workers", [1, 2])
def test_every_operator_consumes_all_its_input(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setattr(operators, "RECORDS", 3_000)
    monkeypatch.setattr(operators, "KEYS", 200)
    records = operators.generate()
    for name, (config, _) in operators.OPERATORS.items():
        assert operators.measure(name, config, records, workers) > 0  # measure checks what was consumed
