"""The runtime: the runner of a pipeline, its worker process and the supervisor of workers.

In a worker process (one per worker of a running pipeline):
- `worker`: the process's entry point; reads its `worker_spec`, runs a `Runner` until SIGTERM.
- `runner`: the batch loop (poll, stages, append, commit), exactly once; start here.
- `wiring`: what a runner is made of, resolved once: topics, partitions, states, executor.
- `recovery`: what a crash leaves in the log, and the batches a runner redoes after one.
- `reads` (a batch's input per partition), `executor` (the stage graph over one batch),
  `keyed_state` (a stage's state and its cache), `appender` (the append beside the next
  batch), `errorlane` (rejected records), `ratelimit`, `failpoints` (crash injection),
  `stats` (what a worker committed, per stage, in a file the service reads for /metrics).
- `assignment`: which partitions and assets each worker of a parallel pipeline has.
- `options`: `RunnerOptions`, how batches are cut and committed.

In the service (or `streamcalc run`):
- `supervisor`: each pipeline's workers and lifecycle (start, pause, resume, stop, reset).
- `processes` (spawn and end worker processes), `pipeline_data` (what the lifecycle does to
  a pipeline's topics, offsets and state), `worker_spec` (the file a worker starts from).
"""
