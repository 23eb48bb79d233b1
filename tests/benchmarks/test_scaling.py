"""bench/scaling.py's helpers: its input is W1's records, its rates are right."""

from __future__ import annotations

from pathlib import Path

from bench import core, workloads
from bench.scaling import keys_with_state, last_third_rate, write_input
from hypothesis import given
from hypothesis import strategies as st


def test_write_input_appends_the_w1_records_in_smaller_appends(tmp_path: Path) -> None:
    write_input(tmp_path / "scaling", 120_500, 1_000, per_append=1_000)
    workloads.append_records(tmp_path / "w1", core.IN, workloads.w1_records(120_500, 1_000, core.SEED))
    ours = list(workloads.log_messages(tmp_path / "scaling", core.IN))
    assert len(ours) == 120_500
    assert ours == list(workloads.log_messages(tmp_path / "w1", core.IN))


def test_keys_with_state_is_the_expected_count_of_keys_touched() -> None:
    assert keys_with_state(1, 10) == 1
    assert round(keys_with_state(2, 2), 9) == 1.5  # 1 + the chance that the second draw differs
    assert abs(keys_with_state(3_000_000, 1_000_000) / 1_000_000 - 0.9502) < 1e-4  # 1 - e^-3


@given(
    rate=st.floats(min_value=1.0, max_value=1e6),
    per_commit=st.integers(min_value=1, max_value=100_000),
    commits=st.integers(min_value=2, max_value=200),
)
def test_last_third_rate_of_a_steady_run_is_its_rate(rate: float, per_commit: int, commits: int) -> None:
    started = 3.0
    points = [(started + n / rate, n) for n in range(per_commit, (commits + 1) * per_commit, per_commit)]
    assert abs(last_third_rate(points) - rate) <= 1e-6 * rate


def test_last_third_rate_is_that_of_the_records_after_two_thirds() -> None:
    # 600 records in the first 2 s, then 300 in 3 s: the last third ran at 100 records/s
    assert last_third_rate([(1.0, 300), (2.0, 600), (3.5, 750), (5.0, 900)]) == 100.0
