"""Helpers for operator tests: records, a recording stage context over a real LMDB state
store, and a real in-process pipeline run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from streamcalc.library import KeyedState, OperatorType
from streamcalc.library.base import Operator
from streamcalc.log import AppendEntry
from streamcalc.log.embedded import open_log
from streamcalc.pipeline import build_graph
from streamcalc.records import Record, decode_record, encode_record
from streamcalc.runtime.errorlane import decode_error, error_topic
from streamcalc.runtime.keyed_state import StageState
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.runner import Runner
from streamcalc.service.stage_state import StateRequest, get_items, stateful_stage
from streamcalc.state.lmdb import LmdbStateStore, open_pipeline_state

IN, OUT = "MEASURE_POINT_INTERNAL_o1", "MEASURE_POINT_CAL_o1"
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def rec(
    asset: str,
    point: str,
    time_ms: int,
    value: Any,
    model: str = "m1",
    path: str | None = None,
    **fields: Any,
) -> Record:
    return Record(
        orgId="o1",
        modelId=model,
        modelIdPath=path or f"/{model}",
        assetId=asset,
        pointId=point,
        time=time_ms,
        value=value,
        **fields,
    )


class RecordingContext:
    """A StageContext whose state is a real StageState and whose rejects are kept in order."""

    def __init__(self, stage: str, state: StageState) -> None:
        self._stage = stage
        self._state = state
        self.rejected: list[tuple[Record, str]] = []

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def state(self) -> KeyedState[Any]:
        return self._state

    def reject(self, record: Record, reason: str) -> None:
        self.rejected.append((record, reason))


class OperatorHarness:
    """One stage of `op_type` over a real LMDB store: each `run` is one batch, committed after."""

    def __init__(self, store: LmdbStateStore, op_type: OperatorType[Any], config: dict[str, Any]) -> None:
        assert op_type.build is not None and op_type.state_type is not None
        self.store, self.op_type, self.config = store, op_type, config
        self.stage = f"{op_type.name}_01"
        self.rejected: list[tuple[Record, str]] = []
        self.restart()

    def restart(self) -> None:
        """A fresh operator and state cache, as a restarted worker would have them."""
        assert self.op_type.build is not None and self.op_type.state_type is not None
        self.operator: Operator = self.op_type.build(self.op_type.config.model_validate(self.config))
        self.state = StageState(self.store, self.stage, self.op_type.state_type)

    def run(self, batch: list[Record]) -> list[Record]:
        ctx = RecordingContext(self.stage, self.state)
        out = self.operator.process(batch, ctx)
        self.rejected.extend(ctx.rejected)
        cp = self.store.checkpoint()
        self.store.commit({self.stage: self.state.drain()}, cp, cp.advance({}))
        return out

    def items(self) -> list[dict[str, Any]]:
        """Get Stage State items of every stored key, in key order."""
        assert self.op_type.state_type is not None and self.op_type.state_view is not None
        decode = msgspec.msgpack.Decoder(self.op_type.state_type).decode
        view = self.op_type.state_view
        return [view(a, p, decode(raw)) for a, p, raw in self.store.scan(self.stage)]


def open_store(tmp_path: Path) -> LmdbStateStore:
    return open_pipeline_state(tmp_path, "p1")


def pipeline(stage: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {"instanceName": stage, "config": config},
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}},
        ]
    }


class PipelineRun:
    """A real pipeline run in this process: outputs, error lane and Get Stage State items."""

    def __init__(
        self,
        data_dir: Path,
        definition: dict[str, Any],
        records: list[Record],
        batch: int,
        *,
        messages: list[bytes] | None = None,
    ) -> None:
        """`messages`, when given, are the input as raw bytes instead of encoded `records`."""
        self.data_dir, self.definition = data_dir, definition
        log_ = open_log(data_dir)
        store = open_pipeline_state(data_dir, "p1")
        try:
            log_.append([AppendEntry(IN, 0, messages or [encode_record(r) for r in records])])
            runner = Runner(
                "p1",
                build_graph(definition),
                log_,
                store,
                options=RunnerOptions(max_wait_s=0, max_batch_records=batch),
            )
            runner.recover()
            while runner.run_once():
                pass
            runner.flush()
            self.outputs = [decode_record(m) for m in log_.read(OUT, 0, 0, 10**9).messages]
            self.errors = [decode_error(m) for m in log_.read(error_topic("p1"), 0, 0, 10**9).messages]
        finally:
            store.close()
            log_.close()

    def state_items(self, stage: str, asset_ids: list[str], point_ids: list[str]) -> list[dict[str, Any]]:
        """What the Get Stage State API answers for this stage and keys, as JSON decoded."""
        op = stateful_stage(self.definition, stage)
        store = open_pipeline_state(self.data_dir, "p1")
        try:
            items = get_items(store, op, StateRequest("p1", stage, asset_ids, point_ids))
            decoded: list[dict[str, Any]] = msgspec.json.decode(msgspec.json.encode(items))
            return decoded
        finally:
            store.close()
