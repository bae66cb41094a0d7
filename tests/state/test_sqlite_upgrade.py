"""A SQLite store written by an earlier release upgrades in place: its rows survive, slimmed."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from connector.state import open_state
from connector.state.migrations import MIGRATIONS, m001_initial


def test_a_store_from_the_first_release_keeps_its_rows_and_drops_what_it_no_longer_needs(tmp_path):
    path = tmp_path / "s.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    m001_initial(db)
    db["_migrations"].insert({"name": "001_initial", "applied_at": "2025-01-01T00:00:00+00:00"}, pk="name")
    db["messages"].insert_all([
        {"message_key": "synced", "outcome": "synced", "body": "{}", "detail": '{"match": "email"}',
         "sqs_message_id": "s1", "attempts": 1, "first_seen": "t", "last_seen": "t"},
        {"message_key": "q", "outcome": "quarantined", "body": "{\"x\": 1}", "detail": '{"n": 1}',
         "sqs_message_id": "s2", "reason": "bad", "attempts": 3, "first_seen": "t", "last_seen": "t"},
    ])
    db["resources"].insert({"resource_key": "person:p", "content_hash": "h", "generated_at": "g", "applied_at": "a"})
    db["people"].insert({"jomablue_id": "p", "sobject": "Lead", "sf_id": "00Q", "rung": "create"})
    db["members"].insert({"member_key": "m", "event_id": "e", "cm_id": "00v", "category_ids": '["c"]'})
    db.conn.commit()
    db.conn.close()

    store = open_state(path)
    assert [r["name"] for r in store.db["_migrations"].rows] == [name for name, _ in MIGRATIONS]
    assert store.outcome_counts() == {"quarantined": 1, "synced": 1}
    [q] = store.quarantined()
    assert (q["body"], q["sqs_message_id"], q["detail"], q["attempts"]) == ('{"x": 1}', "s2", '{"n": 1}', 3)
    synced = next(store.db.query("select * from messages where message_key = 'synced'"))
    assert (synced["body"], synced["detail"], synced["sqs_message_id"]) == (None, None, None)
    assert store.resources(["person:p"])["person:p"]["content_hash"] == "h"
    assert store.people(["p"])["p"]["sf_id"] == "00Q"
    assert store.members(["m"])["m"]["category_ids"] == ["c"]
    assert {i.name for i in store.db["members"].indexes if not i.name.startswith("sqlite_")} == {"idx_members_person_key", "idx_members_event_id"}
    assert store.db.execute("select sql from sqlite_master where name = 'messages'").fetchone()[0].rstrip().endswith(
        "without rowid")
