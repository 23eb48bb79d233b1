"""Pipeline definition errors."""

from streamcalc.errors import StreamcalcError


class PipelineError(StreamcalcError):
    """An invalid pipeline definition; the message names the stage and field to fix."""

    def __init__(self, msg: str, stage: str | None = None, field: str | None = None) -> None:
        where = ": ".join(x for x in (f"stage {stage}" if stage else None, field) if x)
        super().__init__(f"{where}: {msg}" if where else msg)
        self.stage = stage
        self.field = field
        self.reason = msg
