"""Issue 18, SQLite 011 / PostgreSQL 008: a store made by the previous schema (SQLite 010,
PostgreSQL 007) with rows in it upgrades in place. Every row reads back the same, but for what
011 / 008 change on purpose: hashes read back as their first 128 bits, which is what
connector.payloads.stable_hash makes of the same content now (so nothing already applied looks
changed), and the columns nothing read (email, status_at, the stores' own write times) are gone."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone

import psycopg
import pytest
import sqlite_utils
from pgtest import fresh_schema_url

import connector.state.migrations as sqlite_migrations
import connector.state.pg_migrations as pg_migrations
from connector.payloads import Message, stable_hash
from connector.state import open_state
from connector.state import rows as R

MAPPING_VERSION = "mapping-v1"
CONTENT = {"resource_type": "person", "identifiers": {"id": "acme/event_person/1", "email": "ä@example.com"}}
CONTENT_FULL = Message("k", "person", "acme/event_person/1", datetime(2025, 9, 10, tzinfo=timezone.utc), CONTENT,
                       "acme/event/1").content_hash


def _old_hash(value: object) -> str:
    """What stable_hash made before 011: the full sha256 of the same JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


VERSION = _old_hash([CONTENT_FULL, MAPPING_VERSION])        # a resource's stored version (engine._dedupe)
PERSON = {"person": _old_hash({"o": "Lead", "id": "00Q000000000001AAA", "LastName": "Ünal"})}
MEMBER = _old_hash(["701000000000001AAA", "00Q000000000001AAA", {"Status": "Attended"}])
T = 1757491201000001                        # 2025-09-10T08:00:01.000001Z in microseconds
STAMP = 1796569499

PEOPLE = [("acme/event_person/1", "Lead", "00Q000000000001AAA", "create", None, "ä@example.com",
           json.dumps(PERSON, sort_keys=True), STAMP),
          ("acme/event_person/2", "Contact", "003000000000002AAA", "email", "u2", None, "not-a-hash", STAMP)]
MEMBERS = [("acme/event_person/1", "acme/event/1", "701000000000001AAA", "00v000000000001AAA", None,
            "00Q000000000001AAA", "Attended", T, '["acme/category/7"]', "VIP ยินดี", MEMBER, STAMP),
           ("acme/session_participation/9", "acme/event/1", "701000000000009AAA", None, "acme/event_person/2",
            "003000000000002AAA", "Registered", T, "[]", "", None, STAMP),
           ("acme/event_person/3", "acme/event/2", "701000000000002AAA", "00v000000000003AAA", None,
            "00Q000000000001AAA", "Cancelled", None, "[]", None, MEMBER, STAMP)]
RESOURCES = [("person:acme/event_person/1", VERSION, T, STAMP), ("event:acme/event/1", "h-text", None, STAMP)]
JOURNAL = [("00Q000000000001AAA", "Lead", {"Email": "ä@example.com", "LastName": "Ünal", "Phone": None}),
           ("701000000000001AAA", "Campaign", {"IsActive": True, "Name": "[Summit] 김민준", "NumberSent": 3}),
           ("00v000000000001AAA", "CampaignMember", {"Checked_In__c": "2025-09-10T23:04:49.880Z"})]


def _hash_as_010_stored(text: str | None) -> bytes | None:
    return R.hash_in(text)      # unchanged for sha256 hex and per-source sha256s (tags 1 and 2)


