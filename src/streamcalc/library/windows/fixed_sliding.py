"""FixedTimeWindowAggregator and SlidingTimeWindowAggregator: event-time windows per (asset, point).

Each rule aggregates its input point (max/min/avg/count/sum/first/last) over windows aligned
to the epoch (UTC) and emits the result as its output point, stamped at the window start.
Fixed windows tumble; a sliding rule adds a slide (`slideSize` + `slideUnit`), its window
size a multiple of it, so a record belongs to size/slide windows.

Exact semantics, per key (assetId, input pointId), with lateness L = `latencyMinutes`:
- Event time is the largest record time the key has accepted; it never goes back and is
  shared by all rules reading the point.
- A window [s, e) is open while event time < e. The record that moves event time to >= e
  fires it: one `onTime` output. The window then stays for late data while event time
  < e + L; a record for it in that time is added and the window is re-emitted at once
  (`late`; also when the window gets its first record then). Once event time >= e + L the
  window is complete and dropped from state; a record whose windows are all complete goes
  to the error lane with a reason (for sliding rules, a record still counts in those of its
  windows that are not complete). With L = 0 a window completes as it fires.
- The last output of a window is its final value; nothing more is emitted at completion.
- `earlyTrigger` {"type": "data"}: each record added to an open window emits that window
  (`early`). {"type": "frequency", "minutes": N}: when a record moves the key's event time
  across a multiple of N minutes, every open window of the key is emitted (`early`), the
  record included. A key's first record crosses nothing.
- Outputs: `attr.windowAggregator` = {calMode, calType, windowEnd, lastOutput, calDetail}.
- Non-numeric, boolean and non-finite values go to the error lane.
- `idleTimeoutMinutes` T: a key that holds windows and has had no record for T minutes of
  processing time is closed as if a record had moved its event time to the end of its newest
  window plus L: windows not yet fired fire (`onTime`), then all are complete. Checked at
  each batch, and without input at least every `max_wait_s` of the runner.
The processing time read is the batch's `ctx.now_ms`, recorded with the batch, so
re-running a batch after a crash gives the same outputs and state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.library.base import KeyedState, OperatorType, StageContext
from streamcalc.library.common.durations import MAX_LATENCY_MINUTES, MS_PER_MINUTE, UNIT_MS, WindowUnit
from streamcalc.library.common.point_rules import UniqueOutputs, check_rule_points
from streamcalc.library.common.points import PointRef
from streamcalc.library.windows.engine import RuleSpec, WindowEngine
from streamcalc.library.windows.panes import Aggregator, WindowKeyState, state_item
from streamcalc.records import Record

MAX_IDLE_MINUTES = 7 * 24 * 60


class DataTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["data"]


class FrequencyTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["frequency"]
    minutes: int = Field(ge=1, le=1440)


EarlyTrigger = Annotated[DataTrigger | FrequencyTrigger, Field(discriminator="type")]


class FixedRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputPoint: PointRef
    windowSize: int = Field(ge=1)
    windowUnit: WindowUnit
    aggregator: Aggregator
    outputPoint: PointRef

    @model_validator(mode="after")
    def _same_model(self) -> FixedRule:
        check_rule_points(self.inputPoint, self.outputPoint)
        return self

    @property
    def window_ms(self) -> int:
        return self.windowSize * UNIT_MS[self.windowUnit]

    @property
    def slide_ms(self) -> int:
        return self.window_ms


class SlidingRule(FixedRule):
    slideSize: int = Field(ge=1)
    slideUnit: WindowUnit

    @model_validator(mode="after")
    def _whole_slides(self) -> SlidingRule:
        if self.window_ms % self.slide_ms:
            raise ValueError("the window size must be a whole multiple of the slide")
        return self

    @property
    def slide_ms(self) -> int:
        return self.slideSize * UNIT_MS[self.slideUnit]


class _WindowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latencyMinutes: int = Field(default=0, ge=0, le=MAX_LATENCY_MINUTES)
    earlyTrigger: EarlyTrigger | None = None
    idleTimeoutMinutes: int | None = Field(default=None, ge=1, le=MAX_IDLE_MINUTES)


class FixedWindowConfig(_WindowConfig):
    rules: Annotated[list[FixedRule], Field(min_length=1), UniqueOutputs]


class SlidingWindowConfig(_WindowConfig):
    rules: Annotated[list[SlidingRule], Field(min_length=1), UniqueOutputs]


class WindowAggregator:
    """Both operators: a fixed rule is a sliding rule whose slide is its size."""

    def __init__(self, config: FixedWindowConfig | SlidingWindowConfig) -> None:
        trigger = config.earlyTrigger
        self._engine = WindowEngine(
            [
                (r.inputPoint, RuleSpec(r.outputPoint, r.aggregator, r.window_ms, r.slide_ms))
                for r in config.rules
            ],
            latency_ms=config.latencyMinutes * MS_PER_MINUTE,
            early=None if trigger is None else trigger.type,
            early_every_ms=trigger.minutes * MS_PER_MINUTE if isinstance(trigger, FrequencyTrigger) else 0,
            idle_ms=(config.idleTimeoutMinutes or 0) * MS_PER_MINUTE,
        )

    def process(self, batch: list[Record], ctx: StageContext) -> list[Record]:
        return self._engine.process(batch, ctx)

    def due(self, now_ms: int, state: KeyedState[Any]) -> bool:
        """Whether a key went idle by `now_ms`: the runtime then runs a batch without input."""
        return self._engine.due(now_ms, state)


FIXED_TIME_WINDOW_AGGREGATOR = OperatorType(
    "FixedTimeWindowAggregator",
    FixedWindowConfig,
    WindowAggregator,
    state_kind="window",
    state_type=WindowKeyState,
    state_version=2,  # 2: panes instead of windows
    state_view=state_item,
)
SLIDING_TIME_WINDOW_AGGREGATOR = OperatorType(
    "SlidingTimeWindowAggregator",
    SlidingWindowConfig,
    WindowAggregator,
    state_kind="window",
    state_type=WindowKeyState,
    state_version=2,  # 2: panes instead of windows
    state_view=state_item,
)
