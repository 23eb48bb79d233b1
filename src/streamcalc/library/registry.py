"""The operator registry: operator types by their EnOS stage name."""

from __future__ import annotations

from typing import Any

from streamcalc.library.base import OperatorType

_REGISTRY: dict[str, OperatorType[Any]] = {}


def register_operator(op: OperatorType[Any]) -> OperatorType[Any]:
    if op.name in _REGISTRY:
        raise ValueError(f"operator {op.name} is registered already")
    _REGISTRY[op.name] = op
    return op


def get_operator(name: str) -> OperatorType[Any] | None:
    _load_builtins()
    return _REGISTRY.get(name)


def operator_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Imported for their register_operator() calls; late so the registry has no import cycle.
    from streamcalc.library import (  # noqa: F401
        appenders,
        batch,
        capture,
        cumulant,
        energy,
        io,
        late,
        merger,
        normalizer,
        record_filter,
        selector,
        simplified_window,
        taggers,
        windows,
    )
