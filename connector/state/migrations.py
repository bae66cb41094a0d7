"""Named schema migrations, each applied in one transaction with its bookkeeping row.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("messages").create(
        {
            "message_key": str, "sqs_message_id": str, "resource_type": str, "resource_id": str,
            "event_id": str, "outcome": str, "reason": str, "field": str, "body": str,
            "detail": str, "attempts": int, "first_seen": str, "last_seen": str,
        },
        pk="message_key",
    )
    db.table("messages").create_index(["outcome"])
    db.table("resources").create(
        {"resource_key": str, "content_hash": str, "generated_at": str, "applied_at": str},
        pk="resource_key",
    )
    db.table("people").create(
        {"jomablue_id": str, "sobject": str, "sf_id": str, "rung": str, "organisation_uid": str,
         "email": str, "record_hash": str, "updated_at": str},
        pk="jomablue_id",
    )
    db.table("events").create(
        {"event_id": str, "campaign_id": str, "name": str, "timezone": str, "metadata": str,
         "metadata_at": str, "is_placeholder": int, "updated_at": str},
        pk="event_id",
    )
    db.table("categories").create(
        {"event_id": str, "category_id": str, "name": str}, pk=("event_id", "category_id")
    )
    db.table("members").create(
        {"member_key": str, "event_id": str, "campaign_id": str, "cm_id": str, "person_key": str,
         "person_sf_id": str, "status": str, "status_at": str, "category_ids": str,
         "categories_text": str, "record_hash": str, "updated_at": str},
        pk="member_key",
    )
    db.table("members").create_index(["event_id"])
    db.table("members").create_index(["person_key"])
    db.table("sessions").create(
        {"session_id": str, "event_id": str, "campaign_id": str, "updated_at": str}, pk="session_id"
    )
    db.table("records").create(
        {"jomablue_id": str, "sobject": str, "sf_id": str, "updated_at": str}, pk="jomablue_id"
    )
    db.table("campaign_statuses").create({"campaign_id": str, "label": str}, pk=("campaign_id", "label"))
    db.table("runs").create(
        {"id": int, "started_at": str, "finished_at": str, "exit_code": int, "summary": str},
        pk="id",
    )
    db.table("api_usage").create({"id": int, "used": int, "max": int, "seen_at": str}, pk="id")


def m002_small_outcomes(db: sqlite_utils.Database) -> None:
    """The outcome log keeps only what dedupe, replay and reports need (issue 13, item 5).

    A WITHOUT ROWID table stores each message key once (a rowid table plus its primary-key index
    stored it twice), and the only index left is a partial one over quarantined messages, the
    rows that are listed and replayed; counts and pruning scan the table. Bodies, SQS ids and
    details of messages no longer quarantined are dropped (rows.outcome_row keeps them so).
    """
    db.execute("""
        create table messages_new (
            message_key text primary key, sqs_message_id text, resource_type text, resource_id text,
            event_id text, outcome text, reason text, field text, body text, detail text,
            attempts integer, first_seen text, last_seen text
        ) without rowid""")
    db.execute("""
        insert into messages_new
        select message_key,
               case when outcome = 'quarantined' then sqs_message_id end,
               resource_type, resource_id, event_id, outcome, reason, field,
               case when outcome = 'quarantined' then body end,
               case when outcome in ('quarantined', 'retry') then detail end,
               attempts, first_seen, last_seen
        from messages""")
    db.execute("drop table messages")
    db.execute("alter table messages_new rename to messages")
    db.execute("create index messages_quarantined on messages (first_seen) where outcome = 'quarantined'")


def m003_keys_stored_once(db: sqlite_utils.Database) -> None:
    """Resources, people and members become WITHOUT ROWID tables: each key is stored once, in the
    table's own b-tree, instead of once in the rowid table and again in its primary-key index
    (about 100 bytes less per person synced; the links are kept for ever, unlike outcomes)."""
    tables = {
        "resources": ("resource_key text primary key, content_hash text, generated_at text, applied_at text", []),
        "people": ("jomablue_id text primary key, sobject text, sf_id text, rung text, organisation_uid text, "
                   "email text, record_hash text, updated_at text", []),
        "members": ("member_key text primary key, event_id text, campaign_id text, cm_id text, person_key text, "
                    "person_sf_id text, status text, status_at text, category_ids text, categories_text text, "
                    "record_hash text, updated_at text",
                    ["create index idx_members_event_id on members (event_id)",
                     "create index idx_members_person_key on members (person_key)"]),
    }
    for table, (columns, indexes) in tables.items():
        names = ", ".join(c.split()[0] for c in columns.split(", "))
        db.execute(f"create table {table}_new ({columns}) without rowid")
        db.execute(f"insert into {table}_new ({names}) select {names} from {table}")
        db.execute(f"drop table {table}")
        db.execute(f"alter table {table}_new rename to {table}")
        for ddl in indexes:
            db.execute(ddl)


def m004_describe_cache(db: sqlite_utils.Database) -> None:
    # The org's describes preflight checks the mapping against (connector/preflight.py).
    db.table("describe_cache").create({"sobject": str, "describe": str, "fetched_at": str}, pk="sobject")


def m005_console(db: sqlite_utils.Database) -> None:
    """The operator's console (issue 10): what the connector last wrote to each record (for
    reconcile), quarantine reason history, an audit row per dropped message, small settings."""
    db.table("written").create(
        {"sf_id": str, "sobject": str, "fields": str, "written_at": str}, pk="sf_id"
    )
    db.table("messages").add_column("reasons", str)
    db.table("dropped_messages").create(
        {"message_key": str, "resource_type": str, "resource_id": str, "event_id": str,
         "quarantine_reason": str, "field": str, "body_sha256": str, "attempts": int,
         "first_seen": str, "dropped_by": str, "dropped_reason": str, "dropped_at": str},
        pk="message_key",
    )
    db.table("settings").create({"name": str, "value": str}, pk="name")


def m006_compact_journal(db: sqlite_utils.Database) -> None:
    """The write journal (issue 18: the store's largest kind of row, two per person) stores each
    record's field names once per shape, not once per record: `written_shapes` holds each
    (sobject, sorted field names) once, and a record keeps its shape's id and its values as a JSON
    array. WITHOUT ROWID: the record id is stored once (no rowid table plus primary-key index)."""
    import json

    db.execute("create table written_shapes (id integer primary key, sobject text not null, keys text not null,"
               " unique (sobject, keys))")
    db.execute("create table written_new (sf_id text primary key, shape integer not null, vals text not null,"
               " written_at text) without rowid")
    shapes: dict[tuple[str, str], int] = {}
    rows = list(db.execute("select sf_id, sobject, fields, written_at from written"))
    for sf_id, sobject, fields, written_at in rows:
        values = json.loads(fields) if fields else {}
        keys = json.dumps(sorted(values), ensure_ascii=False, separators=(",", ":"))
        if (sobject, keys) not in shapes:
            shapes[(sobject, keys)] = db.execute(
                "insert into written_shapes (sobject, keys) values (?, ?)", [sobject, keys]).lastrowid or 0
        db.execute("insert into written_new (sf_id, shape, vals, written_at) values (?, ?, ?, ?)",
                   [sf_id, shapes[(sobject, keys)], json.dumps([values[k] for k in sorted(values)],
                                                               ensure_ascii=False, separators=(",", ":")), written_at])
    db.execute("drop table written")
    db.execute("alter table written_new rename to written")


def m007_no_person_key_index(db: sqlite_utils.Database) -> None:
    # No statement looks members up by person_key: its index cost ~57 bytes per member (issue 18).
    db.execute("drop index if exists idx_members_person_key")


def m008_import_ledger(db: sqlite_utils.Database) -> None:
    """`connector import` (issue 20): the archive objects an import finished, so a second run
    resumes where the first stopped. `scope` is the run's filters and mapping version."""
    db.table("imported_objects").create({"object_uri": str, "scope": str, "lines": int, "finished_at": str},
                                        pk=("object_uri", "scope"))


_COMPACT_TABLES = {
    "people": "jomablue_id text primary key, sobject text, sf_id text, rung text, organisation_uid text,"
              " email text, record_hash blob, updated_at integer",
    "members": "member_key text primary key, event_id text, campaign_id text, cm_id text, person_key text,"
               " person_sf_id text, status text, status_at integer, category_ids text, categories_text text,"
               " record_hash blob, updated_at integer",
    "resources": "resource_key text primary key, content_hash blob, generated_at integer, applied_at integer",
    "written": "sf_id text primary key, shape integer not null, vals text not null, written_at integer",
}


def m009_compact_columns(db: sqlite_utils.Database) -> None:
    """The rows kept per synced person, smaller (issue 18; connector/state/rows.py reads them
    back as before): hashes as bytes instead of hex text (BLOB columns), times as integer
    microseconds instead of ISO text (INTEGER columns: a TEXT column would turn them back into
    text), and a member's person_key left out when it is the member's own key."""
    from connector.state import rows as R

    for table, columns in _COMPACT_TABLES.items():
        cols = [c.split()[0] for c in columns.split(", ")]
        db.execute(f"create table {table}_new ({columns}) without rowid")
        rows = db.execute(f"select {', '.join(cols)} from {table}")
        # rows.compact no longer converts (it leaves out) the columns 011 drops: they keep their
        # old text until 011 drops them.
        olds = (dict(zip(cols, row, strict=True)) for row in rows)
        db.conn.executemany(
            f"insert into {table}_new ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
            ([new.get(c, old[c]) for c in cols] for old, new in ((o, R.compact(table, o)) for o in olds)))
        db.execute(f"drop table {table}")
        db.execute(f"alter table {table}_new rename to {table}")
    db.execute("create index idx_members_event_id on members (event_id)")


def m010_journal_without_member_row(db: sqlite_utils.Database) -> None:
    """A CampaignMember's journal row no longer repeats what its member row holds (its Campaign,
    person and status: connector/reconcile/journal.py); rows left with nothing go."""
    import json

    member_row = {"CampaignId", "LeadId", "ContactId", "Status"}   # as journal.MEMBER_ROW_FIELDS was then
    shapes = {(sobject, keys): i for i, sobject, keys in db.execute("select id, sobject, keys from written_shapes")}
    for (sobject, keys), shape in list(shapes.items()):
        names = json.loads(keys)
        if sobject != "CampaignMember" or not member_row & set(names):
            continue
        kept = [n for n in names if n not in member_row]
        if not kept:
            db.execute("delete from written where shape = ?", [shape])
            continue
        new_keys = json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
        if (sobject, new_keys) not in shapes:
            shapes[(sobject, new_keys)] = db.execute(
                "insert into written_shapes (sobject, keys) values (?, ?)", [sobject, new_keys]).lastrowid or 0
        rows = db.execute("select sf_id, vals from written where shape = ?", [shape]).fetchall()
        db.conn.executemany("update written set shape = ?, vals = ? where sf_id = ?", [
            (shapes[(sobject, new_keys)],
             json.dumps([v for n, v in zip(names, json.loads(vals), strict=True) if n not in member_row],
                        ensure_ascii=False, separators=(",", ":")), sf_id) for sf_id, vals in rows])


_SMALLER_TABLES = {
    "people": "jomablue_id text primary key, sobject text, sf_id text, rung text, organisation_uid text,"
              " record_hash blob",
    "members": "member_key text primary key, event_id text, campaign_id text, cm_id text, person_key text,"
               " person_sf_id text, status text, category_ids text, categories_text text, record_hash blob",
    "resources": "resource_key text primary key, content_hash blob, generated_at integer",
    "written": "sf_id text primary key, shape integer not null, vals text not null",
}


def m011_rows_kept_smaller(db: sqlite_utils.Database) -> None:
    """The rows kept per synced person, smaller again (issue 18: at most 500 bytes a person):

    - hashes cut to 128 bits (16 bytes; connector.payloads.stable_hash makes them so now, and a
      sha256 cut here equals what it makes of the same content: nothing looks changed);
    - columns nothing read go: a person's email, a member's status time, and when the store
      wrote each person's, member's, resource's and journal row;
    - the journal's values as texts joined by a separator instead of a JSON array (rows.pack);
    - no index on members.event_id (~46 bytes a member): the event's members are read by a scan
      of the members table, rare (a category renamed, reconcile) and about 0.13 s a million.
    """
    import json

    from connector.state import rows as R

    convert: dict[str, dict[str, Callable[[Any], Any]]] = {
        "people": {"record_hash": R.short_hash}, "members": {"record_hash": R.short_hash},
        "resources": {"content_hash": R.short_hash},
        "written": {"vals": lambda v: R.pack(json.loads(v)) if v.startswith("[") else v}}
    for table, columns in _SMALLER_TABLES.items():
        cols = [c.split()[0] for c in columns.split(", ")]
        db.execute(f"create table {table}_new ({columns}) without rowid")
        rows = db.execute(f"select {', '.join(cols)} from {table}")
        fns = [convert[table].get(c) for c in cols]
        db.conn.executemany(
            f"insert into {table}_new ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
            ([fn(v) if fn else v for fn, v in zip(fns, row, strict=True)] for row in rows))
        db.execute(f"drop table {table}")          # and idx_members_event_id with it
        db.execute(f"alter table {table}_new rename to {table}")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_initial", m001_initial),
    ("002_small_outcomes", m002_small_outcomes),
    ("003_keys_stored_once", m003_keys_stored_once),
    ("004_describe_cache", m004_describe_cache),
    ("005_console", m005_console),
    ("006_compact_journal", m006_compact_journal),
    ("007_no_person_key_index", m007_no_person_key_index),
    ("008_import_ledger", m008_import_ledger),
    ("009_compact_columns", m009_compact_columns),
    ("010_journal_without_member_row", m010_journal_without_member_row),
    ("011_rows_kept_smaller", m011_rows_kept_smaller),
]


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; return the names applied.

    The connection is in autocommit mode (isolation_level=None), so BEGIN/COMMIT here make
    each migration's DDL and its bookkeeping row one transaction: a crash leaves either both
    or neither. Each transaction takes the write lock (BEGIN IMMEDIATE) *before* it reads what
    has been applied, so two processes starting on a new file take turns: the second waits
    (busy_timeout), then sees the first one's work and skips it.
    """
    applied: list[str] = []
    while True:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            db.conn.execute("create table if not exists _migrations (name text primary key, applied_at text)")
            done = {row[0] for row in db.conn.execute("select name from _migrations")}
            pending = [(name, fn) for name, fn in MIGRATIONS if name not in done]
            if pending:
                name, fn = pending[0]
                fn(db)
                db.table("_migrations").insert({"name": name, "applied_at": _now()})
            db.conn.execute("COMMIT")
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
        if not pending:
            return applied
        applied.append(name)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
