"""The SQLite state store: named migrations applied once and atomically, batched writes, outcomes."""

from __future__ import annotations

import pytest
from stateutil import record_outcome

from connector.state import open_state
from connector.state.migrations import MIGRATIONS, apply_migrations


def test_migrations_apply_once_and_are_recorded(tmp_path):
    store = open_state(tmp_path / "s.db")
    names = [r["name"] for r in store.db["_migrations"].rows]
    assert names == [name for name, _ in MIGRATIONS]
    assert apply_migrations(store.db) == []          # a second start applies nothing
    store.close()
    assert open_state(tmp_path / "s.db").db["people"].exists()


def test_atomic_rolls_back_everything_on_error(tmp_path):
    store = open_state(tmp_path / "s.db")
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.put_people({"acme/event_person/1": {"sobject": "Lead", "sf_id": "00Q", "rung": "create",
                                                      "organisation_uid": None, "email": None, "record_hash": None}})
            store.put_resources([("person:acme/event_person/1", "h", "2025-01-01T00:00:00+00:00")])
            raise RuntimeError("crash between the writes")
    assert store.people(["acme/event_person/1"]) == {}
    assert store.resources(["person:acme/event_person/1"]) == {}


def test_outcomes_count_attempts_and_keep_only_quarantined_bodies(tmp_path):
    store = open_state(tmp_path / "s.db")
    record_outcome(store, "m1", outcome="quarantined", reason="bad", body="{\"x\": \"ยินดี\"}")
    record_outcome(store, "m1", outcome="quarantined", reason="still bad", body="{\"x\": \"ยินดี\"}")
    [row] = store.quarantined()
    assert (row["attempts"], row["reason"], row["body"]) == (2, "still bad", "{\"x\": \"ยินดี\"}")
    record_outcome(store, "m1", outcome="synced")
    assert store.quarantined() == [] and store.outcome_counts() == {"synced": 1}
    assert list(store.db.query("select body from messages"))[0]["body"] is None


def test_members_round_trip_category_ids(tmp_path):
    store = open_state(tmp_path / "s.db")
    store.put_members({"k1": {"event_id": "e", "campaign_id": "701", "cm_id": "00v", "person_key": "p",
                              "person_sf_id": "00Q", "status": "Attended", "status_at": "t",
                              "category_ids": ["acme/category/9"], "categories_text": "VIP", "record_hash": "h"}})
    assert store.members(["k1"])["k1"]["category_ids"] == ["acme/category/9"]
    assert [m["member_key"] for m in store.members_of_event("e")] == ["k1"]


def test_the_sqlite_store_implements_the_port(tmp_path):
    import inspect

    from connector.state import SqliteStateStore, StateStore

    wanted = {n for n, _ in inspect.getmembers(StateStore, inspect.isfunction) if not n.startswith("_")}
    missing = {n for n in wanted if not callable(getattr(SqliteStateStore, n, None))}
    assert not missing
    for name in wanted:     # same parameter names, so callers can use keywords against any backend
        want = list(inspect.signature(getattr(StateStore, name)).parameters)
        have = list(inspect.signature(getattr(SqliteStateStore, name)).parameters)
        assert want == have, name