def _expected(store) -> None:
    people = store.people([p[0] for p in PEOPLE])
    assert {k: (r["sobject"], r["sf_id"], r["rung"], r["organisation_uid"], r["record_hash"])
            for k, r in people.items()} == {
        "acme/event_person/1": ("Lead", "00Q000000000001AAA", "create", None,
                                json.dumps({"person": PERSON["person"][:32]})),
        "acme/event_person/2": ("Contact", "003000000000002AAA", "email", "u2", "not-a-hash")}
    assert all(set(r) == set(R.COLUMNS["people"]) for r in people.values())
    members = store.members([m[0] for m in MEMBERS])
    want = {m[0]: {"member_key": m[0], "event_id": m[1], "campaign_id": m[2], "cm_id": m[3],
                   "person_key": m[4] or m[0], "person_sf_id": m[5], "status": m[6],
                   "category_ids": json.loads(m[8]), "categories_text": m[9],
                   "record_hash": m[10][:32] if m[10] else None} for m in MEMBERS}
    assert members == want
    assert [m["member_key"] for m in store.members_of_event("acme/event/1")] == ["acme/event_person/1"]
    by_event = store.all_members_of_events(["acme/event/1", "acme/event/2", "acme/event/none"])
    assert {e: [m["member_key"] for m in rows] for e, rows in by_event.items()} == {
        "acme/event/1": ["acme/event_person/1", "acme/session_participation/9"],
        "acme/event/2": ["acme/event_person/3"], "acme/event/none": []}
    resources = store.resources([r[0] for r in RESOURCES])
    assert {k: (r["content_hash"], r["generated_at"]) for k, r in resources.items()} == {
        "person:acme/event_person/1": (VERSION[:32], "2025-09-10T08:00:01.000001+00:00"),
        "event:acme/event/1": ("h-text", None)}
    # What the engine computes for the same message now equals what the upgraded store holds.
    assert stable_hash([CONTENT_FULL, MAPPING_VERSION]) == resources["person:acme/event_person/1"]["content_hash"]
    assert stable_hash(["701000000000001AAA", "00Q000000000001AAA", {"Status": "Attended"}]) \
        == members["acme/event_person/1"]["record_hash"]
    journal = store.written([j[0] for j in JOURNAL])
    assert {k: (r["sobject"], r["fields"]) for k, r in journal.items()} == {j[0]: (j[1], j[2]) for j in JOURNAL}
    # The journal still merges after the upgrade.
    store.put_written([("00Q000000000001AAA", "Lead", {"Phone": "+61 400", "Email": None})])
    assert store.written(["00Q000000000001AAA"])["00Q000000000001AAA"]["fields"] == {
        "Email": None, "LastName": "Ünal", "Phone": "+61 400"}


