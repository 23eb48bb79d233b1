"""The runtime: the runner of a pipeline, its worker process and the supervisor of workers."""
