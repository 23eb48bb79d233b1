"""`Catalog.pipeline_lock` between processes, on the catalogs that several processes share
(SQLite: flock on files beside the catalog; PostgreSQL: advisory locks): one holder at a
time, a waiter served once the holder is done, and a holder killed with -9 holds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamcalc.backends import Backends
from streamcalc.catalog import Catalog, PipelineBusy
from streamcalc.clock import SYSTEM_CLOCK

HOLD = """
    import sys
    from pathlib import Path
    from streamcalc.backends import Backends
    catalog = Backends.resolve(Path(sys.argv[2]), catalog=sys.argv[1]).catalog
    with catalog.pipeline_lock("o1", "p1", 30):
        print("held", flush=True)
        sys.stdin.readline()
    catalog.close()
"""
COUNT = """
    import sys, time
    from pathlib import Path
    from streamcalc.backends import Backends
    catalog = Backends.resolve(Path(sys.argv[2]), catalog=sys.argv[1]).catalog
    sys.stdin.readline()  # both start at once
    for _ in range(int(sys.argv[4])):
        with catalog.pipeline_lock("o1", sys.argv[3], 60):  # read, then write: a lost update without it
            n = catalog.pipeline("o1", sys.argv[3]).meta["n"]
            time.sleep(0.01)  # a window the other process would write in
            catalog.save_pipeline("o1", sys.argv[3], name=None, design=None, meta={"n": n + 1})
    catalog.close()
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite://{tmp_path / 'catalog.sqlite3'}"


@pytest.fixture
def catalog(catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
    backends = Backends.resolve(tmp_path, catalog=catalog_url, clock=SYSTEM_CLOCK)
    yield backends.catalog
    backends.close()


def _holder(python_process_factory: Any, catalog_url: str, tmp_path: Path) -> Any:
    proc = python_process_factory(HOLD, catalog_url, tmp_path)
    assert proc.stdout.readline() == "held\n", proc.stderr.read()
    return proc


def test_another_process_waits_for_the_holder(
    catalog: Catalog, catalog_url: str, tmp_path: Path, python_process_factory: Any
) -> None:
    holder = _holder(python_process_factory, catalog_url, tmp_path)

    with pytest.raises(PipelineBusy), catalog.pipeline_lock("o1", "p1", 0.1):
        pass
    with catalog.pipeline_lock("o1", "p2", 5):  # another pipeline is free
        pass
    holder.stdin.write("release\n")
    holder.stdin.flush()
    with catalog.pipeline_lock("o1", "p1", 30):
        assert holder.poll() is None or holder.returncode == 0
    python_process_factory.finish(holder)


def test_a_holder_killed_with_sigkill_holds_nothing(
    catalog: Catalog, catalog_url: str, tmp_path: Path, python_process_factory: Any
) -> None:
    holder = _holder(python_process_factory, catalog_url, tmp_path)

    holder.kill()
    holder.wait()

    with catalog.pipeline_lock("o1", "p1", 30):
        pass


def test_two_processes_contending_lose_no_update(
    catalog: Catalog, catalog_url: str, tmp_path: Path, python_process_factory: Any
) -> None:
    pid = catalog.create_pipeline("o1", "counted", {"stages": []}, {"n": 0}).pipeline_id
    rounds = 25
    procs = [python_process_factory(COUNT, catalog_url, tmp_path, pid, rounds) for _ in range(2)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        python_process_factory.finish(proc, timeout_s=120)

    record = catalog.pipeline("o1", pid)
    assert record is not None and record.meta["n"] == 2 * rounds
