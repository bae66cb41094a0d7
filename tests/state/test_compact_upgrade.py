"""Issue 18: a store made by the schema before the compact columns (SQLite 008, PostgreSQL 005)
upgrades in place: every row reads back as it did, and is stored smaller (hashes as bytes,
times as integers, a member's own key not twice, a member's journal without its member row).
Since SQLite 011 / PostgreSQL 008 a hash reads back as its first 128 bits (what stable_hash
makes of the same content now) and the columns nothing read are gone."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import psycopg
import pytest
import sqlite_utils
from pgtest import fresh_schema_url

import connector.state.migrations as sqlite_migrations
import connector.state.pg_migrations as pg_migrations
from connector.state import open_state

H1 = hashlib.sha256(b"one").hexdigest()
H2 = hashlib.sha256(b"two").hexdigest()
PERSON_HASH = json.dumps({"person": H1}, sort_keys=True)      # as connector/sync/people.py writes it
T1 = "2025-09-10T08:00:01+00:00"
T2 = "2026-12-06T13:32:07.652+00:00"
T3 = "2025-09-10T08:00:01.000001+00:00"
# What 011 / 008 keep of a sha256: its first 128 bits (connector.payloads.stable_hash).
S1, S2 = H1[:32], H2[:32]

PEOPLE = [("acme/event_person/1", "Lead", "00Q000000000001AAA", "create", "", "a@example.com", PERSON_HASH, T2),
          ("acme/event_person/2", "Contact", "003000000000002AAA", "email", "u2", "b@example.com", "h-not-hex", T2)]
MEMBERS = [("acme/event_person/1", "acme/event/1", "701000000000001AAA", "00v000000000001AAA", "acme/event_person/1",
            "00Q000000000001AAA", "Attended", T3, '["acme/category/7"]', "VIP", H2, T2),
           ("acme/session_participation/9", "acme/event/1", "701000000000009AAA", None, None,
            "00Q000000000001AAA", "Registered", T1, "[]", "", None, T2)]
RESOURCES = [("person:acme/event_person/1", H1, T3, T2), ("event:acme/event/1", H2, T1, T2)]
JOURNAL = [("00v000000000001AAA", "CampaignMember",
            {"CampaignId": "701000000000001AAA", "LeadId": "00Q000000000001AAA", "Status": "Attended",
             "Checked_In__c": T1}),
           ("00Q000000000001AAA", "Lead", {"Email": "a@example.com", "LastName": "Ünal"})]


def _expected(store):
    people = store.people([p[0] for p in PEOPLE])
    assert {k: (r["sf_id"], r["organisation_uid"], r["record_hash"]) for k, r in people.items()} == {
        "acme/event_person/1": (PEOPLE[0][2], PEOPLE[0][4], json.dumps({"person": S1})),
        "acme/event_person/2": (PEOPLE[1][2], PEOPLE[1][4], "h-not-hex")}
    assert not {"email", "updated_at"} & {c for r in people.values() for c in r}
    members = store.members([m[0] for m in MEMBERS])
    assert {k: (r["person_key"], r["record_hash"], r["category_ids"], r["status"]) for k, r in members.items()} == {
        "acme/event_person/1": ("acme/event_person/1", S2, ["acme/category/7"], "Attended"),
        "acme/session_participation/9": (None, None, [], "Registered")}
    assert [m["member_key"] for m in store.members_of_event("acme/event/1")] == ["acme/event_person/1"]
    assert {k: (r["content_hash"], r["generated_at"]) for k, r in store.resources([r[0] for r in RESOURCES]).items()} \
        == {r[0]: (r[1][:32], r[2]) for r in RESOURCES}
    journal = store.written([j[0] for j in JOURNAL])
    assert journal["00v000000000001AAA"]["fields"] == {"Checked_In__c": T1}
    assert journal["00Q000000000001AAA"]["fields"] == JOURNAL[1][2]
    # An older version still never replaces a newer one (generated_at compared as a number now).
    store.put_resources([("person:acme/event_person/1", H2, T1)])
    assert store.resources(["person:acme/event_person/1"])["person:acme/event_person/1"]["content_hash"] == S1


def test_a_sqlite_store_of_migration_008_upgrades_reads_the_same_and_stores_less(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    names = [n for n, _ in sqlite_migrations.MIGRATIONS]
    before = sqlite_migrations.MIGRATIONS[:names.index("008_import_ledger") + 1]
    monkeypatch.setattr(sqlite_migrations, "MIGRATIONS", before)
    sqlite_migrations.apply_migrations(db)
    db.conn.executemany("insert into people values (?, ?, ?, ?, ?, ?, ?, ?)", PEOPLE)
    db.conn.executemany("insert into members values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", MEMBERS)
    db.conn.executemany("insert into resources values (?, ?, ?, ?)", RESOURCES)
    for sf_id, sobject, fields in JOURNAL:      # 006's layout: names once per shape, values as an array
        keys = json.dumps(sorted(fields), separators=(",", ":"))
        db.execute("insert or ignore into written_shapes (sobject, keys) values (?, ?)", [sobject, keys])
        [(shape,)] = db.execute("select id from written_shapes where sobject = ? and keys = ?", [sobject, keys])
        db.execute("insert into written values (?, ?, ?, ?)",
                   [sf_id, shape, json.dumps([fields[k] for k in sorted(fields)], ensure_ascii=False), T2])
    db.conn.close()
    monkeypatch.undo()

    store = open_state(path)
    _expected(store)
    raw = store.db.execute("select typeof(record_hash), length(record_hash) from people"
                           " where jomablue_id = 'acme/event_person/1'").fetchone()
    assert raw == ("blob", 1 + 16)      # the one per-source hash of a person named by `person` messages
    assert store.db.execute("select person_key, length(record_hash) from members"
                            " where member_key = 'acme/event_person/1'").fetchone() == (None, 17)
    assert store.db.execute("select typeof(content_hash), typeof(generated_at), length(content_hash) from resources"
                            " limit 1").fetchone() == ("blob", "integer", 17)
    assert store.db.execute("select vals from written where sf_id = '00Q000000000001AAA'").fetchone() == (
        "a@example.com\x1fÜnal",)
    assert {i.name for i in store.db["members"].indexes if not i.name.startswith("sqlite_")} == set()
    store.close()


def test_a_postgres_store_of_migration_005_upgrades_and_reads_the_same(monkeypatch):
    with fresh_schema_url() as url:
        names = [n for n, _ in pg_migrations.MIGRATIONS]
        before = pg_migrations.MIGRATIONS[:names.index("005_import_ledger") + 1]
        monkeypatch.setattr(pg_migrations, "MIGRATIONS", before)
        with psycopg.connect(url, autocommit=True) as conn:
            pg_migrations.apply_migrations(conn)
            with conn.cursor() as cur:
                cur.executemany("insert into people values (%s, %s, %s, %s, %s, %s, %s, %s)", PEOPLE)
                cur.executemany("insert into members values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", MEMBERS)
                cur.executemany("insert into resources values (%s, %s, %s, %s)", RESOURCES)
                cur.executemany("insert into written values (%s, %s, %s, %s)",
                                [(k, o, json.dumps(f, ensure_ascii=False), T2) for k, o, f in JOURNAL])
        monkeypatch.undo()
        store = open_state(url)
        try:
            _expected(store)
            types = {(r["table_name"], r["column_name"]): r["data_type"] for r in store._query(
                "select table_name, column_name, data_type from information_schema.columns"
                " where table_schema = current_schema() and table_name in ('people', 'members', 'resources')")}
            assert types[("members", "record_hash")] == "bytea" and types[("resources", "generated_at")] == "bigint"
            assert store._query("select person_key from members where member_key = 'acme/event_person/1'") == [
                {"person_key": None}]
        finally:
            store.close()


def test_a_resource_whose_stored_time_was_no_time_takes_the_next_version(store):
    store.put_resources([("person:a", H1, "not a time")])
    assert store.resources(["person:a"])["person:a"]["generated_at"] is None
    store.put_resources([("person:a", H2, T1)])
    assert store.resources(["person:a"])["person:a"]["content_hash"] == H2


@pytest.mark.parametrize("value", [H1, PERSON_HASH, "h", "", json.dumps({"a": 1}), json.dumps({"b": H1, "a": H2})])
def test_a_hash_reads_back_as_it_was_written(value):
    from connector.state import rows as R

    assert R.hash_out(R.hash_in(value)) == value
