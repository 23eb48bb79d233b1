"""The runner on a log that keeps only the Log contract, no more: offsets with gaps, and
appends that a failure cuts short after any number of messages (what Kafka without broker
transactions may leave). Outputs must still be those of an uninterrupted run, each once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from runtime_support import FEW_COMMITS, IN, OUT, STAGE, generate_messages, sum_pipeline

from streamcalc.clock import SYSTEM_CLOCK
from streamcalc.log import AppendEntry, LogUnavailable, ProducerStamp, TopicConfig
from streamcalc.log.memory import MemoryLog
from streamcalc.pipeline import build_graph
from streamcalc.runtime.errorlane import decode_error, error_topic
from streamcalc.runtime.recovery import RecoveryError
from streamcalc.runtime.runner import Runner
from streamcalc.state.lmdb import LmdbStateStore

OUT_PARTITIONS = 3
"""So that one batch appends several entries, and a cut can fall between or inside them."""
"""Up to three batches appended but uncommitted at a time."""
MESSAGES = generate_messages(3_000, keys=40)


@dataclass
class Outcome:
    outputs: list[list[bytes]]
    """Per output partition, in log order."""
    errors: list[bytes]
    state: list[tuple[str, str, bytes]]


def filled_log(gap: int = 0) -> MemoryLog:
    log_ = MemoryLog(SYSTEM_CLOCK, offset_gap=gap)
    log_.ensure_topic(TopicConfig(OUT, partitions=OUT_PARTITIONS))
    for i in range(0, len(MESSAGES), 700):
        log_.append([AppendEntry(IN, 0, MESSAGES[i : i + 700])])
    return log_


def runner(log_: MemoryLog, store: LmdbStateStore) -> Runner:
    return Runner("p1", build_graph(sum_pipeline()), log_, store, options=FEW_COMMITS)


def drain(run: Runner) -> None:
    while run.run_once():
        pass
    run.flush()


def outcome(log_: MemoryLog, store: LmdbStateStore) -> Outcome:
    def everything(topic: str, partition: int) -> list[bytes]:
        return log_.read(topic, partition, 0, 10**9).messages

    return Outcome(
        [everything(OUT, p) for p in range(OUT_PARTITIONS)],
        sorted(everything(error_topic("p1"), 0)),
        list(store.scan(STAGE)),
    )


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Outcome]:
    """What an uninterrupted run leaves, by the input's offset gap (error entries name offsets)."""
    done: dict[int, Outcome] = {}

    def reference(gap: int) -> Outcome:
        if gap not in done:
            log_, store = filled_log(gap), LmdbStateStore(tmp_path_factory.mktemp("reference"))
            run = runner(log_, store)
            run.recover()
            drain(run)
            done[gap] = outcome(log_, store)
            store.close()
        return done[gap]

    return reference


def test_offsets_with_gaps_give_the_same_outputs_and_true_error_offsets(
    tmp_path: Path, references: Callable[[int], Outcome]
) -> None:
    reference = references(0)
    log_, store = filled_log(gap=3), LmdbStateStore(tmp_path)
    run = runner(log_, store)
    run.recover()
    drain(run)
    got = outcome(log_, store)
    store.close()

    assert (got.outputs, got.state) == (reference.outputs, reference.state)
    assert len(got.errors) == len(reference.errors)
    assert store_offset_is_past_the_input(log_, run)
    broken = [e for e in map(decode_error, got.errors) if e.raw is not None]
    assert broken, "the input has broken JSON, which goes to the error lane with its offset"
    offsets = [e.offset for e in broken if e.offset is not None]
    assert len(offsets) == len(broken) and max(offsets) > 700, "some come after a gap"
    for entry, offset in zip(broken, offsets, strict=True):
        assert log_.read(IN, 0, offset, 1).messages == [entry.raw]


def store_offset_is_past_the_input(log_: MemoryLog, run: Runner) -> bool:
    return run.checkpoint.offsets[(IN, 0)] == log_.end_offset(IN, 0)


# An append of batch 4 fails after this many of its messages landed: none, inside the first
# entry, at an entry's end, inside a later entry, and past the error lane's start.
CUTS = [0, 1, 17, 60, 90, 150]


@pytest.mark.parametrize("restart", ["same runner", "new runner"])
@pytest.mark.parametrize("gap", [0, 2])
@pytest.mark.parametrize("cut", CUTS)
def test_an_append_cut_short_is_finished_exactly_once(
    tmp_path: Path, references: Callable[[int], Outcome], cut: int, gap: int, restart: str
) -> None:
    log_, store = filled_log(gap), LmdbStateStore(tmp_path)
    run = runner(log_, store)
    run.recover()
    for _ in range(3):
        run.run_once()
    log_.fail_after(cut)
    with pytest.raises(LogUnavailable):
        drain(run)
    if restart == "new runner":  # as a worker restarted after a crash would
        run = runner(log_, store)
    run.recover()
    drain(run)
    got = outcome(log_, store)
    store.close()

    assert got == references(gap)


def test_a_redo_that_writes_other_outputs_is_refused(tmp_path: Path) -> None:
    """A mark whose entry length differs from the redone entry's means a stage is not
    deterministic: finishing the entry would write outputs no run produced."""
    log_, store = filled_log(), LmdbStateStore(tmp_path)
    run = runner(log_, store)
    run.recover()
    run.run_once()
    run._appender.wait()  # the append in flight lands; nothing is committed
    first = log_.last_stamp(OUT, 0, "p1")
    assert first is not None and first.complete
    log_.append(
        [AppendEntry(OUT, 0, [b"{}"] * (first.count + 1))],
        ProducerStamp("p1", first.stamp.seq, first.stamp.meta),
    )
    with pytest.raises(RecoveryError, match="not deterministic"):
        runner(log_, store).recover()
    store.close()
