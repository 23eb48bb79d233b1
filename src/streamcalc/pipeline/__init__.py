"""Pipeline definitions: the native JSON model, StreamSets import and the stage graph."""

from streamcalc.pipeline.errors import PipelineError
from streamcalc.pipeline.graph import StageGraph, StageNode, build_graph, parse_pipeline, resolve_operator
from streamcalc.pipeline.model import PipelineDef, StageDef

__all__ = [
    "PipelineDef",
    "PipelineError",
    "StageDef",
    "StageGraph",
    "StageNode",
    "build_graph",
    "parse_pipeline",
    "resolve_operator",
]
