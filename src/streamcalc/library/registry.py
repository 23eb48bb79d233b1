"""The operator registry: operator types by their EnOS stage name, the built-in ones first."""

from __future__ import annotations

from typing import Any

from streamcalc.library.base import OperatorType
from streamcalc.library.builtin import BUILTIN_OPERATORS

_REGISTRY: dict[str, OperatorType[Any]] = {}


def register_operator(op: OperatorType[Any]) -> OperatorType[Any]:
    if op.name in _REGISTRY:
        raise ValueError(f"operator {op.name} is registered already")
    _REGISTRY[op.name] = op
    return op


def get_operator(name: str) -> OperatorType[Any] | None:
    return _REGISTRY.get(name)


def operator_names() -> list[str]:
    return sorted(_REGISTRY)


def _register_builtins() -> None:
    for op in BUILTIN_OPERATORS:
        register_operator(op)


_register_builtins()
