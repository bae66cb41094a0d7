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
    # No index on event_id since 011 (issue 18): an event's members are read by a scan.
    assert {i.name for i in store.db["members"].indexes if not i.name.startswith("sqlite_")} == set()
    assert store.db.execute("select sql from sqlite_master where name = 'messages'").fetchone()[0].rstrip().endswith(
        "without rowid")


def test_the_write_journal_of_release_005_becomes_compact_and_reads_the_same(tmp_path):
    from connector.state.migrations import apply_migrations

    path = tmp_path / "s.db"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    first_five = MIGRATIONS[:5]
    assert [n for n, _ in first_five][-1] == "005_console"
    import connector.state.migrations as M

    all_of_them, M.MIGRATIONS = M.MIGRATIONS, first_five
    try:
        apply_migrations(db)
    finally:
        M.MIGRATIONS = all_of_them
    lead = {"Email": "ä@example.com", "LastName": "Ünal", "Phone": None}
    db.execute("insert into written values (?, ?, ?, ?)", ["00Q1", "Lead", '{"Email": "ä@example.com", '
                                                           '"LastName": "Ünal", "Phone": null}', "t1"])
    db.execute("insert into written values (?, ?, ?, ?)",
               ["00Q2", "Lead", '{"LastName": "B", "Email": "b@x", "Phone": null}', "t2"])
    db.execute("insert into written values (?, ?, ?, ?)",
               ["00v1", "CampaignMember", '{"Status": "Attended", "Checked_In__c": "x"}', "t3"])
    db.execute("insert into written values (?, ?, ?, ?)", ["00v2", "CampaignMember", '{"Status": "Attended"}', "t4"])
    db.conn.close()

    store = open_state(path)
    got = store.written(["00Q1", "00Q2", "00v1", "00v2"])
    # written_at is not kept since 011 (nothing read it).
    assert got["00Q1"] == {"sf_id": "00Q1", "sobject": "Lead", "fields": lead}
    assert got["00Q2"]["fields"] == {"Email": "b@x", "LastName": "B", "Phone": None}
    # A member's journal no longer repeats its member row (010): what is left stays, nothing left, no row.
    assert got["00v1"]["fields"] == {"Checked_In__c": "x"} and got["00v1"]["sobject"] == "CampaignMember"
    assert "00v2" not in got
    # Two Leads with the same field names share one shape: the names are stored once, not per record.
    assert store._query("select count(distinct shape) as n from written where sf_id like '00Q%'")[0]["n"] == 1
    store.put_written([("00Q2", "Lead", {"Phone": "+61", "Title": "CTO"})])   # merges as before
    expected = {"Email": "b@x", "LastName": "B", "Phone": "+61", "Title": "CTO"}
    assert store.written(["00Q2"])["00Q2"]["fields"] == expected
    assert store.written(["00Q1"])["00Q1"]["fields"] == lead
