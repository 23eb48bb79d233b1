"""Pipeline definitions, from what users write to the graph the runtime runs.

- `model`: the native pipeline JSON (PipelineDef, StageDef), as the API stores it.
- `templates`: EnOS calculation templates, expanded into native pipelines.
- `streamsets`: StreamSets (SDC) exports, and `load_pipeline_document`, which takes any of
  the three forms.
- `graph`: a definition to a validated StageGraph: operators resolved through the library's
  registry (never their modules: what the graph needs of an operator is an OperatorType
  attribute), configs validated, lanes wired, stages in topological order.
- `errors`: PipelineError, which names the stage and field to fix, and `from_validation`,
  the one mapping of a pydantic ValidationError to it.
"""

from streamcalc.pipeline.errors import PipelineError
from streamcalc.pipeline.graph import (
    StageGraph,
    StageNode,
    StageSettings,
    build_graph,
    parse_pipeline,
    resolve_operator,
)
from streamcalc.pipeline.model import PipelineDef, StageDef
from streamcalc.pipeline.streamsets import import_streamsets, load_pipeline_document

__all__ = [
    "PipelineDef",
    "PipelineError",
    "StageDef",
    "StageGraph",
    "StageNode",
    "StageSettings",
    "build_graph",
    "import_streamsets",
    "load_pipeline_document",
    "parse_pipeline",
    "resolve_operator",
]
