"""RecordFilter: keep the records that match filter expressions, once per matching filter.

Each filter is a condition in the expression language (library.expressions.syntax), e.g.
`record.value > 10 && record.attr.site.type == 'pv'`. As in EnOS, a record matching k of the
filters is emitted k times, in filter order, each copy with that filter's output applied; a
record matching none is dropped. Stateless.

Output: with `outputPoint` (`{modelId}::{pointId}`) the copy is renamed to that point, and the
filter only matches records of that model (as every rule row in the library requires the same
modelId on both sides); without one the record passes unchanged. EnOS's `outputMeasurementId`
belongs to the 0.4.0 "new data format", whose records carry a measurementId; ours do not, so
the field is refused with a message rather than ignored or invented under attr.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamcalc.library.base import OperatorType, StageContext
from streamcalc.library.common.point_rules import Output
from streamcalc.library.common.points import PointRef, matches_model
from streamcalc.library.expressions.evaluation import compile_predicate
from streamcalc.library.expressions.syntax import Expression
from streamcalc.records import Record

MAX_FILTERS = 100
"""A record may fan out once per filter; this bounds the fan-out."""


class RecordFilterRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: Expression
    outputPoint: PointRef | None = None
    outputMeasurementId: str | None = None
    """Refused: accepted as a name only so the message can say why."""

    @field_validator("outputMeasurementId", mode="before")
    @classmethod
    def _no_measurement_ids(cls, value: object) -> None:
        raise ValueError(
            "outputMeasurementId is not supported: it needs the EnOS 0.4.0 new data format "
            "(records with a measurementId), which streamcalc records do not have; "
            "use outputPoint to rename matching records"
        )


class RecordFilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filters: list[RecordFilterRule] = Field(min_length=1, max_length=MAX_FILTERS)


class _Filter:
    __slots__ = ("matches", "output")

    def __init__(self, rule: RecordFilterRule) -> None:
        self.matches: Callable[[Record], bool] = compile_predicate(rule.expression)
        self.output = Output(rule.outputPoint) if rule.outputPoint is not None else None


class RecordFilter:
    def __init__(self, config: RecordFilterConfig) -> None:
        self._filters = [_Filter(rule) for rule in config.filters]

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        out: list[Record] = []
        append = out.append
        for record in batch:
            for f in self._filters:
                if f.output is None:
                    if f.matches(record):
                        append(record)
                elif matches_model(record, f.output.model_id) and f.matches(record):
                    append(f.output.emit(record))
        return out


RECORD_FILTER = OperatorType("RecordFilter", RecordFilterConfig, RecordFilter)
