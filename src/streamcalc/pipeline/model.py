"""The native pipeline definition (JSON), as users write it and the API stores it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

INSTANCE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"


class StageDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instanceName: str = Field(pattern=INSTANCE_NAME_PATTERN)
    stageName: str | None = None
    """The operator type; when absent or unknown, the instanceName prefix before `_NN` is used."""
    config: dict[str, Any] = Field(default_factory=dict)
    inputLanes: list[str] | None = None
    outputLanes: list[str] | None = None


class PipelineDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    stages: list[StageDef] = Field(min_length=1)
