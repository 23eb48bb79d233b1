"""The built-in operator types: every operator module of the library, listed once.

Operator modules define their `OperatorType` and register nothing themselves, so importing one
has no side effect and the registry, which imports this list, sits above them all.
"""

from __future__ import annotations

from typing import Any

from streamcalc.library.appenders import LAST_CHANGED_RECORD_APPENDER, LAST_RECORD_APPENDER
from streamcalc.library.base import OperatorType
from streamcalc.library.batch_scoped import BATCH_MERGER, RECORD_SORTER_BY_TIME, TRASH
from streamcalc.library.capture import RECORD_CAPTURER, RECORD_RESTORER
from streamcalc.library.cumulant import CUMULANT_DECOMPOSER
from streamcalc.library.edh_kafka import EDH_KAFKA_CONSUMER, EDH_KAFKA_PRODUCER
from streamcalc.library.late import LATE_POINT_TAGGER
from streamcalc.library.merger import LATEST_RECORD_MERGER
from streamcalc.library.normalizer import NORMALIZER
from streamcalc.library.off_limit import OFF_LIMIT_TAGGER
from streamcalc.library.power_integrator import POWER_INTEGRATOR
from streamcalc.library.record_filter import RECORD_FILTER
from streamcalc.library.selector import POINT_SELECTOR
from streamcalc.library.windows.fixed_sliding import (
    FIXED_TIME_WINDOW_AGGREGATOR,
    SLIDING_TIME_WINDOW_AGGREGATOR,
)
from streamcalc.library.windows.simplified import SIMPLIFIED_TIME_WINDOW_AGGREGATOR

BUILTIN_OPERATORS: tuple[OperatorType[Any], ...] = (
    # sources and destinations
    EDH_KAFKA_CONSUMER,
    EDH_KAFKA_PRODUCER,
    # stateless processors
    POINT_SELECTOR,
    NORMALIZER,
    RECORD_FILTER,
    OFF_LIMIT_TAGGER,
    CUMULANT_DECOMPOSER,
    POWER_INTEGRATOR,
    RECORD_SORTER_BY_TIME,
    BATCH_MERGER,
    TRASH,
    RECORD_RESTORER,
    # stateful processors
    LAST_RECORD_APPENDER,
    LAST_CHANGED_RECORD_APPENDER,
    LATEST_RECORD_MERGER,
    LATE_POINT_TAGGER,
    RECORD_CAPTURER,
    SIMPLIFIED_TIME_WINDOW_AGGREGATOR,
    FIXED_TIME_WINDOW_AGGREGATOR,
    SLIDING_TIME_WINDOW_AGGREGATOR,
)
