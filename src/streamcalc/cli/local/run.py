"""`streamcalc run`: pipelines from files, run by a supervisor of worker processes until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from streamcalc.backends import VolatileState
from streamcalc.cli.inputs import read_object
from streamcalc.cli.local.backends import AllowVolatileState, DataDir, LogUrl, StateUrl, open_backends
from streamcalc.cli.output import console, err, fail
from streamcalc.ids import check_pipeline_id
from streamcalc.library.edh_kafka import ConsumerConfig
from streamcalc.pipeline import PipelineError, build_graph, load_pipeline_document
from streamcalc.runtime.options import MAX_WORKERS, RunnerOptions
from streamcalc.runtime.supervisor import BackendsNotShared, Supervisor


def run(
    pipelines: Annotated[list[Path], typer.Argument(help="Pipeline JSON files; each file's stem is its id.")],
    data_dir: DataDir = None,
    log: LogUrl = None,
    state: StateUrl = None,
    max_batch_records: int = 10_000,
    rate_limit: Annotated[float, typer.Option(help="Records/s per pipeline; 0 = unlimited.")] = 0.0,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_WORKERS,
            help="Worker processes per pipeline. A source topic needs a multiple of this many "
            "partitions; a missing one is created with this many.",
        ),
    ] = 1,
    allow_volatile_state: AllowVolatileState = False,
) -> None:
    """Run pipelines until Ctrl-C; they resume where they paused. No catalog: the files are
    the pipelines."""
    options = RunnerOptions(max_batch_records=max_batch_records, rate_limit=rate_limit, workers=workers)
    definitions: dict[str, dict[str, Any]] = {}
    sources: dict[str, list[str]] = {}
    for path in pipelines:
        try:
            definition = load_pipeline_document(read_object(path, stdin=False)).model_dump(exclude_unset=True)
            graph = build_graph(definition)
            check_pipeline_id(path.stem)
        except (PipelineError, ValueError) as e:
            err.print(f"[red]{path}: {e}[/red]")
            raise typer.Exit(2) from e
        definitions[path.stem] = definition
        sources[path.stem] = [n.config.topic for n in graph.sources if isinstance(n.config, ConsumerConfig)]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    flags = {"data_dir": data_dir, "log": log, "state": state, "allow_volatile_state": allow_volatile_state}
    with open_backends("log", "state", **flags) as (settings, backends):
        supervisor = Supervisor(backends, settings.data_dir)
        where = f"--data-dir {settings.data_dir}" + (f" --log {log}" if log else "")
        try:
            for pipeline_id, definition in definitions.items():
                supervisor.start(pipeline_id, definition, options)
                console.print(
                    f"[green]running[/green] {pipeline_id} (reads {', '.join(sources[pipeline_id])})"
                )
            console.print(
                f"data dir {settings.data_dir}; feed it with `streamcalc log append TOPIC FILE {where}`, "
                f"read results with `streamcalc log read TOPIC {where}`. Ctrl-C pauses and exits.",
                markup=False,
            )
            done.wait()
        except (
            PipelineError,
            BackendsNotShared,
            VolatileState,
        ) as e:  # a topic the workers cannot share, say
            fail(str(e), 2)
        except KeyboardInterrupt:
            pass
        finally:
            supervisor.close()
            console.print("paused; state and offsets are kept")
