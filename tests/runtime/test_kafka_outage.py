"""A Kafka broker that goes away while a pipeline runs: its workers fail within the bounds,
the supervisor restarts them with backoff, and once the broker is back nothing is lost or
duplicated; a broker that stays away ends the pipeline in RUN_ERROR."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_support import (
    IN,
    RunResult,
    assert_plain_consumer_reads,
    committed_offset,
    fill,
    generate_messages,
    snapshot,
    sum_pipeline,
    supervising,
    wait_until,
)

from kafka_outage import ReachableBroker, broker_behind_a_proxy
from streamcalc.backends import Backends
from streamcalc.runtime.options import RunnerOptions
from streamcalc.runtime.supervisor import WorkerStatus


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReachableBroker]:
    with broker_behind_a_proxy(tmp_path / "kafka", monkeypatch) as b:
        yield b


def test_workers_ride_out_an_outage_and_nothing_is_lost_or_duplicated(
    tmp_path: Path, broker: ReachableBroker, reference: Callable[[list[bytes], dict[str, object]], RunResult]
) -> None:
    messages = generate_messages(20_000, keys=200, seed=3)
    expected = reference(messages, sum_pipeline())
    data = tmp_path / "data"
    backends = Backends.resolve(data, log=broker.url)
    fill(backends.log, IN, messages)
    backends.close()
    with supervising(
        data, log=broker.url, backoff_initial_s=0.05, backoff_max_s=0.5, max_failures=1_000
    ) as supervisor:
        supervisor.start(
            "p1", sum_pipeline(), RunnerOptions(max_batch_records=500, max_wait_s=0.01, rate_limit=4_000)
        )
        wait_until(lambda: committed_offset(data, "p1") > 2_000, what="the pipeline under way")
        broker.proxy.go_down()
        wait_until(lambda: getattr(supervisor.info("p1"), "restarts", 0) >= 2, what="workers failing")
        assert committed_offset(data, "p1") < len(messages)
        broker.proxy.come_back()
        wait_until(lambda: committed_offset(data, "p1") == len(messages), timeout_s=120, what="catching up")
        info = supervisor.info("p1")
        assert info is not None and info.status == WorkerStatus.RUNNING
        supervisor.pause("p1")
    assert snapshot(data, "p1") == expected
    assert_plain_consumer_reads(broker.url, expected.outputs)


def test_a_broker_that_stays_away_ends_in_run_error(tmp_path: Path, broker: ReachableBroker) -> None:
    data = tmp_path / "data"
    backends = Backends.resolve(data, log=broker.url)
    fill(backends.log, IN, generate_messages(100, keys=5))
    backends.close()
    with supervising(data, log=broker.url, backoff_initial_s=0.05, backoff_max_s=0.2, max_failures=3) as sup:
        sup.start("p1", sum_pipeline(), RunnerOptions(max_wait_s=0.01))
        broker.proxy.go_down()
        wait_until(
            lambda: getattr(sup.info("p1"), "status", None) == WorkerStatus.RUN_ERROR,
            timeout_s=90,
            what="RUN_ERROR",
        )
        info = sup.info("p1")
        assert info is not None and info.failures == 3 and info.pid is None