def test_a_sqlite_store_of_migration_010_upgrades_and_reads_the_same(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    names = [n for n, _ in sqlite_migrations.MIGRATIONS]
    monkeypatch.setattr(sqlite_migrations, "MIGRATIONS",
                        sqlite_migrations.MIGRATIONS[:names.index("010_journal_without_member_row") + 1])
    sqlite_migrations.apply_migrations(db)
    db.conn.executemany("insert into people values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(*p[:6], _hash_as_010_stored(p[6]), p[7]) for p in PEOPLE])
    db.conn.executemany("insert into members values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(*m[:10], _hash_as_010_stored(m[10]), m[11]) for m in MEMBERS])
    db.conn.executemany("insert into resources values (?, ?, ?, ?)",
                        [(r[0], _hash_as_010_stored(r[1]), r[2], r[3]) for r in RESOURCES])
    for sf_id, sobject, fields in JOURNAL:      # 006's layout: names once per shape, values as a JSON array
        keys = json.dumps(sorted(fields), separators=(",", ":"))
        db.execute("insert or ignore into written_shapes (sobject, keys) values (?, ?)", [sobject, keys])
        [(shape,)] = db.execute("select id from written_shapes where sobject = ? and keys = ?", [sobject, keys])
        db.execute("insert into written values (?, ?, ?, ?)",
                   [sf_id, shape, json.dumps([fields[k] for k in sorted(fields)], ensure_ascii=False), STAMP])
    assert db.execute("select count(*) from sqlite_master where name = 'idx_members_event_id'").fetchone() == (1,)
    db.conn.close()
    monkeypatch.undo()

    store = open_state(path)
    try:
        assert [r["name"] for r in store.db["_migrations"].rows][-1] == "011_rows_kept_smaller"
        _expected(store)
        assert store.db.execute("select count(*) from sqlite_master where name = 'idx_members_event_id'"
                                ).fetchone() == (0,)
        cols = {t: [c.name for c in store.db[t].columns] for t in ("people", "members", "resources", "written")}
        assert "email" not in cols["people"] and "status_at" not in cols["members"]
        assert "applied_at" not in cols["resources"] and "written_at" not in cols["written"]
    finally:
        store.close()


def test_a_postgres_store_of_migration_007_upgrades_and_reads_the_same(monkeypatch):
    with fresh_schema_url() as url:
        names = [n for n, _ in pg_migrations.MIGRATIONS]
        monkeypatch.setattr(pg_migrations, "MIGRATIONS",
                            pg_migrations.MIGRATIONS[:names.index("007_journal_without_member_row") + 1])
        with psycopg.connect(url, autocommit=True) as conn:
            pg_migrations.apply_migrations(conn)
            with conn.cursor() as cur:
                # 006 left a person's per-source hashes as JSON text (0x00 and the text): both forms.
                cur.executemany("insert into people values (%s, %s, %s, %s, %s, %s, %s, %s)",
                                [(*p[:6], b"\x00" + p[6].encode() if i == 0 else _hash_as_010_stored(p[6]), p[7])
                                 for i, p in enumerate(PEOPLE)])
                cur.executemany("insert into members values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                                [(*m[:10], _hash_as_010_stored(m[10]), m[11]) for m in MEMBERS])
                cur.executemany("insert into resources values (%s, %s, %s, %s)",
                                [(r[0], _hash_as_010_stored(r[1]), r[2], r[3]) for r in RESOURCES])
                cur.executemany("insert into written values (%s, %s, %s, %s)",
                                [(k, o, json.dumps(f, ensure_ascii=False), STAMP) for k, o, f in JOURNAL])
        monkeypatch.undo()
        store = open_state(url)
        try:
            _expected(store)
            cols = {(r["table_name"], r["column_name"]) for r in store._query(
                "select table_name, column_name from information_schema.columns where table_schema = current_schema()")}
            assert not {("people", "email"), ("members", "status_at"), ("resources", "applied_at"),
                        ("written", "written_at"), ("people", "updated_at")} & cols
        finally:
            store.close()


@pytest.mark.parametrize("values", [
    ["a@example.com", "Ünal", None], [None], [""], ["", ""], ["[not provided]", "x"], ["x", "[y]"],
    [True, "x"], [3, None], ["a\x1fb"], ["\x1e"], ["x\x1e"], ["2025-09-10T23:04:49.880Z"], [{"a": 1}]])
def test_journal_values_pack_and_read_back_the_same(values):
    stored = R.pack(values)
    assert R.unpack(stored, len(values)) == values


def test_packed_values_are_smaller_than_json_for_text():
    values = ["Acme Corp", "size.0@example.com", "Jane", "Size0", None, "Marketing Manager"]
    assert len(R.pack(values)) < len(json.dumps(values, separators=(",", ":"))) - 10


def test_stable_hash_is_128_bits_of_the_sha256_it_was():
    obj = {"b": [1, "ä"], "a": None}
    assert stable_hash(obj) == _old_hash(obj)[:32] and len(stable_hash(obj)) == 32
    assert len(CONTENT_FULL) == 64     # the content hash the stored version hashes stays the full sha256


@pytest.mark.parametrize("old,new", [
    (_old_hash(1), _old_hash(1)[:32]),
    (json.dumps({"person": _old_hash(1), "lead": _old_hash(2)}, sort_keys=True),
     json.dumps({"person": _old_hash(1)[:32], "lead": _old_hash(2)[:32]}, sort_keys=True)),
    ("h", "h"), ("abcd" * 8, "abcd" * 8), (json.dumps({"a": 1}), json.dumps({"a": 1}))])
def test_short_hash_keeps_128_bits_of_a_sha256_and_anything_else_as_it_was(old, new):
    assert R.hash_out(R.short_hash(R.hash_in(old))) == new
    assert R.hash_out(R.short_hash(b"\x00" + old.encode())) == new      # PostgreSQL's older text form
