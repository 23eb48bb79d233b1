"""Get / Delete Stage State: the request body, its checks and the items per state kind."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec

from streamcalc.library import OperatorType
from streamcalc.pipeline import StageGraph, build_graph, load_pipeline_document
from streamcalc.service import codes
from streamcalc.service.errors import ApiError
from streamcalc.state import StateStore

MAX_KEYS = 100_000
"""assets x points per request, as EnOS documents it."""
_FIELDS = ("pipelineId", "stageInstanceName", "assetIds", "pointIds")


@dataclass(frozen=True)
class StateRequest:
    pipeline_id: str
    stage: str
    asset_ids: list[str]
    point_ids: list[str]


def parse_request(body: bytes) -> StateRequest:
    """61102 names the missing or malformed parameter; 61105 when assets x points > 100,000."""
    try:
        doc = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise ApiError(codes.MISSING_PARAM, "Missing param body: expected a JSON object")
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = doc.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(codes.MISSING_PARAM, f"Missing param {name}")
        values[name] = value.strip()
    assets, points = _ids(values["assetIds"], "assetIds"), _ids(values["pointIds"], "pointIds")
    if len(assets) * len(points) > MAX_KEYS:
        raise ApiError(
            codes.TOO_MANY_POINTS,
            f"Too many points: {len(assets)} assets x {len(points)} points > {MAX_KEYS:,}",
        )
    return StateRequest(values["pipelineId"], values["stageInstanceName"], assets, points)


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


def get_items(store: StateStore, op: OperatorType[Any], request: StateRequest) -> list[dict[str, Any]]:
    """One item per (asset, point) that has state, in request order."""
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


def _ids(raw: str, name: str) -> list[str]:
    ids = list(dict.fromkeys(x.strip() for x in raw.split(",") if x.strip()))
    if not ids:
        raise ApiError(codes.MISSING_PARAM, f"Missing param {name}")
    return ids


__all__ = ["MAX_KEYS", "StateRequest", "get_items", "parse_request", "state_name", "stateful_stage"]
