"""Get / Delete Stage State: the request body, its checks and the items per state kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from streamcalc.library import OperatorType
from streamcalc.pipeline import StageGraph, build_graph, load_pipeline_document
from streamcalc.service import codes
from streamcalc.service.errors import ApiError
from streamcalc.service.schemas import MAX_KEYS, StageStateRequest
from streamcalc.service.validation import parse_body
from streamcalc.state import StateStore


@dataclass(frozen=True)
class StateRequest:
    """The keys of one stage, checked."""

    pipeline_id: str
    stage: str
    asset_ids: list[str]
    point_ids: list[str]


def parse_request(body: bytes) -> StateRequest:
    """61102 names the missing or malformed parameter (`StageStateRequest`); 61105 when
    assets x points > 100,000."""
    doc = parse_body(StageStateRequest, body, codes.MISSING_PARAM)
    assets, points = len(doc.asset_ids), len(doc.point_ids)
    if assets * points > MAX_KEYS:
        raise ApiError(
            codes.TOO_MANY_POINTS, f"Too many points: {assets} assets x {points} points > {MAX_KEYS:,}"
        )
    return StateRequest(doc.pipeline_id, doc.stage, doc.asset_ids, doc.point_ids)


def stateful_stage(definition: dict[str, Any], stage: str) -> OperatorType[Any]:
    """The operator type of `stage`; 61102 if the pipeline has no such stage, 61107 if stateless."""
    graph: StageGraph = build_graph(load_pipeline_document(definition))  # a template: its expansion
    node = graph.node(stage)
    if node is None:
        raise ApiError(
            codes.MISSING_PARAM, f"Missing param stageInstanceName: no stage {stage!r} in the pipeline"
        )
    if node.op.state_kind == "none":
        raise ApiError(
            codes.UNSUPPORTED_STAGE_TYPE, f"Not supported Stage Type: {node.op.name} keeps no state"
        )
    return node.op


def get_items(store: StateStore, op: OperatorType[Any], request: StateRequest) -> list[Any]:
    """One item per (asset, point) that has state, in request order (dicts or Structs, as the
    operator's view builds them: the answer encodes them alike)."""
    assert op.state_type is not None and op.state_view is not None, "stateful_stage() checked the kind"
    keys = [(a, p) for a in request.asset_ids for p in request.point_ids]
    decode = msgspec.msgpack.Decoder(op.state_type).decode
    view = op.state_view
    return [
        view(a, p, decode(raw))
        for (a, p), raw in zip(keys, store.get_many(state_name(op, request.stage), keys), strict=True)
        if raw is not None
    ]


def state_name(op: OperatorType[Any], stage: str) -> str:
    """Where a stateful stage's state lives in the store: its own name, or a shared state's."""
    binding = op.state_binding(stage)
    assert binding is not None, "stateful_stage() checked the kind"
    return binding[0]


__all__ = ["StateRequest", "get_items", "parse_request", "state_name", "stateful_stage"]
