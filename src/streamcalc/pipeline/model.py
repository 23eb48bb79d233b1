"""The native pipeline definition (JSON), as users write it and the API stores it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamcalc.library.expressions.conditions import Condition

OnRecordError = Literal["TO_ERROR", "DISCARD", "STOP_PIPELINE"]
INSTANCE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"


class StageDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instanceName: str = Field(pattern=INSTANCE_NAME_PATTERN)
    stageName: str | None = None
    """The operator type; when absent or unknown, the instanceName prefix before `_NN` is used."""
    config: dict[str, Any] = Field(default_factory=dict)
    inputLanes: list[str] | None = None
    outputLanes: list[str] | None = None
    requiredFields: list[str] = Field(default_factory=list)
    """Fields a record must have (non-null) to enter the stage: value, quality, dq, attr.a.b."""
    preconditions: Condition = "*"
    """A record enters the stage only if this holds (library.expressions.conditions)."""
    onRecordError: OnRecordError = "TO_ERROR"
    """What happens to a record the stage refuses: the error lane (default), dropped and
    counted, or the batch fails so the pipeline stops (RUN_ERROR once restarts give up)."""


class PipelineDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    stages: list[StageDef] = Field(min_length=1)
