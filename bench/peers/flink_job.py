"""The PyFlink peer: W1 or W2 as an Apache Flink DataStream job, run in bench/peers/.venv.

`python flink_job.py --workload w1|w2 --input IN.jsonl --output DIR --parallelism N`
reads the JSON lines streamcalc reads, parses them in Python, keys them by (assetId,
pointId), runs logic.py's step in a KeyedProcessFunction over a keyed ValueState, and writes
the outputs as JSON lines with a FileSink. Local mini-cluster, STREAMING mode, Python
functions in thread mode (embedded in the JVM), default (heap) state backend, no
checkpointing. Prints one JSON line of wall-clock timestamps for the harness (flink.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import logic
from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.common.serialization import Encoder
from pyflink.datastream import (
    KeyedProcessFunction,
    RuntimeContext,
    RuntimeExecutionMode,
    StreamExecutionEnvironment,
)
from pyflink.datastream.connectors.file_system import (
    BucketAssigner,
    FileSink,
    FileSource,
    StreamFormat,
)
from pyflink.datastream.state import ValueStateDescriptor

STEPS = {
    "w1": (logic.RunningSum(15 * 60_000, "meter", "sum15"), "meter", "delta"),
    "w2": (logic.TumblingAvg(60_000, 60_000, "meter", "power_avg1m"), "meter", "power"),
}


class Step(KeyedProcessFunction):
    """One workload's per-key step over a pickled ValueState; notes when it opened."""

    def __init__(self, workload: str, opened_dir: str) -> None:
        self.workload = workload
        self.opened_dir = opened_dir

    def open(self, runtime_context: RuntimeContext) -> None:
        self.step = STEPS[self.workload][0].step
        self.state = runtime_context.get_state(ValueStateDescriptor("state", Types.PICKLED_BYTE_ARRAY()))
        Path(self.opened_dir, f"{id(self)}").write_text(repr(time.time()))

    def process_element(self, value: dict[str, Any], ctx: KeyedProcessFunction.Context) -> Any:
        state, outputs = self.step(self.state.value(), value)
        self.state.update(state)
        for out in outputs:
            yield json.dumps(out, separators=(",", ":"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=sorted(STEPS), required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--parallelism", type=int, required=True)
    args = parser.parse_args()
    _, model, point = STEPS[args.workload]
    conf = Configuration()
    conf.set_string("python.execution-mode", "thread")
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)
    env.set_parallelism(args.parallelism)
    env.add_python_file(str(Path(__file__).with_name("logic.py")))
    jvm_ready = time.time()
    out_dir = Path(args.output)
    opened = out_dir / "opened"
    opened.mkdir(parents=True)
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), args.input).build()
    records = (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "jsonl")
        .map(json.loads, output_type=Types.PICKLED_BYTE_ARRAY())
        .filter(lambda r: r["pointId"] == point and r["modelId"] == model)
    )
    outputs = records.key_by(
        lambda r: (r["assetId"], r["pointId"]), key_type=Types.TUPLE([Types.STRING(), Types.STRING()])
    ).process(Step(args.workload, str(opened)), output_type=Types.STRING())
    sink = (
        FileSink.for_row_format(str(out_dir / "records"), Encoder.simple_string_encoder())
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .build()
    )
    outputs.sink_to(sink)
    submitted = time.time()
    env.execute(f"streamcalc-bench-{args.workload}")
    finished = time.time()
    opened_at = min(float(p.read_text()) for p in opened.iterdir())
    timing = {
        "jvm_ready": jvm_ready,
        "submitted": submitted,
        "first_task_open": opened_at,
        "finished": finished,
    }
    print(json.dumps(timing), flush=True)


if __name__ == "__main__":
    main()
