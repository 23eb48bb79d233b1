"""bench/workloads.py: the seeded inputs both engines read, and the digest that compares outputs."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from bench import core, workloads
from hypothesis import given
from hypothesis import strategies as st

from streamcalc.records import decode_record


def test_w1_through_the_jsonl_file_is_the_log_input_of_core_generate(tmp_path: Path) -> None:
    jsonl = tmp_path / "w1.jsonl"
    assert workloads.write_jsonl(jsonl, workloads.w1_records(core.RECORDS, core.KEYS, core.SEED)) == 1_000_000
    assert workloads.append_jsonl(tmp_path / "file", core.IN, jsonl) == 1_000_000
    core.generate(tmp_path / "direct")
    via_file = workloads.log_messages(tmp_path / "file", core.IN)
    direct = workloads.log_messages(tmp_path / "direct", core.IN)
    assert all(a == b for a, b in zip(via_file, direct, strict=True))


def test_w2_is_one_reading_per_second_per_key_with_the_late_share_shifted_back(tmp_path: Path) -> None:
    keys, seconds, max_late = 50, 600, 60_000
    records = [r for chunk in workloads.w2_records(keys, seconds, 0.01, max_late, seed=3) for r in chunk]
    assert len(records) == keys * seconds
    late = 0
    for i, r in enumerate(records):
        second = workloads.T0_MS + (i // keys) * 1_000
        assert r.assetId == f"a{i % keys}" and r.pointId == "power"
        assert second - max_late <= r.time <= second
        late += r.time != second
    assert 0.007 < late / len(records) < 0.013
    again = [r for chunk in workloads.w2_records(keys, seconds, 0.01, max_late, seed=3) for r in chunk]
    assert again == records


def test_jsonl_lines_decode_to_the_records_written(tmp_path: Path) -> None:
    chunks = list(workloads.w2_records(3, 20, 0.2, 5_000, seed=9))
    workloads.write_jsonl(tmp_path / "w2.jsonl", chunks)
    lines = list(workloads.file_messages([tmp_path / "w2.jsonl"]))
    assert [decode_record(line) for line in lines] == [r for chunk in chunks for r in chunk]


outputs = st.lists(
    st.fixed_dictionaries(
        {
            "assetId": st.sampled_from("abc"),
            "time": st.integers(0, 10**13),
            "value": st.floats(allow_nan=False, allow_infinity=False),
        }
    ),
    max_size=30,
)


@given(records=outputs, order=st.randoms())
def test_digest_ignores_order_field_order_and_spacing(
    records: list[dict[str, Any]], order: random.Random
) -> None:
    ours = [json.dumps(r).encode() for r in records]
    shuffled = [dict(reversed(list(r.items()))) for r in records]
    order.shuffle(shuffled)
    theirs = [json.dumps(r, separators=(",", ":")).encode() for r in shuffled]
    assert workloads.Digest.of(ours) == workloads.Digest.of(theirs)


@given(records=outputs.filter(bool))
def test_digest_tells_a_changed_missing_or_extra_record(records: list[dict[str, Any]]) -> None:
    messages = [json.dumps(r).encode() for r in records]
    digest = workloads.Digest.of(messages)
    changed = [json.dumps({**records[0], "time": records[0]["time"] + 1}).encode(), *messages[1:]]
    assert workloads.Digest.of(changed) != digest
    assert workloads.Digest.of(messages[1:]) != digest
    assert workloads.Digest.of([*messages, messages[0]]) != digest
