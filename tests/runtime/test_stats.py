"""The workers' per-stage counts (runtime/stats.py): what a run committed, once, even across a
SIGKILL with batches appended but not committed, and carried on by the restarted worker."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from runtime_support import (
    IN,
    STAGE,
    WorkerProcess,
    committed_offset,
    fill,
    generate_messages,
    prepare,
    run_in_process,
    sum_pipeline,
    wait_until,
    write_p1_spec,
)

from streamcalc.log.embedded import open_log
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.stats import (
    CHECKPOINT_BUCKETS,
    StageCounts,
    WorkerStats,
    WorkerStatsFile,
    pipeline_stats,
    stats_dir,
)

SOURCE, SELECTOR, SINK = "EDHKafkaConsumer_01", "PointSelector_01", "EDHKafkaProducer_01"


def counted_in_process(data_dir: Path, messages: list[bytes]) -> WorkerStats:
    """An uninterrupted run over `messages`, its commits' counts added up."""
    log_ = open_log(data_dir)
    fill(log_, IN, messages)
    log_.close()
    stats = WorkerStats()
    runner = run_in_process(data_dir, "p1", sum_pipeline(), stats.committed)
    assert stats.stages[SOURCE].records_in == runner.stats.records_in == len(messages)
    assert sum(c.rejected for c in stats.stages.values()) == runner.stats.rejected > 0
    assert stats.stages[SINK].records_out == runner.stats.records_out
    return stats


def test_each_stage_counts_what_reached_it_what_it_passed_on_and_refused(tmp_path: Path) -> None:
    messages = generate_messages(2_000, keys=20)
    stats = counted_in_process(tmp_path, messages)

    source, selector, stage, sink = (stats.stages[s] for s in (SOURCE, SELECTOR, STAGE, SINK))
    assert source.records_in == source.records_out + source.rejected  # undecodable ones refused
    assert selector.records_in == source.records_out >= selector.records_out  # other points dropped
    assert stage.records_in == selector.records_out == stage.records_out + stage.rejected
    assert sink.records_in == sink.records_out == stage.records_out
    assert stats.checkpoints == sum(stats.checkpoint_buckets) >= 1
    assert len(stats.checkpoint_buckets) == len(CHECKPOINT_BUCKETS) + 1


def test_a_batch_redone_after_a_crash_counts_once(
    tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    messages = generate_messages(6_000, keys=50)
    expected = counted_in_process(tmp_path / "reference", messages)
    data = tmp_path / "crashed"
    options = {"max_batch_records": 500, "max_wait_s": 0.01, "commit_interval_s": 600}
    prepare(data, messages, sum_pipeline(), commit_max_batches=3, commit_when_drained=False, **options)

    crashed = worker_factory(data, failpoint="after_append:5")  # batches 4 and 5 in the log, uncommitted
    assert crashed.wait() == -signal.SIGKILL, crashed.output
    assert pipeline_stats(data, "p1").stages[SOURCE].records_in == 3 * 500  # batches 1-3 committed

    write_p1_spec(data, sum_pipeline(), RunnerOptions(max_batch_records=500, commit_interval_s=0.05))
    worker = worker_factory(data)
    wait_until(lambda: committed_offset(data, "p1") == len(messages), what="the restarted worker to catch up")
    assert worker.stop() == 0, worker.output
    assert pipeline_stats(data, "p1").stages == expected.stages


def test_a_stats_file_that_cannot_be_written_never_stops_the_worker(tmp_path: Path) -> None:
    stats = WorkerStatsFile(tmp_path, "p1", 0)
    blocker = stats_dir(tmp_path, "p1") / "worker-0.tmp"
    blocker.mkdir()  # the write fails as on a full disk
    stats.committed({STAGE: StageCounts(2, 1, 1)}, 0.01)
    assert pipeline_stats(tmp_path, "p1").checkpoints == 0
    blocker.rmdir()
    stats.committed({STAGE: StageCounts(1, 1, 0)}, 0.01)  # the next commit writes both
    assert pipeline_stats(tmp_path, "p1").stages == {STAGE: StageCounts(3, 2, 1)}
    assert WorkerStatsFile(tmp_path, "p1", 0).stats.checkpoints == 2  # a restarted worker carries on
