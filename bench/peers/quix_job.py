"""W1 as a Quix Streams application: the peer of `make bench-peers` on Kafka.

Runs in its own virtualenv (bench/peers/.venv-quix, requirements-quix.txt); imports nothing of
streamcalc. The computation is logic.RunningSum, streamcalc's SimplifiedTimeWindowAggregator
in W1's configuration (W1's PointSelector keeps every W1 record, so it has no step here),
keyed by the message key (the assetId), with Quix's exactly-once processing guarantee
(Kafka transactions), RocksDB state and its changelog topic. It stops once no message has
come for `--idle-s`, and prints when it processed its first and its last record, and when it exited, as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from logic import RunningSum
from quixstreams import Application, State
from quixstreams.models import TopicConfig

WINDOW_MS = 15 * 60_000
RETENTION = {"retention.ms": "604800000", "retention.bytes": "-1"}
"""Set on every topic it creates: Quix reads them back (some brokers list them only if set)."""


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--broker", "--input", "--output", "--state-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--idle-s", type=float, default=2.0)
    args = parser.parse_args()
    app = Application(
        broker_address=args.broker,
        consumer_group="w1-quix",
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    config = TopicConfig(num_partitions=1, replication_factor=1, extra_config=RETENTION)
    source = app.topic(args.input, value_deserializer="json", config=config)
    sink = app.topic(args.output, value_serializer="json", config=config)
    running_sum = RunningSum(WINDOW_MS, "meter", "sum15")
    first, last = [0.0], [0.0]

    def step(record: dict[str, Any], state: State) -> list[dict[str, Any]]:
        before = state.get("sum")
        new, outputs = running_sum.step(None if before is None else tuple(before), record)
        state.set("sum", list(new))
        last[0] = time.time()
        first[0] = first[0] or last[0]
        return outputs

    sdf = app.dataframe(source).apply(step, stateful=True, expand=True)
    sdf.to_topic(sink)
    app.run(timeout=args.idle_s, collect=False)
    print(
        json.dumps({"first_processed": first[0], "last_processed": last[0], "exited": time.time()}),
        flush=True,
    )


if __name__ == "__main__":
    main()
