"""`python -m bench` (`make bench`): streamcalc alone, a few minutes; prints one table and
writes it to bench/results/summary.json and summary.md (each part keeps its detailed json).

`--peers` (`make bench-peers`) adds the PyFlink peer beside W1 and W2 (bench/peers/, its own
virtualenv) and Quix Streams beside W1 over Kafka (another virtualenv), runs W2 and W3 at full
size and W1's scaling grid (bench/scaling.py); it takes about an hour and a half.
"""

from __future__ import annotations

import argparse
import time

from bench import api, core, kafka_log, operators, pause, redis_state, scaling, state_delay, w2, w3
from bench.core import RESULTS
from bench.table import Row, publish


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--peers", action="store_true", help="add PyFlink beside W1 and W2; W2 at full size")
    args = parser.parse_args()
    started = time.perf_counter()
    rows: list[Row] = []
    rows += core.run(peers=args.peers)
    rows += w2.run(full=args.peers, peers=args.peers)
    rows += w3.run(full=args.peers)
    rows += operators.run()
    rows += api.run()
    rows += redis_state.run()
    rows += kafka_log.run(peers=args.peers)
    rows += state_delay.run()
    rows += pause.run()
    if args.peers:
        rows += scaling.run()
    publish(rows, RESULTS, "make bench-peers" if args.peers else "make bench")
    print(f"{time.perf_counter() - started:,.0f} s in all", flush=True)


main()
