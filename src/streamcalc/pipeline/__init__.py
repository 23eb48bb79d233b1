"""Pipeline definitions: the native JSON model, StreamSets import and the stage graph."""

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
