"""The Catalog contract (catalog/base.py), run against every catalog backend: accounts, tokens,
pipelines and their status history, org isolation, audit, and threads sharing one instance.

Each test runs once per backend in CATALOG_BACKENDS, opened from its bare URL through the
composition root. What only SQLite has (the file, its schema, other processes) is in
test_catalog_sqlite.py; what only PostgreSQL has, in test_catalog_postgresql.py.
"""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamcalc.backends import Backends
from streamcalc.catalog import AuditEntry, Catalog, Deletion, PipelineBusy, StatusChange, TokenGrant
from streamcalc.clock import ManualClock

CATALOG_BACKENDS = ["memory", "sqlite", "postgresql"]
pytestmark = pytest.mark.parametrize("catalog", CATALOG_BACKENDS, indirect=True)
DESIGN = {"stages": [{"instanceName": "PointSelector_01", "config": {"points": ["p1"]}}], "desc": "描述"}


@pytest.fixture
def catalog(request: pytest.FixtureRequest, tmp_path: Path, manual_clock: ManualClock) -> Iterator[Catalog]:
    """The backend named by the test's parameter, on manual_clock, from its bare URL under tmp_path
    (PostgreSQL: a new database on the test server)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else request.param
    backends = Backends.resolve(tmp_path, catalog=url, clock=manual_clock)
    yield backends.catalog
    backends.close()


def _is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


def test_implements_every_catalog_method_with_its_signature(catalog: Catalog) -> None:
    names = [n for n, v in vars(Catalog).items() if callable(v) and not n.startswith("_")]

    assert len(names) == 25
    for name in names:
        assert inspect.signature(getattr(type(catalog), name)) == inspect.signature(getattr(Catalog, name)), (
            name
        )


def test_close_twice_is_a_no_op(catalog: Catalog) -> None:
    catalog.close()
    catalog.close()


# orgs and accounts


def test_ensure_org_is_idempotent_and_refuses_blank_ids(catalog: Catalog) -> None:
    catalog.ensure_org("o1")
    catalog.ensure_org("o1")
    with pytest.raises(ValueError):
        catalog.ensure_org(" ")


def test_create_account_generates_uuid_keys(catalog: Catalog, manual_clock: ManualClock) -> None:
    a = catalog.create_account("o1")
    b = catalog.create_account("o1")

    assert _is_uuid4(a.app_key) and _is_uuid4(a.app_secret)
    assert len({a.app_key, a.app_secret, b.app_key, b.app_secret}) == 4
    assert (a.org_id, a.created_ms) == ("o1", manual_clock.wall_ms())
    assert catalog.account(a.app_key) == a
    assert catalog.account("nobody") is None


def test_create_account_with_given_keys_is_idempotent(catalog: Catalog, manual_clock: ManualClock) -> None:
    first = catalog.create_account("o1", "key", "secret")
    manual_clock.advance(60)

    assert catalog.create_account("o1", "key", "secret") == first
    assert catalog.create_account("o1", "key") == first
    assert catalog.account("key") == first


@pytest.mark.parametrize(("org", "secret"), [("o2", "secret"), ("o1", "other"), ("o2", None)])
def test_create_account_refuses_another_org_or_secret(catalog: Catalog, org: str, secret: str | None) -> None:
    first = catalog.create_account("o1", "key", "secret")

    with pytest.raises(ValueError, match="key"):
        catalog.create_account(org, "key", secret)

    assert catalog.account("key") == first


@pytest.mark.parametrize(("org", "key", "secret"), [("", None, None), ("o1", "", None), ("o1", "k", " ")])
def test_create_account_refuses_empty_values(
    catalog: Catalog, org: str, key: str | None, secret: str | None
) -> None:
    with pytest.raises(ValueError):
        catalog.create_account(org, key, secret)


# tokens


def test_tokens_save_read_and_expire(catalog: Catalog) -> None:
    catalog.save_token("h1", TokenGrant("k1", 1_000))
    catalog.save_token("h2", TokenGrant("k1", 2_000))
    catalog.save_token("h3", TokenGrant("k2", 3_000))

    assert catalog.token("h2") == TokenGrant("k1", 2_000)
    assert catalog.token("nope") is None
    assert catalog.delete_expired_tokens(999) == 0
    assert catalog.delete_expired_tokens(2_000) == 2  # expiring at now counts as expired
    assert catalog.token("h1") is None and catalog.token("h2") is None
    assert catalog.token("h3") == TokenGrant("k2", 3_000)
    assert catalog.delete_expired_tokens(2_000) == 0


def test_save_token_replaces_a_grant(catalog: Catalog) -> None:
    catalog.save_token("h", TokenGrant("k", 1_000))
    catalog.save_token("h", TokenGrant("k", 5_000))

    assert catalog.token("h") == TokenGrant("k", 5_000)


# pipelines


def test_create_pipeline(catalog: Catalog, manual_clock: ManualClock) -> None:
    record = catalog.create_pipeline("o1", "p", DESIGN, {"templateType": 1, "desc": "x"})

    assert _is_uuid4(record.pipeline_id)
    assert (record.org_id, record.name, record.status) == ("o1", "p", "DRAFT")
    assert record.design == DESIGN and record.released is None
    assert record.meta == {"templateType": 1, "desc": "x"}
    assert (record.release_version, record.updated_ms) == (0, manual_clock.wall_ms())
    assert catalog.pipeline("o1", record.pipeline_id) == record
    assert catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id != record.pipeline_id


def test_save_pipeline_updates_only_given_fields_and_merges_meta(
    catalog: Catalog, manual_clock: ManualClock
) -> None:
    record = catalog.create_pipeline("o1", "p", DESIGN, {"a": 1, "b": 2})
    manual_clock.advance(10)

    saved = catalog.save_pipeline("o1", record.pipeline_id, name=None, design=None, meta={"b": 3, "c": 4})
    assert saved is not None
    assert (saved.name, saved.design, saved.meta) == ("p", DESIGN, {"a": 1, "b": 3, "c": 4})
    assert saved.updated_ms == record.updated_ms + 10_000

    renamed = catalog.save_pipeline("o1", record.pipeline_id, name="q", design={"stages": []}, meta={})
    assert renamed is not None
    assert (renamed.name, renamed.design, renamed.meta) == ("q", {"stages": []}, {"a": 1, "b": 3, "c": 4})
    assert renamed.status == "DRAFT" and renamed.released is None
    assert catalog.pipeline("o1", record.pipeline_id) == renamed
    assert catalog.save_pipeline("o1", "no-such-id", name="x", design=None, meta={}) is None


def test_release_copies_the_design(catalog: Catalog) -> None:
    pid = catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id

    first = catalog.release_pipeline("o1", pid)
    assert first is not None
    assert (first.status, first.released, first.release_version) == ("PUBLISHED", DESIGN, 1)

    catalog.save_pipeline("o1", pid, name=None, design={"stages": ["v2"]}, meta={})
    kept = catalog.pipeline("o1", pid)
    assert kept is not None and kept.released == DESIGN and kept.design == {"stages": ["v2"]}

    second = catalog.release_pipeline("o1", pid)
    assert second is not None
    assert (second.released, second.release_version) == ({"stages": ["v2"]}, 2)
    assert catalog.release_pipeline("o1", "no-such-id") is None


def test_release_of_a_paused_pipeline_keeps_it_paused(catalog: Catalog, manual_clock: ManualClock) -> None:
    pid = catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id
    catalog.release_pipeline("o1", pid)
    catalog.set_status("o1", pid, "PAUSED")
    history = catalog.status_history("o1", pid)
    catalog.save_pipeline("o1", pid, name=None, design={"stages": ["v2"]}, meta={})
    manual_clock.advance(1)

    again = catalog.release_pipeline("o1", pid)

    assert again is not None
    assert (again.status, again.released, again.release_version) == ("PAUSED", {"stages": ["v2"]}, 2)
    assert again.updated_ms == manual_clock.wall_ms()
    assert catalog.status_history("o1", pid) == history  # no status change, so no history entry


def test_records_are_copies_as_json_gives_them_back(catalog: Catalog) -> None:
    design: dict[str, Any] = {"stages": [("a", 1)], "n": {"x": [1]}}
    record = catalog.create_pipeline("o1", "p", design, {"tags": ("t",)})
    design["n"]["x"].append(2)
    record.design["stages"].clear()

    stored = catalog.pipeline("o1", record.pipeline_id)
    assert stored is not None
    assert (stored.design, stored.meta) == ({"stages": [["a", 1]], "n": {"x": [1]}}, {"tags": ["t"]})
    with pytest.raises(TypeError):
        catalog.create_pipeline("o1", "bad", {"x": object()}, {})
    assert catalog.pipelines("o1", released=False, offset=0, limit=10)[0] == 1


def test_pipelines_pages_released_and_drafts_oldest_first(catalog: Catalog) -> None:
    ids = [catalog.create_pipeline("o1", f"p{i}", DESIGN, {}).pipeline_id for i in range(7)]
    for pid in ids[1::2]:  # 3 released: p1, p3, p5
        catalog.release_pipeline("o1", pid)
    catalog.set_status("o1", ids[3], "RUNNING")
    catalog.create_pipeline("o2", "other", DESIGN, {})

    def names(released: bool, offset: int, limit: int) -> tuple[int, list[str]]:
        total, page = catalog.pipelines("o1", released=released, offset=offset, limit=limit)
        return total, [r.name for r in page]

    assert names(True, 0, 10) == (3, ["p1", "p3", "p5"])
    assert names(True, 1, 1) == (3, ["p3"])
    assert names(True, 3, 10) == (3, [])
    assert names(False, 0, 2) == (4, ["p0", "p2"])
    assert names(False, 2, 2) == (4, ["p4", "p6"])
    assert names(False, -5, 1) == (4, ["p0"])  # a negative offset or limit counts as 0
    assert names(False, 1, 0) == names(False, 1, -1) == (4, [])
    assert catalog.pipelines("nobody", released=False, offset=0, limit=10) == (0, [])


def test_orgs_lists_every_org_once(catalog: Catalog) -> None:
    catalog.create_pipeline("o2", "a", DESIGN, {})
    catalog.create_account("o1")
    catalog.ensure_org("o2")

    assert catalog.orgs() == ["o1", "o2"]


def test_running_pipelines_of_every_org(catalog: Catalog) -> None:
    a = catalog.create_pipeline("o1", "a", DESIGN, {}).pipeline_id
    b = catalog.create_pipeline("o2", "b", DESIGN, {}).pipeline_id
    c = catalog.create_pipeline("o2", "c", DESIGN, {}).pipeline_id
    for org, pid in (("o1", a), ("o2", b), ("o2", c)):
        catalog.release_pipeline(org, pid)
    catalog.set_status("o1", a, "RUNNING")
    catalog.set_status("o2", c, "RUNNING")
    catalog.set_status("o2", b, "PAUSED")

    assert [(r.org_id, r.pipeline_id) for r in catalog.running_pipelines()] == [("o1", a), ("o2", c)]


def test_set_status_and_history(catalog: Catalog, manual_clock: ManualClock) -> None:
    pid = catalog.create_pipeline("o1", "p", DESIGN, {}).pipeline_id
    t0 = manual_clock.wall_ms()
    manual_clock.advance(1)
    catalog.release_pipeline("o1", pid)
    manual_clock.advance(1)
    catalog.set_status("o1", pid, "RUNNING")
    manual_clock.advance(1)
    catalog.set_status("o1", pid, "RUN_ERROR", "worker failed repeatedly")

    record = catalog.pipeline("o1", pid)
    assert record is not None and record.status == "RUN_ERROR" and record.updated_ms == t0 + 3_000
    assert catalog.status_history("o1", pid) == [
        StatusChange(pid, "DRAFT", t0),
        StatusChange(pid, "PUBLISHED", t0 + 1_000),
        StatusChange(pid, "RUNNING", t0 + 2_000),
        StatusChange(pid, "RUN_ERROR", t0 + 3_000, "worker failed repeatedly"),
    ]
    catalog.set_status("o1", "no-such-id", "RUNNING")
    assert catalog.status_history("o1", "no-such-id") == []


# org isolation: every pipeline method, called by another org, answers nothing and changes nothing

OTHER = "o2"
ISOLATION_CASES: list[tuple[str, Callable[[Catalog, str], Any], Any]] = [
    ("pipeline", lambda c, pid: c.pipeline(OTHER, pid), None),
    (
        "save_pipeline",
        lambda c, pid: c.save_pipeline(OTHER, pid, name="x", design={"x": 1}, meta={"x": 1}),
        None,
    ),
    ("release_pipeline", lambda c, pid: c.release_pipeline(OTHER, pid), None),
    ("set_status", lambda c, pid: c.set_status(OTHER, pid, "STOPPED", "hijack"), None),
    ("status_history", lambda c, pid: c.status_history(OTHER, pid), []),
    ("pipelines/released", lambda c, pid: c.pipelines(OTHER, released=True, offset=0, limit=10), (0, [])),
    ("pipelines/drafts", lambda c, pid: c.pipelines(OTHER, released=False, offset=0, limit=10), (0, [])),
    ("audit_log", lambda c, pid: c.audit_log(OTHER, pid), []),
]


@pytest.mark.parametrize(
    ("call", "expected"), [(c[1], c[2]) for c in ISOLATION_CASES], ids=[c[0] for c in ISOLATION_CASES]
)
def test_another_org_sees_and_touches_nothing(
    catalog: Catalog, call: Callable[[Catalog, str], Any], expected: Any
) -> None:
    draft = catalog.create_pipeline("o1", "draft", DESIGN, {"m": 1}).pipeline_id
    live = catalog.create_pipeline("o1", "live", DESIGN, {"m": 1}).pipeline_id
    catalog.release_pipeline("o1", live)
    catalog.audit(AuditEntry("o1", "k1", "release", live, {}, 1))
    catalog.ensure_org(OTHER)
    before = [(catalog.pipeline("o1", p), catalog.status_history("o1", p)) for p in (draft, live)]

    for pid in (draft, live):
        assert call(catalog, pid) == expected

    assert [(catalog.pipeline("o1", p), catalog.status_history("o1", p)) for p in (draft, live)] == before


# audit


def test_audit_log_by_org_and_pipeline_in_order(catalog: Catalog) -> None:
    entries = [
        AuditEntry("o1", "k1", "save", "p1", {"name": "描述", "n": [1, 2]}, 10),
        AuditEntry("o1", "k1", "token", None, {}, 11),
        AuditEntry("o2", "k2", "save", "p1", {}, 12),
        AuditEntry("o1", "k3", "start", "p1", {"kafkaRate": 100}, 13),
    ]
    for entry in entries:
        catalog.audit(entry)

    assert catalog.audit_log("o1") == [entries[0], entries[1], entries[3]]
    assert catalog.audit_log("o1", "p1") == [entries[0], entries[3]]
    assert catalog.audit_log("o2") == [entries[2]]
    assert catalog.audit_log("o3") == []


# deletions kept for undo


def _deletion(deletion_id: str, org: str = "o1", pipeline: str = "p1", at_ms: int = 10) -> Deletion:
    return Deletion(deletion_id, org, pipeline, "Stage_01", "Stage_01", 2, 3, 4, "k1", at_ms, 5, 1)


def test_a_deletion_is_listed_pending_then_completed_with_its_keys_and_generation(catalog: Catalog) -> None:
    catalog.add_deletion(_deletion("d1"))
    assert catalog.deletions("o1", "p1") == [_deletion("d1")]

    catalog.complete_deletion("o1", "d1", 40, 7)

    assert catalog.deletions("o1", "p1") == [
        Deletion(**{**vars(_deletion("d1")), "keys": 40, "generation": 7})
    ]


def test_deletions_are_listed_newest_first_per_pipeline(catalog: Catalog) -> None:
    for deletion in (_deletion("d1"), _deletion("d2", pipeline="p2"), _deletion("d3")):
        catalog.add_deletion(deletion)
    assert [d.deletion_id for d in catalog.deletions("o1", "p1")] == ["d3", "d1"]
    assert [d.deletion_id for d in catalog.deletions("o1", "p2")] == ["d2"]


def test_a_discarded_deletion_is_gone(catalog: Catalog) -> None:
    catalog.add_deletion(_deletion("d1"))
    catalog.discard_deletion("o1", "d1")
    assert catalog.deletions("o1", "p1") == []


def test_a_deletion_is_marked_restored_once(catalog: Catalog) -> None:
    catalog.add_deletion(_deletion("d1"))
    catalog.complete_deletion("o1", "d1", 4, 7)

    assert catalog.mark_restored("o1", "d1", 99, 8) is True
    assert catalog.mark_restored("o1", "d1", 100, 9) is False

    (restored,) = catalog.deletions("o1", "p1")
    assert (restored.generation, restored.restored_ms, restored.restored_generation) == (7, 99, 8)


def test_drop_deletions_drops_and_returns_those_made_before_a_time_in_every_org(catalog: Catalog) -> None:
    for deletion in (
        _deletion("old", at_ms=10),
        _deletion("other-org", org="o2", at_ms=19),
        _deletion("new", at_ms=20),
    ):
        catalog.add_deletion(deletion)

    dropped = catalog.drop_deletions(20)

    assert sorted(dropped, key=lambda d: d.deletion_id) == [
        _deletion("old", at_ms=10),
        _deletion("other-org", org="o2", at_ms=19),
    ]
    assert [d.deletion_id for d in catalog.deletions("o1", "p1")] == ["new"]
    assert catalog.deletions("o2", "p1") == []
    assert catalog.drop_deletions(20) == []


DELETION_ISOLATION: list[tuple[str, Callable[[Catalog], Any], Any]] = [
    ("deletions", lambda c: c.deletions(OTHER, "p1"), []),
    ("complete_deletion", lambda c: c.complete_deletion(OTHER, "d1", 1, 99), None),
    ("discard_deletion", lambda c: c.discard_deletion(OTHER, "d1"), None),
    ("mark_restored", lambda c: c.mark_restored(OTHER, "d1", 5, 99), False),
]


@pytest.mark.parametrize(
    ("call", "expected"), [(c[1], c[2]) for c in DELETION_ISOLATION], ids=[c[0] for c in DELETION_ISOLATION]
)
def test_another_org_sees_and_touches_no_deletion(
    catalog: Catalog, call: Callable[[Catalog], Any], expected: Any
) -> None:
    catalog.add_deletion(_deletion("d1"))
    catalog.complete_deletion("o1", "d1", 4, 7)
    before = catalog.deletions("o1", "p1")

    assert call(catalog) == expected

    assert catalog.deletions("o1", "p1") == before


# the lifecycle lock (between processes: test_catalog_pipeline_lock.py)


def test_a_pipeline_lock_has_one_holder_and_others_pipelines_are_free(catalog: Catalog) -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with catalog.pipeline_lock("o1", "p1", 5):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(30)
        with (
            pytest.raises(PipelineBusy, match="pipeline p1 is busy"),
            catalog.pipeline_lock("o1", "p1", 0.05),
        ):
            pass
        with catalog.pipeline_lock("o1", "p2", 5), catalog.pipeline_lock("o2", "p1", 5):
            pass
    finally:
        release.set()
        thread.join(30)


def test_a_waiter_gets_the_pipeline_lock_once_its_holder_is_done(catalog: Catalog) -> None:
    events: list[str] = []
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with catalog.pipeline_lock("o1", "p1", 5):
            held.set()
            release.wait(30)
            events.append("holder done")

    def waiter() -> None:
        with catalog.pipeline_lock("o1", "p1", 30):
            events.append("waiter in")

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    threads[0].start()
    assert held.wait(30)
    threads[1].start()
    release.set()
    for t in threads:
        t.join(30)

    assert events == ["holder done", "waiter in"]


def test_a_pipeline_lock_is_released_when_its_block_raises(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.pipeline_lock("o1", "p1", 1):
        raise RuntimeError("the operation failed")

    with catalog.pipeline_lock("o1", "p1", 0.05):
        pass


# sharing: threads on one instance


def test_threads_share_one_instance(catalog: Catalog) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                pid = catalog.create_pipeline("o1", f"{n}-{i}", DESIGN, {}).pipeline_id
                catalog.set_status("o1", pid, "PUBLISHED")
                assert catalog.pipeline("o1", pid) is not None
        except BaseException as e:  # reported below, with the failing thread's error
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert catalog.pipelines("o1", released=True, offset=0, limit=1)[0] == 160
