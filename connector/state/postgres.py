"""PostgreSQL state store (`state.url: postgresql://...`): the shared store for replicas.

The same public methods, arguments and row shapes as :class:`SqliteStateStore` (the contract
tests in tests/state/ run against both), on psycopg 3 with a connection pool. What replicas add:

- :meth:`atomic` is one PostgreSQL transaction on one pooled connection, bound to the calling
  thread; every store call made inside it on that thread joins it, nested calls too.
- :meth:`put_resources` is a conditional upsert (an older generated_at never replaces a newer).
- :meth:`hold` takes session advisory locks, one per resource key, on a dedicated connection,
  so two replicas never work on the same resource at once; :meth:`release_held` drops them.
- :meth:`campaign_lock` serialises one Campaign's member writes across replicas.

Advisory lock keys hash the schema name with the key, so stores in different schemas of one
database never wait for each other. The schema comes from the URL's search_path
(`?options=-csearch_path%3Dconnector`); it is created when missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from connector.state import rows as R
from connector.state.base import ChangeSetWriter
from connector.state.pg_migrations import apply_migrations

# Exclusive for the resources a batch writes, shared for those it only reads (the events whose
# category tables its people use): a batch with an event message excludes its people's batches.
_HOLD_SQL = (
    "select k from unnest(%s::text[]) as k"
    " where pg_try_advisory_lock(hashtextextended(current_schema() || ':resource:' || k, 0))"
    " union all select k from unnest(%s::text[]) as k"
    " where pg_try_advisory_lock_shared(hashtextextended(current_schema() || ':resource:' || k, 0))"
)
_UNHOLD_SQL = (
    "select pg_advisory_unlock(hashtextextended(current_schema() || ':resource:' || k, 0))"
    " from unnest(%s::text[]) as k"
    " union all select pg_advisory_unlock_shared(hashtextextended(current_schema() || ':resource:' || k, 0))"
    " from unnest(%s::text[]) as k"
)
_CAMPAIGN_KEY = "hashtext(current_schema() || ':campaign'), hashtext(%s)"

# A message's quarantine reason history (rows.reason_history), carried on in SQL like attempts:
# a quarantine whose (reason, field) differs from the last entry appends its one-entry list
# (excluded.reasons) to the stored JSON array, text to text, so the text is what SQLite stores.
_REASONS_SQL = (
    "case when m.reasons is null or m.reasons = '[]' then excluded.reasons"
    " when excluded.outcome <> 'quarantined' then m.reasons"
    " when (m.reasons::json -> -1 ->> 'reason') is not distinct from excluded.reason"
    " and (m.reasons::json -> -1 ->> 'field') is not distinct from excluded.field then m.reasons"
    " else left(m.reasons, -1) || ', ' || substr(excluded.reasons, 2) end"
)


class StateUnavailable(OSError):
    """The PostgreSQL server did not answer, refused the login, or the schema could not be migrated."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def _adapt(value: Any) -> Any:
    # SQLite stores Python booleans as 0/1; integer columns here need the same.
    return int(value) if isinstance(value, bool) else value


