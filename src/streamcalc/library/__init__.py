"""The calculator library: operator types and their registry."""

from streamcalc.library.base import (
    KeyedState,
    Operator,
    OperatorType,
    Role,
    StageContext,
    StateKind,
    TimedOperator,
)
from streamcalc.library.registry import get_operator, operator_names, register_operator

__all__ = [
    "KeyedState",
    "Operator",
    "OperatorType",
    "Role",
    "StageContext",
    "StateKind",
    "TimedOperator",
    "get_operator",
    "operator_names",
    "register_operator",
]
