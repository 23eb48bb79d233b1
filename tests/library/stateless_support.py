"""Helpers for stateless operator tests: a context that refuses state and records rejects."""

from __future__ import annotations

from typing import Any

from streamcalc.library import KeyedState, OperatorType
from streamcalc.records import Record


class StatelessContext:
    """A StageContext for operators of state kind `none`: touching state fails the test."""

    def __init__(self, stage: str) -> None:
        self._stage = stage
        self.rejected: list[tuple[Record, str]] = []

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def state(self) -> KeyedState[Any]:
        raise AssertionError(f"stage {self._stage} is stateless but used its state")

    def reject(self, record: Record, reason: str) -> None:
        self.rejected.append((record, reason))


def run_stateless(
    op_type: OperatorType[Any], config: dict[str, Any], batch: list[Record]
) -> tuple[list[Record], list[tuple[Record, str]]]:
    """Build the operator from `config`, run one batch, return (outputs, rejects)."""
    assert op_type.build is not None and op_type.state_kind == "none" and op_type.role == "processor"
    operator = op_type.build(op_type.config.model_validate(config))
    ctx = StatelessContext(f"{op_type.name}_01")
    out = operator.process(list(batch), ctx)
    return out, ctx.rejected
