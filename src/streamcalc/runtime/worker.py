"""The worker process: runs worker K of a pipeline (its share of the source partitions; all of
them with one worker) until SIGTERM, or until the process that started it is gone, then exits
after a clean commit.

`python -m streamcalc.runtime.worker --data-dir D --pipeline-id P [--worker K]`. Exit status
0 means stopped on request with everything committed; anything else is a failure the
supervisor restarts with backoff. A kill -9 at any point is safe: see docs/exactly-once.md.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from streamcalc.log.embedded import open_log
from streamcalc.pipeline import build_graph
from streamcalc.runtime.runner import Runner
from streamcalc.runtime.spec import read_spec
from streamcalc.state.lmdb import open_pipeline_state

GC_GEN0_THRESHOLD = 100_000
"""A batch allocates ~10^4-10^5 short-lived tracked objects (the window aggregators' output
attrs, alive until the batch is encoded), freed by reference counting: the default 700 made
the cyclic GC a third of the data-path time in `make bench`, 10,000 still a tenth of the
sliding aggregator's."""


PARENT_CHECK_S = 0.2


def worker_command(data_dir: Path, pipeline_id: str, worker: int = 0) -> list[str]:
    """The command line that runs worker `worker` of `pipeline_id` (its spec must be written)."""
    return [
        sys.executable,
        "-m",
        "streamcalc.runtime.worker",
        "--data-dir",
        str(data_dir),
        "--pipeline-id",
        pipeline_id,
        "--worker",
        str(worker),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamcalc-worker")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--pipeline-id", required=True)
    parser.add_argument("--worker", type=int, default=0, help="which of the pipeline's workers, from 0")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s worker {args.worker} %(name)s: %(message)s"
    )
    spec = read_spec(args.data_dir, args.pipeline_id)
    log_ = open_log(args.data_dir)
    store = open_pipeline_state(args.data_dir, args.pipeline_id)
    runner = Runner(
        spec.pipelineId,
        build_graph(spec.definition),
        log_,
        store,
        options=spec.runner_options,
        worker=args.worker,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_stop_when_orphaned, args=(runner,), name="parent-watch", daemon=True).start()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
    try:
        runner.run()
    except Exception:
        logging.getLogger(__name__).exception("pipeline %s failed", spec.pipelineId)
        return 1
    finally:
        store.close()
        log_.close()
    return 0


def _stop_when_orphaned(runner: Runner) -> None:
    """Pause (commit and exit) once the process that started this worker is gone: a service
    killed with -9 must not leave workers running beside those its restart starts."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    logging.getLogger(__name__).warning("the process that started this worker (%d) is gone; pausing", parent)
    runner.request_stop()


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: everything is committed and closed, and
    freeing a large state cache object by object would add tens of ms to every pause."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
