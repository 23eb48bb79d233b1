"""The electric-energy vocabulary that CumulantDecomposer, PowerIntegrator and the energy
templates share: how a meter reading is scaled and its slope bounded, and how power is
integrated over an interval.

Scale: `{"type": "fixed", "value": > 0}`, or `{"type": "attr", "path": "attr.a.b"}` read from
the record's own attr. Slope (per hour, of the raw reading): `{"type": "fixed", "min": >= 0,
"max": > min}`, or `{"type": "attr", "path": ...}` giving max with min 0. What an attribute
that is missing or invalid means is the operator's to say.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamcalc.library.common.record_paths import AttrPath

Method = Literal["instant", "average"]
"""How power integrates: the previous sample's power holds (instant), or the mean of both."""


class FixedScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["fixed"]
    value: float = Field(gt=0, allow_inf_nan=False)


class AttrScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["attr"]
    path: AttrPath


class FixedSlope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["fixed"]
    min: float = Field(ge=0, allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> FixedSlope:
        if not self.min < self.max:
            raise ValueError("slope min must be less than max")
        return self


class AttrSlope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["attr"]
    path: AttrPath


Scale = Annotated[FixedScale | AttrScale, Field(discriminator="type")]
Slope = Annotated[FixedSlope | AttrSlope, Field(discriminator="type")]
