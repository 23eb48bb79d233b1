"""Pipeline definition errors, and the one way a pydantic ValidationError becomes one."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from streamcalc.errors import StreamcalcError


class PipelineError(StreamcalcError):
    """An invalid pipeline definition; the message names the stage and field to fix."""

    def __init__(self, msg: str, stage: str | None = None, field: str | None = None) -> None:
        where = ": ".join(x for x in (f"stage {stage}" if stage else None, field) if x)
        super().__init__(f"{where}: {msg}" if where else msg)
        self.stage = stage
        self.field = field
        self.reason = msg


def from_validation(
    e: ValidationError,
    *,
    stage: str | None = None,
    within: Sequence[str] = (),
    stages: object = None,
) -> PipelineError:
    """The first error of `e`, located: its field is the dotted path below `within` (where the
    validated document sits). With `stages`, the raw stage list of the pipeline document that
    failed, an error inside stages[i] names that stage (its instanceName, else `#i`) and the
    field within it."""
    first = e.errors()[0]
    loc = [*within, *first["loc"]]
    if stages is not None and len(loc) >= 2 and loc[0] == "stages" and isinstance(loc[1], int):
        raw = stages[loc[1]] if isinstance(stages, list) and loc[1] < len(stages) else None
        name = raw.get("instanceName") if isinstance(raw, dict) else None
        stage = name if isinstance(name, str) else f"#{loc[1]}"
        loc = loc[2:]
    return PipelineError(first["msg"], stage, ".".join(str(x) for x in loc) or None)
