"""The PyFlink peer computes what streamcalc computes: bench/peers/logic.py against the real
W1 and W2 pipelines (embedded log, LMDB state), record for record and in the same order per key."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from bench import core, w2, workloads
from bench.peers import logic
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcalc.log.embedded import open_log
from streamcalc.pipeline import build_graph
from streamcalc.records import Record, decode_record, encode_records
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.runner import Runner
from streamcalc.state.lmdb import open_pipeline_state

MINUTE = 60_000


def streamcalc_outputs(
    data_dir: Path, definition: dict[str, Any], topics: tuple[str, str], records: list[Record], batch: int
) -> list[bytes]:
    workloads.append_records(data_dir, topics[0], [records])
    log_, store = open_log(data_dir), open_pipeline_state(data_dir, "p")
    try:
        options = RunnerOptions(max_wait_s=0, max_batch_records=batch)
        runner = Runner("p", build_graph(definition), log_, store, options=options)
        runner.recover()
        while runner.run_once():
            pass
        runner.flush()
    finally:
        store.close()
        log_.close()
    return list(workloads.log_messages(data_dir, topics[1]))


def peer_outputs(step: logic.RunningSum | logic.TumblingAvg, lines: list[bytes]) -> list[bytes]:
    """What the peer's KeyedProcessFunction emits over these JSON lines, one state per key."""
    states: dict[tuple[str, str], Any] = {}
    out: list[bytes] = []
    for line in lines:
        record = json.loads(line)
        key = (record["assetId"], record["pointId"])
        states[key], outputs = step.step(states.get(key), record)
        out += [json.dumps(o).encode() for o in outputs]
    return out


def per_asset(messages: list[bytes]) -> dict[str, list[Any]]:
    """Outputs per asset in order, decoded (so field order and spacing do not matter)."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for raw in messages:
        decoded = json.loads(raw)
        grouped[decoded["assetId"]].append(decoded)
    return dict(grouped)


def assert_same(ours: list[bytes], theirs: list[bytes]) -> None:
    assert per_asset(ours) == per_asset(theirs)
    assert workloads.Digest.of(ours) == workloads.Digest.of(theirs)


values = st.one_of(st.integers(-50, 50), st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 2)))


@st.composite
def streams(draw: st.DrawFn, model: str, point: str, max_back_ms: int) -> list[Record]:
    """Records of up to 3 assets, time mostly moving on, sometimes back by up to `max_back_ms`."""
    clock = workloads.T0_MS
    records = []
    for _ in range(draw(st.integers(1, 60))):
        clock += draw(st.integers(0, 40_000))
        back = draw(st.integers(0, max_back_ms)) if draw(st.booleans()) and draw(st.booleans()) else 0
        records.append(
            Record(
                orgId="bench",
                modelId=model,
                modelIdPath=f"/{model}",
                assetId=draw(st.sampled_from(["a", "b", "c"])),
                pointId=point,
                time=clock - back,
                value=draw(values),
            )
        )
    return records


@settings(max_examples=40, deadline=None)
@given(records=streams("meter", "delta", 30 * MINUTE), batch=st.integers(1, 20))
def test_w1_running_sum_is_streamcalcs(records: list[Record], batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours = streamcalc_outputs(Path(tmp), core.PIPELINE, (core.IN, core.OUT), records, batch)
    theirs = peer_outputs(logic.RunningSum(15 * MINUTE, "meter", "sum15"), encode_records(records))
    assert_same(ours, theirs)


@settings(max_examples=40, deadline=None)
@given(records=streams("meter", "power", 3 * MINUTE), batch=st.integers(1, 20))
def test_w2_tumbling_average_with_late_records_is_streamcalcs(records: list[Record], batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours = streamcalc_outputs(Path(tmp), w2.PIPELINE, (w2.IN, w2.OUT), records, batch)
    step = logic.TumblingAvg(MINUTE, w2.LATENCY_MINUTES * MINUTE, "meter", "power_avg1m")
    theirs = peer_outputs(step, encode_records(records))
    assert_same(ours, theirs)
    assert {decode_record(m).attr["windowAggregator"]["calMode"] for m in ours} <= {"onTime", "late"}


@pytest.mark.parametrize("workers", [1, 2])
def test_the_bench_harness_runs_w2_through_the_workers_and_digests_their_outputs(
    tmp_path: Path, workers: int
) -> None:
    jsonl = tmp_path / "w2.jsonl"
    records = workloads.write_jsonl(jsonl, workloads.w2_records(5, 300, 0.05, MINUTE, seed=1))
    workloads.append_jsonl(tmp_path / "data", w2.IN, jsonl, workers)
    run = core.run_worker(tmp_path / "data", "w2", w2.PIPELINE, (w2.IN, w2.OUT), keys=5, workers=workers)
    step = logic.TumblingAvg(MINUTE, MINUTE, "meter", "power_avg1m")
    expected = workloads.Digest.of(peer_outputs(step, jsonl.read_bytes().splitlines()))
    assert run["records"] == records == 1_500
    assert (run["outputs"], run["outputs_digest"]) == (expected.count, expected.sum64)
    assert run["outputs"] > 5 * 4  # every key fired its first four minutes at least, plus late re-emits
    assert run["records_per_s"] > 0 and run["worker_peak_rss_mb"] > 0 and run["state_file_bytes_per_key"] > 0