class PostgresStateStore(ChangeSetWriter):
    """State in one PostgreSQL schema, shared by any number of connector processes."""

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 10) -> None:
        self.url = url
        # Lock waits and refusals, for the benchmark and the run summary.
        self.lock_stats: Counter[str] = Counter()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn:
                apply_migrations(conn)
            self.pool = ConnectionPool(
                url, min_size=1, max_size=max(2, pool_size), open=False, name="connector-state",
                kwargs={"autocommit": True, "row_factory": dict_row})
            self.pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StateUnavailable(f"PostgreSQL state store {redact(url)}: {exc}".strip()) from None
        self._local = threading.local()
        self._locker: psycopg.Connection[Any] | None = None
        self._locker_mutex = threading.Lock()

    def close(self) -> None:
        with self._locker_mutex:
            if self._locker is not None:
                self._locker.close()
                self._locker = None
        self.pool.close()

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; nested calls (and every store call on this thread) join the outer one."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            yield joined
            return
        with self.pool.connection() as conn:
            yield conn

    def _query(self, query: Any, params: Any = None) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return list(conn.execute(query, params).fetchall())

    def _execute(self, query: Any, params: Any = None) -> int:
        with self._conn() as conn:
            return conn.execute(query, params).rowcount

    def _rows(self, table: str, key: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
        vals = R.unique(values)
        if not vals:
            return {}
        q = sql.SQL("select * from {} where {} = any(%s::text[]) order by {}").format(
            sql.Identifier(table), sql.Identifier(key), sql.Identifier(key))
        return {row[key]: row for row in self._query(q, [vals])}

    def _upsert(self, table: str, pk: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        """Insert rows, or update the given columns of existing ones (sqlite-utils' upsert)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        known = R.COLUMNS[table]
        for cols, group in groups.items():
            unknown = [c for c in cols if c not in known]
            if unknown:
                raise ValueError(f"{table} has no column {', '.join(unknown)}")
            rest = [c for c in cols if c not in pk]
            action = sql.SQL("do nothing") if not rest else sql.SQL("do update set {}").format(sql.SQL(", ").join(
                sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in rest))
            q = sql.SQL("insert into {} ({}) values ({}) on conflict ({}) {}").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
                sql.SQL(", ").join(map(sql.Identifier, pk)), action)
            with self._conn() as conn, conn.cursor() as cur:
                cur.executemany(q, [tuple(_adapt(r[c]) for c in cols) for r in group])

    # -- resources: last applied content per Jomablue resource -------------------------------
    def resources(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._rows("resources", "resource_key", keys)

    def put_resources(self, rows: list[tuple[str, str, str]]) -> None:
        """(resource_key, content_hash, generated_at) for many resources; never older over newer."""
        if not rows:
            return
        stamp = R.now()
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                "insert into resources as r (resource_key, content_hash, generated_at, applied_at)"
                " values (%s, %s, %s, %s) on conflict (resource_key) do update set"
                " content_hash = excluded.content_hash, generated_at = excluded.generated_at,"
                " applied_at = excluded.applied_at"
                " where r.generated_at is null or excluded.generated_at::timestamptz >= r.generated_at::timestamptz",
                [(k, h, g, stamp) for k, h, g in rows])

    # -- replicas ---------------------------------------------------------------------------
    def _lock_connection(self) -> psycopg.Connection[Any]:
        if self._locker is None or self._locker.closed or self._locker.broken:
            # A lost connection lost its locks with it: the next batch simply takes them again.
            self._locker = psycopg.connect(self.url, autocommit=True)
        return self._locker

    def hold(self, keys: Iterable[str], shared: Iterable[str] = (), wait_seconds: float = 0) -> set[str]:
        """Try to lock each resource key for this process; return the keys obtained.

        `keys` are taken exclusively (the batch writes them); `shared` keys only exclude an
        exclusive holder (the batch reads them: another batch may read them too). A key in both
        is taken exclusively. With `wait_seconds`, the keys are asked for all or nothing every
        50 ms (jittered) until they are all obtained: a batch never sits on some keys while
        waiting for others, so two batches cannot wait for each other. When the time is up,
        whatever can be had at that moment is taken. Everything obtained is held until
        :meth:`release_held`.
        """
        wanted = R.unique(keys)
        reads = [k for k in R.unique(shared) if k not in set(wanted)]
        if not wanted and not reads:
            return set()
        deadline = time.monotonic() + wait_seconds
        waited = False
        while True:
            last = time.monotonic() >= deadline
            with self._locker_mutex:
                conn = self._lock_connection()
                got = {r[0] for r in conn.execute(_HOLD_SQL, [wanted, reads]).fetchall()}
                if len(got) < len(wanted) + len(reads) and not last:
                    conn.execute(_UNHOLD_SQL, [[k for k in wanted if k in got], [k for k in reads if k in got]])
            if last or len(got) == len(wanted) + len(reads):
                break
            waited = True
            time.sleep(random.uniform(0.03, 0.07))
        self.lock_stats["hold_waits"] += waited
        self.lock_stats["held"] += len(got)
        self.lock_stats["refused"] += len(wanted) + len(reads) - len(got)
        return got

    def release_held(self) -> None:
        """Let every hold go (campaign locks are released by their own blocks before this)."""
        with self._locker_mutex:
            if self._locker is not None and not self._locker.closed:
                self._locker.execute("select pg_advisory_unlock_all()")

    def campaign_lock(self, campaign_id: str) -> _CampaignLock:
        """Held only while that Campaign's members are written; `with` or `async with`."""
        return _CampaignLock(self, campaign_id)

    # -- people -----------------------------------------------------------------------------
    def people(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._rows("people", "jomablue_id", jomablue_ids)

    def put_people(self, rows: dict[str, dict[str, Any]]) -> None:
        stamp = R.now()
        self._upsert("people", ("jomablue_id",),
                     [{"jomablue_id": jid, **fields, "updated_at": stamp} for jid, fields in rows.items()])

    def forget_people(self, jomablue_ids: Iterable[str]) -> None:
        """Links to records deleted in Salesforce: the next delivery walks the ladder again."""
        keys = R.unique(jomablue_ids)
        if keys:
            self._execute("delete from people where jomablue_id = any(%s::text[])", [keys])

    def relink_person_records(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        self._execute("update people set sobject = %s, sf_id = %s, updated_at = %s where sf_id = %s",
                      [sobject, new_sf_id, R.now(), old_sf_id])

    # -- events and their category tables ----------------------------------------------
    def events(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows("events", "event_id", event_ids)
        for row in rows.values():
            R.event_out(row)
        return rows

    def all_events(self, event_id: str | None = None) -> list[dict[str, Any]]:
        if event_id is None:
            return self._query('select * from events order by event_id collate "C"')
        return self._query("select * from events where event_id = %s", [event_id])

    def put_event(self, event_id: str, **fields: Any) -> None:
        self._upsert("events", ("event_id",), [{"event_id": event_id, **R.event_in(fields), "updated_at": R.now()}])

    def categories(self, event_id: str) -> dict[str, str]:
        return {r["category_id"]: r["name"] for r in self._query(
            "select category_id, name from categories where event_id = %s", [event_id])}

    def replace_categories(self, event_id: str, table: dict[str, str]) -> None:
        with self.atomic(), self._conn() as conn:
            conn.execute("delete from categories where event_id = %s", [event_id])
            if table:
                with conn.cursor() as cur:
                    cur.executemany("insert into categories (event_id, category_id, name) values (%s, %s, %s)",
                                    [(event_id, k, v) for k, v in table.items()])

    # -- campaign members -------------------------------------------------------------
    def members(self, member_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows("members", "member_key", member_keys)
        for row in rows.values():
            R.member_out(row)
        return rows

    def members_of_event(self, event_id: str) -> list[dict[str, Any]]:
        return [R.member_out(r) for r in self._query(
            "select * from members where event_id = %s and cm_id is not null", [event_id])]

    def put_members(self, rows: dict[str, dict[str, Any]]) -> None:
        stamp = R.now()
        self._upsert("members", ("member_key",), [R.member_in(k, f, stamp) for k, f in rows.items()])

    def put_member(self, member_key: str, **fields: Any) -> None:
        if "category_ids" in fields:
            fields["category_ids"] = R.dumps(fields["category_ids"]) if fields["category_ids"] is not None else None
        self._upsert("members", ("member_key",), [{"member_key": member_key, **fields, "updated_at": R.now()}])

    def forget_members(self, member_keys: Iterable[str]) -> None:
        keys = R.unique(member_keys)
        if keys:
            self._execute("update members set cm_id = null, record_hash = null where member_key = any(%s::text[])",
                          [keys])

    def forget_campaigns(self, campaign_ids: Iterable[str]) -> None:
        """Campaigns deleted in Salesforce: the same rebuild-on-next-delivery as SqliteStateStore."""
        ids = R.unique(campaign_ids)
        if not ids:
            return
        with self.atomic(), self._conn() as conn:
            events = [r["event_id"] for r in conn.execute(
                "select event_id from events where campaign_id = any(%s::text[])", [ids]).fetchall()]
            conn.execute("update events set campaign_id = null where campaign_id = any(%s::text[])", [ids])
            conn.execute("delete from records where sf_id = any(%s::text[])", [ids])
            conn.execute("update members set cm_id = null, record_hash = null where campaign_id = any(%s::text[])",
                         [ids])
            conn.execute("delete from campaign_statuses where campaign_id = any(%s::text[])", [ids])
            if events:
                conn.execute("delete from resources where resource_key = any(%s::text[])",
                             [[f"event:{e}" for e in events]])

    # -- sessions and other records keyed by Jomablue id ---------------------------------
    def records(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._rows("records", "jomablue_id", jomablue_ids)

    def put_record(self, jomablue_id: str, sobject: str, sf_id: str) -> None:
        self._upsert("records", ("jomablue_id",),
                     [{"jomablue_id": jomablue_id, "sobject": sobject, "sf_id": sf_id, "updated_at": R.now()}])

    # -- campaign member statuses known to exist --------------------------------------
    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]:
        ids = R.unique(campaign_ids)
        if not ids:
            return set()
        return {(r["campaign_id"], r["label"]) for r in self._query(
            "select campaign_id, label from campaign_statuses where campaign_id = any(%s::text[])", [ids])}

    def add_campaign_statuses(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._upsert("campaign_statuses", ("campaign_id", "label"),
                     [{"campaign_id": c, "label": label} for c, label in pairs])

    # -- message outcomes -------------------------------------------------------------
    def record_outcome(self, message_key: str, *, outcome: str, **fields: Any) -> None:
        self.record_outcomes([{"message_key": message_key, "outcome": outcome, **fields}])

    def record_outcomes(self, rows: list[dict[str, Any]]) -> None:
        """Many outcomes at once; attempts and first_seen carry on in SQL, so replicas cannot lose a count."""
        if not rows:
            return
        stamp = R.now()
        cols = R.COLUMNS["messages"]
        carried = {"message_key", "attempts", "first_seen", "reasons"}
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in carried)
        q = (f"insert into messages as m ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))})"
             f" on conflict (message_key) do update set {sets}, attempts = m.attempts + 1,"
             f" first_seen = m.first_seen, reasons = {_REASONS_SQL}")
        with self._conn() as conn, conn.cursor() as cur:
            # One statement per row, in order: a key twice in one call counts two attempts.
            cur.executemany(q, [tuple(R.outcome_row(r, None, stamp)[c] for c in cols) for r in rows])

    def quarantined(self, message_keys: list[str] | None = None) -> list[dict[str, Any]]:
        if message_keys is None:
            return self._query("select * from messages where outcome = 'quarantined' order by first_seen")
        rows = self._rows("messages", "message_key", message_keys)
        return [r for r in rows.values() if r["outcome"] == "quarantined"]

    def drop_quarantined(self, message_key: str, *, reason: str, who: str) -> dict[str, Any] | None:
        """Discard a quarantined message for good: an audit row keeps who, why and when (and the
        body's sha256, not the body); the message no longer counts as quarantined nor replays.
        None when no quarantined message has that key."""
        with self.atomic():
            rows = self._query("select * from messages where message_key = %s for update", [message_key])
            if not rows or rows[0]["outcome"] != "quarantined":
                return None
            row = rows[0]
            audit = {
                "message_key": message_key, "resource_type": row["resource_type"],
                "resource_id": row["resource_id"], "event_id": row["event_id"],
                "quarantine_reason": row["reason"], "field": row["field"],
                "body_sha256": hashlib.sha256((row["body"] or "").encode("utf-8", "replace")).hexdigest(),
                "attempts": row["attempts"], "first_seen": row["first_seen"],
                "dropped_by": who, "dropped_reason": reason, "dropped_at": R.now(),
            }
            self._upsert("dropped_messages", ("message_key",), [audit])
            self._execute("update messages set outcome = 'dropped', body = null, last_seen = %s"
                          " where message_key = %s", [audit["dropped_at"], message_key])
        return audit

    def dropped(self) -> list[dict[str, Any]]:
        return self._query("select * from dropped_messages order by dropped_at")

    def message_stats_by_event(self) -> dict[str, dict[str, Any]]:
        """Per event: quarantined messages now, and when the last message about it was seen."""
        return {r["event_id"]: {"quarantined": int(r["quarantined"] or 0), "last_message_at": r["last_seen"]}
                for r in self._query(
                    "select event_id, sum(case when outcome = 'quarantined' then 1 else 0 end) as quarantined,"
                    " max(last_seen) as last_seen from messages where event_id is not null group by event_id")}

    def outcome_counts(self) -> dict[str, int]:
        return {r["outcome"]: int(r["n"]) for r in self._query(
            'select outcome, count(*) as n from messages group by outcome order by outcome collate "C"')}

    # -- runs and API usage -------------------------------------------------------------
    def start_run(self) -> int:
        return int(self._query("insert into runs (started_at) values (%s) returning id", [R.now()])[0]["id"])

    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        self._execute("update runs set finished_at = %s, exit_code = %s, summary = %s where id = %s",
                      [R.now(), exit_code, R.dumps(summary), run_id])

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        return [R.run_out(r) for r in self._query("select * from runs order by id desc limit %s", [limit])]

    def last_run(self) -> dict[str, Any] | None:
        rows = self._query("select * from runs order by id desc limit 1")
        return R.run_out(rows[0]) if rows else None

    def put_api_usage(self, used: int, max_: int) -> None:
        self._upsert("api_usage", ("id",), [{"id": 1, "used": used, "max": max_, "seen_at": R.now()}])

    def api_usage(self) -> dict[str, Any] | None:
        rows = self._query("select used, max, seen_at from api_usage where id = 1")
        return rows[0] if rows else None

    # -- the org's describes (preflight) ------------------------------------------------
    def describes(self) -> dict[str, dict[str, Any]]:
        """sobject → {"describe": dict | None (object missing), "fetched_at": ISO time}."""
        return {r["sobject"]: {"describe": json.loads(r["describe"]), "fetched_at": r["fetched_at"]}
                for r in self._query("select sobject, describe, fetched_at from describe_cache")}

    def put_describes(self, describes: dict[str, dict[str, Any] | None]) -> None:
        """Replace the cached describes (all fetched together: one fetched_at)."""
        stamp = R.now()
        with self.atomic():
            self._execute("delete from describe_cache")
            self._upsert("describe_cache", ("sobject",),
                         [{"sobject": k, "describe": json.dumps(v, ensure_ascii=False), "fetched_at": stamp}
                          for k, v in describes.items()])

    # -- what the connector last wrote to each record (reconcile compares it) ------------------
    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(sf_id, sobject, fields) per record written: fields merge into what was there (a later
        value wins; None means the field was cleared).

        The merge with the stored fields happens in SQL (jsonb ||), so two replicas writing one
        record's fields at once both land. The stored text is jsonb's rendering of the same
        object (its key order, not SQLite's); readers get the same dict from :meth:`written`.
        """
        if not rows:
            return
        merged: dict[str, tuple[str, dict[str, Any]]] = {}
        for sf_id, sobject, fields in rows:
            merged[sf_id] = (sobject, {**(merged[sf_id][1] if sf_id in merged else {}), **fields})
        stamp = R.now()
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                "insert into written as w (sf_id, sobject, fields, written_at) values (%s, %s, %s, %s)"
                " on conflict (sf_id) do update set sobject = excluded.sobject, written_at = excluded.written_at,"
                " fields = (coalesce(w.fields, '{}')::jsonb || excluded.fields::jsonb)::text",
                [(k, sobject, R.dumps(fields), stamp) for k, (sobject, fields) in merged.items()])

    def written(self, sf_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: R.written_out(row) for k, row in self._rows("written", "sf_id", sf_ids).items()}

    # -- reads and repairs for reconcile -------------------------------------------------
    def all_members_of_event(self, event_id: str) -> list[dict[str, Any]]:
        """Every member row of the event, also those whose Salesforce record is known to be gone."""
        return [R.member_out(r) for r in self._query(
            'select * from members where event_id = %s order by member_key collate "C"', [event_id])]

    def all_records(self) -> list[dict[str, Any]]:
        return self._query('select * from records order by jomablue_id collate "C"')

    def relink_person(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        """A person record was merged away (or converted): registrations and their memberships
        now name the surviving record, as Salesforce moved the memberships to it."""
        with self.atomic():
            self.relink_person_records(old_sf_id, sobject, new_sf_id)
            self._execute("update members set person_sf_id = %s, updated_at = %s where person_sf_id = %s",
                          [new_sf_id, R.now(), old_sf_id])

    # -- small settings (the redaction key) -------------------------------------------------
    def setting(self, name: str, default: str) -> str:
        """The stored value of a setting; `default` is stored and returned the first time."""
        rows = self._query(
            "insert into settings (name, value) values (%s, %s) on conflict (name) do nothing returning value",
            [name, default])
        if rows:
            return str(rows[0]["value"])
        return str(self._query("select value from settings where name = %s", [name])[0]["value"])

    # -- connector import: the archive objects finished (issue 20) ---------------------------
    def finished_imports(self, scopes: Iterable[str]) -> set[str]:
        """Object URIs an import finished under any of these scopes (its filters and mapping)."""
        return {str(r["object_uri"]) for r in self._query(
            "select object_uri from imported_objects where scope = any(%s::text[])", [list(scopes)])}

    def put_finished_import(self, object_uri: str, scope: str, lines: int) -> None:
        self._execute("insert into imported_objects (object_uri, scope, lines, finished_at) values (%s, %s, %s, %s) "
                      "on conflict (object_uri, scope) do update set lines = excluded.lines, "
                      "finished_at = excluded.finished_at", [object_uri, scope, lines, R.now()])

    # -- upkeep -----------------------------------------------------------------------------
    def prune(self, keep_days: float) -> int:
        """Delete outcome rows last seen more than keep_days ago (quarantined ones stay), and old runs."""
        cut = R.cutoff(keep_days)
        with self.atomic():
            n = self._execute("delete from messages where last_seen < %s and outcome <> 'quarantined'", [cut])
            self._execute("delete from runs where started_at < %s and id < (select max(id) from runs)", [cut])
        return n

    def ping(self) -> None:
        """One round trip on a pooled connection (readiness probes)."""
        try:
            self._query("select 1 as n")
        except psycopg.Error as exc:
            raise StateUnavailable(f"cannot reach the state store at {redact(self.url)}: {exc}",
                                   location=redact(self.url), cause=str(exc)) from None

    def size_bytes(self) -> int:
        """Tables, indexes and TOAST of this store's schema."""
        rows = self._query(
            "select coalesce(sum(pg_total_relation_size(c.oid)), 0) as n from pg_class c"
            " join pg_namespace s on s.oid = c.relnamespace where s.nspname = current_schema() and c.relkind = 'r'")
        return int(rows[0]["n"])


class _CampaignLock:
    """A session advisory lock on one Campaign, on the store's lock connection.

    Usable with `with` and, from the engine's event loop, `async with`. It polls (every 20-50 ms)
    instead of blocking in the server, so it never ties up a pooled connection or the lock
    connection while it waits; a batch that takes several takes them in sorted order.
    """

    POLL_SECONDS = (0.02, 0.05)

    def __init__(self, store: PostgresStateStore, campaign_id: str) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self._waited: float | None = None

    def _try(self) -> bool:
        with self.store._locker_mutex:
            row = self.store._lock_connection().execute(
                f"select pg_try_advisory_lock({_CAMPAIGN_KEY})", [self.campaign_id]).fetchone()
        got = bool(row[0])
        if not got and self._waited is None:
            self._waited = time.monotonic()
        return got

    def _count(self) -> None:
        if self._waited is not None:
            self.store.lock_stats["campaign_waits"] += 1
            self.store.lock_stats["campaign_wait_ms"] += int((time.monotonic() - self._waited) * 1000)

    def _release(self) -> None:
        with self.store._locker_mutex:
            conn = self.store._locker
            if conn is not None and not conn.closed and not conn.broken:
                conn.execute(f"select pg_advisory_unlock({_CAMPAIGN_KEY})", [self.campaign_id])

    def __enter__(self) -> None:
        while not self._try():
            time.sleep(random.uniform(*self.POLL_SECONDS))
        self._count()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._release()

    async def __aenter__(self) -> None:
        while not await asyncio.to_thread(self._try):
            await asyncio.sleep(random.uniform(*self.POLL_SECONDS))
        self._count()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self._release)
