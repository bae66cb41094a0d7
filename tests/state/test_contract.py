"""The state-store contract: every backend (SQLite, PostgreSQL) hands back the same rows for the same calls.

Each test runs against both backends (the `store` fixture, in conftest.py, is parametrised). PostgreSQL tests get
a brand-new schema and skip with the reason when no server answers, except under CI=true.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
from stateutil import record_outcome

from connector.state import StateStore
from connector.state import rows as R

# The `store`, `opener` and `location` fixtures (one per backend) are in conftest.py.


def _person(sf_id: str = "00Q000000000001AAA") -> dict[str, Any]:
    return {"sobject": "Lead", "sf_id": sf_id, "rung": "create", "organisation_uid": None,
            "email": "a@example.com", "record_hash": "h1"}


def _member(**changes: Any) -> dict[str, Any]:
    row = {"event_id": "acme/event/1", "campaign_id": "701000000000001AAA", "cm_id": "00v000000000001AAA",
           "person_key": "acme/event_person/1", "person_sf_id": "00Q000000000001AAA", "status": "Registered",
           "status_at": "2025-01-01T00:00:00+00:00", "category_ids": ["acme/category/9"],
           "categories_text": "VIP", "record_hash": "h"}
    row.update(changes)
    return row


# -- the port ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["SqliteStateStore", "PostgresStateStore"])
def test_each_backend_implements_the_port_with_the_same_parameter_names(backend):
    import connector.state.postgres as pg
    import connector.state.sqlite as sq

    cls = getattr(sq, backend, None) or getattr(pg, backend)
    wanted = {n for n, _ in inspect.getmembers(StateStore, inspect.isfunction) if not n.startswith("_")}
    assert {"hold", "release_held", "campaign_lock", "prune", "size_bytes"} <= wanted
    for name in wanted:
        assert callable(getattr(cls, name, None)), name
        want = list(inspect.signature(getattr(StateStore, name)).parameters)
        have = list(inspect.signature(getattr(cls, name)).parameters)
        assert want == have, name


def test_migrations_run_once_and_a_second_open_finds_nothing_to_do(opener):
    first = opener()
    first.put_people({"p1": _person()})
    second = opener()                    # a replica starting later: same schema, data intact
    assert second.people(["p1"])["p1"]["sf_id"] == "00Q000000000001AAA"


# -- transactions ---------------------------------------------------------------------------
def test_atomic_rolls_back_every_write_of_the_block(store):
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.put_people({"p1": _person()})
            store.put_resources([("person:p1", "h", "2025-01-01T00:00:00+00:00")])
            store.put_members({"m1": _member()})
            store.record_outcomes([{"message_key": "k1", "outcome": "synced"}])
            raise RuntimeError("crash between the writes")
    assert store.people(["p1"]) == {}
    assert store.resources(["person:p1"]) == {}
    assert store.members(["m1"]) == {}
    assert store.outcome_counts() == {}


def test_nested_atomic_joins_the_outer_transaction(opener):
    store, other = opener(), opener()
    with store.atomic():
        with store.atomic():
            store.put_people({"p1": _person()})
        # The inner block ended, but nothing is committed until the outer one does.
        assert other.people(["p1"]) == {}
        assert store.people(["p1"]) != {}
    assert other.people(["p1"])["p1"]["sobject"] == "Lead"
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.put_people({"p2": _person()})
            with store.atomic():
                store.put_people({"p3": _person()})
            raise RuntimeError("outer fails after the inner block")
    assert store.people(["p2", "p3"]) == {}


# -- resources: conditional on generated_at --------------------------------------------------
def test_put_resources_never_writes_an_older_version_over_a_newer_one(store):
    store.put_resources([("person:a", "h2", "2025-01-02T00:00:00+00:00"),
                         ("person:b", "h1", "2025-01-01T00:00:00+00:00")])
    store.put_resources([("person:a", "h1", "2025-01-01T00:00:00.500000+00:00"),   # older: refused
                         ("person:b", "h3", "2025-01-01T00:00:00.000001+00:00")])  # newer: written
    got = store.resources(["person:a", "person:b", "person:none"])
    assert {k: (r["content_hash"], r["generated_at"]) for k, r in got.items()} == {
        "person:a": ("h2", "2025-01-02T00:00:00+00:00"),
        "person:b": ("h3", "2025-01-01T00:00:00.000001+00:00"),
    }
    store.put_resources([("person:a", "h9", "2025-01-02T00:00:00+00:00")])   # same instant: written
    assert store.resources(["person:a"])["person:a"]["content_hash"] == "h9"
    assert set(got["person:a"]) == {"resource_key", "content_hash", "generated_at"}   # applied_at: not kept (011)


# -- people, events, categories, members, records ---------------------------------------------
def test_people_round_trip_and_relink_after_a_conversion(store):
    store.put_people({"p1": _person("00Q1"), "p2": _person("00Q1"), "p3": _person("00Q3")})
    store.relink_person_records("00Q1", "Contact", "0031")
    got = store.people(["p1", "p2", "p3"])
    assert {k: (r["sobject"], r["sf_id"]) for k, r in got.items()} == {
        "p1": ("Contact", "0031"), "p2": ("Contact", "0031"), "p3": ("Lead", "00Q3")}
    assert set(got["p1"]) == set(R.COLUMNS["people"])
    # The email a person's message gave is not kept (issue 18: nothing read it), only what was written.
    assert got["p1"]["organisation_uid"] is None and "email" not in got["p1"]


def test_events_keep_unchanged_fields_and_metadata_round_trips(store):
    meta = {"region": "americas", "담당자": "김민준", "cost": 1200}
    store.put_event("acme/event/2", name="Summit ยินดี", timezone="Asia/Bangkok", metadata=meta,
                    metadata_at="2025-01-01T00:00:00+00:00", is_placeholder=True)
    store.put_event("acme/event/2", campaign_id="701000000000002AAA", is_placeholder=0)
    store.put_event("acme/event/1", name="Expo", metadata=None)
    ev = store.events(["acme/event/2", "acme/event/9"])
    assert list(ev) == ["acme/event/2"]
    row = ev["acme/event/2"]
    assert (row["name"], row["timezone"], row["metadata"], row["campaign_id"], row["is_placeholder"]) == (
        "Summit ยินดี", "Asia/Bangkok", meta, "701000000000002AAA", 0)
    assert store.events(["acme/event/1"])["acme/event/1"]["metadata"] is None
    assert [e["event_id"] for e in store.all_events()] == ["acme/event/1", "acme/event/2"]
    assert [e["event_id"] for e in store.all_events("acme/event/1")] == ["acme/event/1"]
    assert isinstance(store.all_events("acme/event/2")[0]["metadata"], str)   # raw, as SQLite gives it


def test_categories_are_replaced_as_a_whole(store):
    store.replace_categories("e", {"c1": "Delegate", "c2": "VIP"})
    store.replace_categories("e", {"c2": "VIP Gold"})
    store.replace_categories("f", {})
    assert store.categories("e") == {"c2": "VIP Gold"}
    assert store.categories("f") == {}


def test_members_round_trip_and_are_forgotten_by_key_or_campaign(store):
    store.put_members({"m1": _member(), "m2": _member(cm_id=None, category_ids=[]),
                       "m3": _member(campaign_id="701OTHER", event_id="acme/event/2")})
    got = store.members(["m1", "m2", "m3"])
    assert got["m1"]["category_ids"] == ["acme/category/9"] and got["m2"]["category_ids"] == []
    assert set(got["m1"]) == set(R.COLUMNS["members"])
    assert [m["member_key"] for m in store.members_of_event("acme/event/1")] == ["m1"]
    store.put_member("m1", status="Attended", category_ids=["acme/category/1", "acme/category/2"])
    m1 = store.members(["m1"])["m1"]
    assert (m1["status"], m1["category_ids"], m1["cm_id"]) == (
        "Attended", ["acme/category/1", "acme/category/2"], "00v000000000001AAA")
    store.put_member("m9", cm_id="00v9", event_id="acme/event/1")
    assert store.members(["m9"])["m9"]["category_ids"] == []
    store.forget_members(["m1"])
    assert (store.members(["m1"])["m1"]["cm_id"], store.members(["m1"])["m1"]["record_hash"]) == (None, None)
    # An existing row written again with every column (the engine's commit) keeps the key.
    store.put_members({"m2": {**store.members(["m2"])["m2"], "cm_id": "00v2"}})
    assert store.members(["m2"])["m2"]["cm_id"] == "00v2"


def test_forget_campaigns_rebuilds_on_the_next_delivery(store):
    store.put_event("acme/event/1", campaign_id="701A", name="Expo")
    store.put_event("acme/event/2", campaign_id="701B", name="Other")
    store.put_resources([("event:acme/event/1", "h", "2025-01-01T00:00:00+00:00"),
                         ("event:acme/event/2", "h", "2025-01-01T00:00:00+00:00")])
    store.put_record("acme/session/5", "Campaign", "701A")
    store.put_members({"m1": _member(campaign_id="701A")})
    store.add_campaign_statuses([("701A", "Attended"), ("701A", "Registered"), ("701B", "Attended")])
    store.forget_campaigns(["701A"])
    assert store.events(["acme/event/1"])["acme/event/1"]["campaign_id"] is None
    assert store.events(["acme/event/2"])["acme/event/2"]["campaign_id"] == "701B"
    assert store.records(["acme/session/5"]) == {}
    assert store.members(["m1"])["m1"]["cm_id"] is None
    assert store.campaign_statuses(["701A", "701B"]) == {("701B", "Attended")}
    assert list(store.resources(["event:acme/event/1", "event:acme/event/2"])) == ["event:acme/event/2"]
    store.forget_campaigns([])


def test_records_and_campaign_statuses(store):
    store.put_record("acme/lead/1", "Jomablue_Lead_Capture__c", "a01")
    store.put_record("acme/lead/1", "Jomablue_Lead_Capture__c", "a02")
    assert store.records(["acme/lead/1"])["acme/lead/1"]["sf_id"] == "a02"
    store.add_campaign_statuses([("701A", "Attended")])
    store.add_campaign_statuses([("701A", "Attended"), ("701A", "Registered")])   # idempotent
    assert store.campaign_statuses(["701A"]) == {("701A", "Attended"), ("701A", "Registered")}
    assert store.campaign_statuses([]) == set()


# -- outcomes: small, and bodies only while quarantined ----------------------------------------
def test_outcomes_count_attempts_and_keep_bodies_only_while_quarantined(store):
    body = "{\"x\": \"ยินดี 환영\"}"
    record_outcome(store, "m1", outcome="quarantined", reason="bad", body=body, sqs_message_id="sqs-1",
                         detail={"field": "email"})
    record_outcome(store, "m1", outcome="quarantined", reason="still bad", body=body, sqs_message_id="sqs-2")
    [row] = store.quarantined()
    assert (row["attempts"], row["reason"], row["body"], row["sqs_message_id"]) == (2, "still bad", body, "sqs-2")
    assert store.quarantined(["m1", "nope"])[0]["message_key"] == "m1"
    record_outcome(store, "m1", outcome="synced", sqs_message_id="sqs-3", body=body, detail={"match": "email"})
    assert store.quarantined() == [] and store.outcome_counts() == {"synced": 1}


def _raw_message(location: Path | str, key: str) -> dict[str, Any]:
    """The stored outcome row itself, read past the port."""
    if isinstance(location, Path):
        import sqlite3

        conn = sqlite3.connect(location)
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("select * from messages where message_key = ?", [key]).fetchone())
        conn.close()
        return row
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(location, row_factory=dict_row) as conn:
        return conn.execute("select * from messages where message_key = %s", [key]).fetchone()


def test_a_synced_outcome_keeps_only_what_dedupe_replay_and_reports_need(store, location):
    store.record_outcomes([dict(message_key="k", outcome="synced", resource_type="person",
                                resource_id="acme/event_person/1", event_id="acme/event/1", sqs_message_id="sqs",
                                body="{}", detail={"match": "create"})])
    row = _raw_message(location, "k")
    assert (row["outcome"], row["resource_type"], row["resource_id"], row["event_id"], row["attempts"]) == (
        "synced", "person", "acme/event_person/1", "acme/event/1", 1)
    assert (row["body"], row["detail"], row["sqs_message_id"]) == (None, None, None)
    store.record_outcomes([dict(message_key="r", outcome="retry", reason="UNABLE_TO_LOCK_ROW", detail={"n": 1})])
    assert _raw_message(location, "r")["detail"] == '{"n": 1}'


def test_the_same_key_twice_in_one_call_counts_two_attempts(store):
    store.record_outcomes([{"message_key": "k", "outcome": "retry", "reason": "locked"},
                           {"message_key": "k", "outcome": "quarantined", "reason": "bad", "body": "b"}])
    [row] = store.quarantined()
    assert (row["attempts"], row["reason"], row["body"]) == (2, "bad", "b")
    assert row["first_seen"] <= row["last_seen"]


def test_outcome_counts_are_sorted_by_outcome(store):
    store.record_outcomes([{"message_key": f"k{i}", "outcome": o}
                           for i, o in enumerate(["synced", "skipped_stale", "synced", "retry", "skipped_duplicate"])])
    assert list(store.outcome_counts().items()) == [
        ("retry", 1), ("skipped_duplicate", 1), ("skipped_stale", 1), ("synced", 2)]


# -- runs, API usage ----------------------------------------------------------------------------
def test_runs_and_api_usage(store):
    assert store.last_run() is None and store.api_usage() is None
    a = store.start_run()
    b = store.start_run()
    assert b > a
    store.finish_run(b, 75, {"counts": {"synced": 3}, "reason": "budget ยินดี"})
    last = store.last_run()
    summary = {"counts": {"synced": 3}, "reason": "budget ยินดี"}
    assert (last["id"], last["exit_code"], last["summary"]) == (b, 75, summary)
    store.put_api_usage(10, 100)
    store.put_api_usage(12, 100)
    usage = store.api_usage()
    assert (usage["used"], usage["max"]) == (12, 100) and set(usage) == {"used", "max", "seen_at"}


# -- upkeep ---------------------------------------------------------------------------------------
def test_prune_deletes_old_outcomes_but_keeps_quarantined_ones(store, monkeypatch):
    old = "2020-01-01T00:00:00.000+00:00"
    monkeypatch.setattr(R, "now", lambda: old)
    store.record_outcomes([{"message_key": "old-synced", "outcome": "synced"},
                           {"message_key": "old-skipped", "outcome": "skipped_duplicate"},
                           {"message_key": "old-quarantined", "outcome": "quarantined", "body": "{}"}])
    old_run = store.start_run()
    monkeypatch.undo()
    store.record_outcomes([{"message_key": "new-synced", "outcome": "synced"}])
    assert store.prune(30) == 2
    assert store.outcome_counts() == {"quarantined": 1, "synced": 1}
    assert [r["message_key"] for r in store.quarantined()] == ["old-quarantined"]
    assert store.last_run()["id"] == old_run     # the last run is kept whatever its age
    assert store.prune(30) == 0


def test_size_bytes_reports_the_store_and_grows_with_it(store):
    before = store.size_bytes()
    assert before > 0
    store.record_outcomes([{"message_key": f"k{i:05d}", "outcome": "synced", "resource_type": "person",
                            "resource_id": f"acme/event_person/{i}", "event_id": "acme/event/1"} for i in range(3000)])
    store.put_resources([(f"person:acme/event_person/{i}", "h" * 64, "2025-01-01T00:00:00+00:00") for i in range(3000)])
    assert store.size_bytes() > before


# -- replicas ---------------------------------------------------------------------------------------
def test_hold_returns_the_keys_obtained_and_release_lets_them_go(store):
    assert store.hold([]) == set()
    assert store.hold(["person:a", "person:b", "person:a"]) == {"person:a", "person:b"}
    store.release_held()
    assert store.hold(["person:a"]) == {"person:a"}
    store.release_held()


def test_campaign_lock_is_an_async_context_manager(store):
    async def go() -> None:
        async with store.campaign_lock("701A"):
            store.put_members({"m1": _member()})
        async with store.campaign_lock("701A"):     # released: taken again
            store.put_members({"m2": _member()})

    asyncio.run(go())
    assert set(store.members(["m1", "m2"])) == {"m1", "m2"}


def test_prune_periodically_prunes_at_once_and_survives_a_failing_prune(store, monkeypatch):
    from connector.state.upkeep import prune_periodically

    monkeypatch.setattr(R, "now", lambda: "2020-01-01T00:00:00.000+00:00")
    store.record_outcomes([{"message_key": "old", "outcome": "synced"}])
    monkeypatch.undo()
    calls = []
    real = store.prune

    def prune(keep_days: float) -> int:
        calls.append(keep_days)
        if len(calls) == 2:
            raise RuntimeError("server went away")
        return real(keep_days)

    monkeypatch.setattr(store, "prune", prune)

    async def go() -> None:
        task = asyncio.create_task(prune_periodically(store, 7, every=0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(go())
    assert calls[:3] == [7, 7, 7]
    assert store.outcome_counts() == {}


# -- size per kind of row (status shows it) --------------------------------------------------------
def test_size_by_kind_names_every_table_and_adds_up_to_the_store(store):
    store.put_people({f"p{i}": _person() for i in range(50)})
    sizes = store.size_by_kind()
    assert {"people", "members", "messages", "written", "resources"} <= set(sizes)
    assert all(isinstance(v, int) and v >= 0 for v in sizes.values())
    assert sizes["people"] > 0
    assert sum(sizes.values()) <= store.size_bytes()


# -- the dry run's store ---------------------------------------------------------------------------
def test_the_dry_run_store_reads_the_real_one_and_writes_nothing(store):
    from connector.state import DryRunStore
    from connector.sync.changes import ChangeSet

    store.put_people({"p1": _person()})
    dry = DryRunStore(store)
    assert dry.people(["p1"]) == store.people(["p1"])
    dry.apply(ChangeSet(people={"p2": _person()}))
    dry.put_member("m1", **_member())
    dry.put_describes({"Lead": {}})
    assert dry.start_run() == 0
    assert store.people(["p2"]) == {} and store.members(["m1"]) == {} and store.describes() == {}
    assert store.recent_runs() == []
    assert dry.batches == 1 and dry.skipped == {"apply": 1, "put_member": 1, "put_describes": 1, "start_run": 1}
