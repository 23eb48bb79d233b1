"""Processing time in the runner: each batch's `now_ms` comes from the clock without going
back, is recorded with the batch and seen again when a crash makes the batch re-run; a batch
without input runs only when a stage is due (windows of idle keys to close)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from runtime_support import BASE_MS, IN, OUT, fill, read_all, record

from streamcalc.clock import ManualClock
from streamcalc.library.windows.panes import WindowKeyState
from streamcalc.log.embedded import open_log
from streamcalc.pipeline import build_graph
from streamcalc.records import Record, decode_record, encode_record
from streamcalc.runtime.executor import StageFailed
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.runner import Runner
from streamcalc.state.lmdb import open_pipeline_state

NOW = 1_800_000_000_000
WINDOW = "FixedTimeWindowAggregator_01"
NEVER_COMMIT = {"commit_interval_s": 1e9, "commit_max_batches": 1_000, "commit_when_drained": False}


def idle_pipeline(**destination_settings: Any) -> dict[str, Any]:
    rule = {"inputPoint": "m1::p", "windowSize": 1, "windowUnit": "minute", "aggregator": "sum"}
    return {
        "stages": [
            {"instanceName": "EDHKafkaConsumer_01", "config": {"topic": IN}},
            {
                "instanceName": WINDOW,
                "config": {"idleTimeoutMinutes": 1, "rules": [{**rule, "outputPoint": "m1::p_sum"}]},
            },
            {"instanceName": "EDHKafkaProducer_01", "config": {"topic": OUT}, **destination_settings},
        ]
    }


class Rig:
    """A runner in this process over a real embedded log and LMDB store, on a manual clock."""

    def __init__(
        self, data_dir: Path, clock: ManualClock, definition: dict[str, Any] | None = None, **options: Any
    ) -> None:
        self.clock = clock
        self.log = open_log(data_dir, clock=clock)
        self.store = open_pipeline_state(data_dir, "p1")
        self.runner = Runner(
            "p1",
            build_graph(definition or idle_pipeline()),
            self.log,
            self.store,
            options=RunnerOptions(max_wait_s=0, **options),
            clock=clock,
        )
        self.runner.recover()

    def send(self, *records: Record) -> None:
        fill(self.log, IN, [encode_record(r) for r in records])

    def outputs(self) -> list[tuple[str, int, Any, str]]:
        decoded = [decode_record(m) for m in read_all(self.log, OUT)]
        return [(r.assetId, r.time, r.value, r.attr["windowAggregator"]["calMode"]) for r in decoded]

    def states(self) -> dict[tuple[str, str], WindowKeyState]:
        decode = msgspec.msgpack.Decoder(WindowKeyState).decode
        return {(a, p): decode(raw) for a, p, raw in self.store.scan(WINDOW)}

    def close(self) -> None:
        """Without a flush: what a killed worker leaves behind."""
        self.store.close()
        self.log.close()


def test_windows_of_idle_keys_close_in_batches_without_input(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ManualClock(NOW))
    rig.send(record("a1", "p", BASE_MS, 1), record("a1", "p", BASE_MS + 10_000, 2))
    assert rig.runner.run_once() == 2

    rig.clock.advance(59.999)
    assert rig.runner.run_once() == 0
    assert rig.runner.stats.batches == 1 and rig.outputs() == []  # nothing due: no batch

    rig.clock.advance(0.001)
    assert rig.runner.run_once() == 0
    assert rig.runner.stats.batches == 2
    assert rig.outputs() == [("a1", BASE_MS, 3, "onTime")]

    rig.clock.advance(3_600)
    rig.runner.run_once()
    assert rig.runner.stats.batches == 2  # closed keys are not due again
    rig.runner.flush()
    state = rig.states()[("a1", "p")]
    assert state.event_time == BASE_MS + 60_000 and not state.has_windows()
    rig.close()


def test_processing_time_does_not_go_back_with_the_wall_clock(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ManualClock(NOW))
    rig.send(record("a1", "p", BASE_MS, 1))
    rig.runner.run_once()
    rig.clock.advance(-600)
    rig.send(record("a2", "p", BASE_MS, 1))
    rig.runner.run_once()
    rig.runner.flush()

    assert {k[0]: s.arrival for k, s in rig.states().items()} == {"a1": NOW, "a2": NOW}
    rig.close()


def schedule(rig: Rig) -> None:
    """a1 sends, a2 sends 40 s later, and 21 s after that a1 is idle (a2 is not yet)."""
    rig.send(record("a1", "p", BASE_MS, 1))
    rig.runner.run_once()
    rig.clock.advance(40)
    rig.send(record("a2", "p", BASE_MS, 5))
    rig.runner.run_once()
    rig.clock.advance(21)
    rig.runner.run_once()


def test_a_rerun_after_a_crash_sees_each_batch_at_its_recorded_time(tmp_path: Path) -> None:
    reference = Rig(tmp_path / "reference", ManualClock(NOW))
    schedule(reference)
    reference.runner.flush()
    assert reference.outputs() == [("a1", BASE_MS, 1, "onTime")]

    crashed = Rig(tmp_path / "crashed", ManualClock(NOW), **NEVER_COMMIT)
    schedule(crashed)
    assert crashed.outputs() == reference.outputs()  # appended, but nothing committed
    crashed.close()

    # restarted an hour later: re-run at the wall clock, both keys would be idle in every batch
    restarted = Rig(tmp_path / "crashed", ManualClock(NOW + 3_600_000))
    assert restarted.runner.stats.batches == 3  # recover() re-ran all three: none was committed
    assert restarted.runner.checkpoint.seq == 3
    assert restarted.states() == reference.states()
    assert restarted.outputs() == reference.outputs()

    reference.clock.advance(3_600 - 61)
    for rig in (reference, restarted):
        rig.runner.run_once()
        rig.runner.flush()
    assert (
        restarted.outputs()
        == reference.outputs()
        == [
            ("a1", BASE_MS, 1, "onTime"),
            ("a2", BASE_MS, 5, "onTime"),
        ]
    )
    assert restarted.states() == reference.states()
    reference.close()
    restarted.close()


def test_a_failed_batch_forgets_what_operators_built_in_memory(tmp_path: Path) -> None:
    """The idle index took a1 out for the failed batch; the rebuilt one has it again."""
    refuse_big = {
        "preconditions": {"field": "value", "op": "<", "value": 100},
        "onRecordError": "STOP_PIPELINE",
    }
    rig = Rig(tmp_path, ManualClock(NOW), idle_pipeline(**refuse_big))
    rig.send(record("a1", "p", BASE_MS, 500))
    rig.runner.run_once()
    rig.runner.flush()  # so that recover() has no batch to redo, which would note a1 again
    rig.clock.advance(60)

    for _ in range(2):  # the same batch fails again after recover(): nothing is forgotten
        with pytest.raises(StageFailed, match="STOP_PIPELINE"):
            rig.runner.run_once()
        rig.runner.recover()
    assert rig.outputs() == []
    rig.close()
