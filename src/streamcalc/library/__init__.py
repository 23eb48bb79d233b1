"""The calculator library: the operator contract, the operators and their registry.

- `base`: the contract. An operator type is a config model, a builder of a batch function,
  a declared state kind and the type of one key's state; the runtime owns the state.
- `registry`: operator types by EnOS stage name; `builtin` lists the library's own.
- One module per operator family: `edh_kafka` (the source and destination), `selector`,
  `normalizer`, `record_filter`, `off_limit`, `cumulant`, `power_integrator`, `appenders`,
  `merger`, `late`, `capture`, `batch_scoped`, and the `windows` package.
- `common`: the vocabulary operators and the pipeline package share (points and rule rows,
  the record's fields and paths, the value rules, intervals, durations, attr keys, ...).
- `expressions`: record tests, as filter expressions and as conditions.

Operator modules import `base`, `common` and `expressions`, never one another; only `builtin`
imports them, so the library has no import cycle, and the pipeline package reaches operators
only through the registry (tests/library/test_imports.py). The library never imports the
runtime.
"""

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
