"""The worker process: runs worker K of a pipeline (its share of the source partitions; all of
them with one worker) until SIGTERM, or until the process that started it is gone, then exits
after a clean commit.

`python -m streamcalc.runtime.worker --data-dir D --pipeline-id P [--worker K]`: the spec
under D names the pipeline, its options and the backends the supervisor runs on (`--log` /
`--state` replace those, for a worker run by hand). Exit status 0 means stopped on request
with everything committed, 2 a backend that cannot be opened; anything else is a failure.
The supervisor restarts a worker that exits non-zero, with backoff. A kill -9 at any point is
safe: see docs/exactly-once.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import msgspec

from streamcalc.backends import BackendConfigError, Backends, BackendUnavailable, VolatileState
from streamcalc.backends.urls import SCHEMES, resolve
from streamcalc.gctuning import tune_gc
from streamcalc.pipeline import build_graph
from streamcalc.runtime.runner import Runner
from streamcalc.runtime.stats import WorkerStatsFile
from streamcalc.runtime.worker_spec import read_spec

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
    for part in ("log", "state"):
        parser.add_argument(
            f"--{part}", metavar="URL", help=f"{', '.join(SCHEMES[part])}: instead of the spec's {part}"
        )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s worker {args.worker} %(name)s: %(message)s"
    )
    spec = read_spec(args.data_dir, args.pipeline_id)
    try:
        given = {
            part: resolve(part, url, args.data_dir) for part in ("log", "state") if (url := vars(args)[part])
        }
    except BackendConfigError as e:
        parser.error(str(e))
    backends = Backends(msgspec.structs.replace(spec.backend_urls(args.data_dir), **given))
    try:
        backends.check("log", "state")
        backends.require_durable_state()
    except (BackendUnavailable, VolatileState) as e:
        logging.getLogger(__name__).error("pipeline %s: %s", spec.pipelineId, e)
        backends.close()
        return 2
    runner = Runner(
        spec.pipelineId,
        build_graph(spec.definition),
        backends.log,
        backends.state.store(spec.pipelineId),
        options=spec.runner_options,
        worker=args.worker,
        on_commit=WorkerStatsFile(args.data_dir, spec.pipelineId, args.worker).committed,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_stop_when_orphaned, args=(runner,), name="parent-watch", daemon=True).start()
    tune_gc()
    try:
        runner.run()
    except Exception:
        logging.getLogger(__name__).exception("pipeline %s failed", spec.pipelineId)
        return 1
    finally:
        backends.close()
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
