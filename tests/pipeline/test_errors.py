"""from_validation: the one mapping of a pydantic ValidationError to a located PipelineError."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from streamcalc.pipeline.errors import PipelineError, from_validation


class Inner(BaseModel):
    n: int


class Doc(BaseModel):
    stages: list[Inner]


def error_of(doc: Any) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        Doc.model_validate(doc)
    return raised.value


def test_the_field_is_the_dotted_location_below_where_the_document_sits() -> None:
    e = error_of({"stages": [{"n": "x"}]})
    got = from_validation(e, stage="S_01", within=["template"])
    assert (got.stage, got.field) == ("S_01", "template.stages.0.n")
    assert str(got).startswith("stage S_01: template.stages.0.n: Input should be a valid integer")
    assert from_validation(error_of({})).field == "stages"


@pytest.mark.parametrize(
    ("stages", "stage", "field"),
    [
        ([{"instanceName": "A_01", "n": "x"}], "A_01", "n"),
        ([{"n": "x"}], "#0", "n"),
        ("not a list", "#0", "n"),
    ],
)
def test_a_stage_of_a_pipeline_document_is_named(stages: Any, stage: str, field: str) -> None:
    got = from_validation(error_of({"stages": [{"n": "x"}]}), stages=stages)
    assert isinstance(got, PipelineError) and (got.stage, got.field) == (stage, field)


def test_an_error_of_a_whole_stage_has_no_field() -> None:
    got = from_validation(error_of({"stages": [1]}), stages=[{"instanceName": "A_01"}])
    assert (got.stage, got.field) == ("A_01", None)
