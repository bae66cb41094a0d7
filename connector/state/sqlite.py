"""SQLite state store (the embedded default), on sqlite-utils.

Writes that belong together go inside :meth:`SqliteStateStore.atomic`; the sync engine commits
one batch's links, hashes and outcomes in one transaction, and only then deletes the messages
from SQS. Another backend implements the same Protocol (:class:`connector.state.base.StateStore`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlite_utils

from connector.errors import StateUnavailable, StopRun
from connector.state import rows as R
from connector.state.base import ChangeSetWriter
from connector.state.migrations import apply_migrations


def _chunks(items: list[str], n: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _switch_to_wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """WAL mode, retried: SQLite answers "database is locked" at once, without its busy handler,
    when two connections race to change a new file's journal mode (seen on tmpfs with three
    processes opening one new file together)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class SqliteStateStore(ChangeSetWriter):
    """State in one SQLite file (WAL mode), safe to share between the run loop's threads."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # The busy timeout first: switching a new file to WAL takes a lock another process may hold.
        conn.execute("PRAGMA busy_timeout=10000")
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        self.db = sqlite_utils.Database(conn)
        self.db_path = path
        self._lock = threading.RLock()
        self._depth = 0
        apply_migrations(self.db)

    def close(self) -> None:
        self.db.conn.close()

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.db.conn.execute("ROLLBACK")
                raise
            else:
                self.db.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def _rows(self, table: str, key: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        vals = sorted(set(v for v in values if v))
        with self._lock:
            for chunk in _chunks(vals):
                marks = ",".join("?" * len(chunk))
                for row in self.db.query(f"select * from [{table}] where [{key}] in ({marks})", chunk):
                    out[row[key]] = row
        return out

    # -- resources: last applied content per Jomablue resource -------------------------------
    def resources(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._rows("resources", "resource_key", keys)

    def put_resources(self, rows: list[tuple[str, str, str]]) -> None:
        """(resource_key, content_hash, generated_at) for many resources in one statement.

        Conditional, as in every backend: a row is written only when its generated_at is not
        older than the stored one, so an older version never replaces a newer one.
        """
        now = R.now()
        if rows:
            with self.atomic():   # one transaction (or the caller's), not one fsync per row
                self.db.conn.executemany(
                    "insert into resources (resource_key, content_hash, generated_at, applied_at) values (?, ?, ?, ?)"
                    " on conflict (resource_key) do update set content_hash = excluded.content_hash,"
                    " generated_at = excluded.generated_at, applied_at = excluded.applied_at"
                    " where resources.generated_at is null or excluded.generated_at >= resources.generated_at",
                    [(k, h, g, now) for k, h, g in rows])

    # -- replicas: SQLite serves one run at a time, so every lock is already ours ------------
    def hold(self, keys: Iterable[str], shared: Iterable[str] = (), wait_seconds: float = 0) -> set[str]:
        """Per-resource locks for a batch: all of them (one run per state file is enforced elsewhere)."""
        return set(keys) | set(shared)

    def release_held(self) -> None:
        return None

    def campaign_lock(self, campaign_id: str) -> AbstractContextManager[None]:
        return nullcontext()

    # -- people: Jomablue registration id → Lead/Contact ---------------------------------
    def people(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._rows("people", "jomablue_id", jomablue_ids)

    def put_people(self, rows: dict[str, dict[str, Any]]) -> None:
        """Many links in one statement (the engine's commit)."""
        now = R.now()
        if rows:
            with self._lock:
                self.db["people"].upsert_all(
                    [{"jomablue_id": jid, **fields, "updated_at": now} for jid, fields in rows.items()],
                    pk="jomablue_id")

    def forget_people(self, jomablue_ids: Iterable[str]) -> None:
        """Links to records deleted in Salesforce: the next delivery walks the ladder again."""
        keys = sorted(set(jomablue_ids))
        with self._lock:
            for chunk in _chunks(keys):
                self.db.execute(f"delete from people where jomablue_id in ({','.join('?' * len(chunk))})", chunk)

    def relink_person_records(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        """A Lead was converted: every registration linked to it now points at the Contact."""
        with self._lock:
            self.db.execute(
                "update people set sobject=?, sf_id=?, updated_at=? where sf_id=?",
                [sobject, new_sf_id, R.now(), old_sf_id],
            )

    # -- events and their category tables ----------------------------------------------
    def events(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows("events", "event_id", event_ids)
        for row in rows.values():
            R.event_out(row)
        return rows

    def all_events(self, event_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if event_id is None:
                return list(self.db.query("select * from events order by event_id"))
            return list(self.db.query("select * from events where event_id = ?", [event_id]))

    def put_event(self, event_id: str, **fields: Any) -> None:
        fields = R.event_in(fields)
        with self._lock:
            exists = self.db["events"].count_where("event_id = ?", [event_id])
            if exists:
                self.db["events"].update(event_id, {**fields, "updated_at": R.now()})
            else:
                self.db["events"].insert({"event_id": event_id, **fields, "updated_at": R.now()})

    def categories(self, event_id: str) -> dict[str, str]:
        with self._lock:
            return {
                r["category_id"]: r["name"]
                for r in self.db.query("select * from categories where event_id = ?", [event_id])
            }

    def replace_categories(self, event_id: str, table: dict[str, str]) -> None:
        with self._lock:
            self.db.execute("delete from categories where event_id = ?", [event_id])
            if table:
                self.db["categories"].insert_all(
                    [{"event_id": event_id, "category_id": k, "name": v} for k, v in table.items()],
                    pk=("event_id", "category_id"),
                )

    # -- campaign members -------------------------------------------------------------
    def members(self, member_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows("members", "member_key", member_keys)
        for row in rows.values():
            R.member_out(row)
        return rows

    def members_of_event(self, event_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self.db.query("select * from members where event_id = ? and cm_id is not null", [event_id]))
        return [R.member_out(row) for row in rows]

    def put_members(self, rows: dict[str, dict[str, Any]]) -> None:
        """Many member rows in one statement; each row carries every column."""
        now = R.now()
        out = [R.member_in(key, fields, now) for key, fields in rows.items()]
        if out:
            with self._lock:
                self.db["members"].upsert_all(out, pk="member_key")

    def put_member(self, member_key: str, **fields: Any) -> None:
        if "category_ids" in fields:
            fields["category_ids"] = json.dumps(fields["category_ids"], ensure_ascii=False)
        with self._lock:
            exists = self.db["members"].count_where("member_key = ?", [member_key])
            if exists:
                self.db["members"].update(member_key, {**fields, "updated_at": R.now()})
            else:
                self.db["members"].insert({"member_key": member_key, **fields, "updated_at": R.now()})

    def forget_members(self, member_keys: Iterable[str]) -> None:
        """Members deleted in Salesforce: the next write creates them again (upsert, not update by Id)."""
        keys = sorted(set(member_keys))
        with self._lock:
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"update members set cm_id = null, record_hash = null where member_key in ({marks})", chunk)

    def forget_campaigns(self, campaign_ids: Iterable[str]) -> None:
        """Campaigns deleted in Salesforce (and their members with them): rebuild on the next delivery.

        The event's (or session's) link goes, its members lose their Ids, its statuses are no longer
        known, and the event message counts as not applied, so a re-sent one restores the details.
        """
        ids = sorted(set(campaign_ids))
        with self._lock:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                events = [r["event_id"] for r in self.db.query(
                    f"select event_id from events where campaign_id in ({marks})", chunk)]
                self.db.execute(f"update events set campaign_id = null where campaign_id in ({marks})", chunk)
                self.db.execute(f"delete from records where sf_id in ({marks})", chunk)
                self.db.execute(f"update members set cm_id = null, record_hash = null where campaign_id in ({marks})", chunk)
                self.db.execute(f"delete from campaign_statuses where campaign_id in ({marks})", chunk)
                if events:
                    self.db.execute(f"delete from resources where resource_key in ({','.join('?' * len(events))})",
                                    [f"event:{e}" for e in events])

    # -- sessions and other records keyed by Jomablue id ---------------------------------
    def records(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._rows("records", "jomablue_id", jomablue_ids)

    def put_record(self, jomablue_id: str, sobject: str, sf_id: str) -> None:
        with self._lock:
            self.db["records"].upsert(
                {"jomablue_id": jomablue_id, "sobject": sobject, "sf_id": sf_id, "updated_at": R.now()},
                pk="jomablue_id",
            )

    # -- campaign member statuses known to exist --------------------------------------
    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]:
        ids = sorted(set(campaign_ids))
        out: set[tuple[str, str]] = set()
        with self._lock:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for r in self.db.query(f"select * from campaign_statuses where campaign_id in ({marks})", chunk):
                    out.add((r["campaign_id"], r["label"]))
        return out

    def add_campaign_statuses(self, pairs: Iterable[tuple[str, str]]) -> None:
        rows = [{"campaign_id": c, "label": label} for c, label in pairs]
        if rows:
            with self._lock:
                self.db["campaign_statuses"].upsert_all(rows, pk=("campaign_id", "label"))

    # -- message outcomes -------------------------------------------------------------
    def record_outcome(self, message_key: str, *, outcome: str, **fields: Any) -> None:
        self.record_outcomes([{"message_key": message_key, "outcome": outcome, **fields}])

    def record_outcomes(self, rows: list[dict[str, Any]]) -> None:
        """Many outcomes at once: one read for attempts/first_seen, one write."""
        if not rows:
            return
        with self.atomic():
            prev = self._rows("messages", "message_key", [r["message_key"] for r in rows])
            out = R.merge_outcomes(rows, prev, R.now())
            cols = R.COLUMNS["messages"]
            self.db.conn.executemany(
                f"insert or replace into messages ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                [tuple(r[c] for c in cols) for r in out])

    def quarantined(self, message_keys: list[str] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if message_keys is None:
                return list(self.db.query(
                    "select * from messages where outcome = 'quarantined' order by first_seen"))
            rows = self._rows("messages", "message_key", message_keys)
        return [r for r in rows.values() if r["outcome"] == "quarantined"]

    def drop_quarantined(self, message_key: str, *, reason: str, who: str) -> dict[str, Any] | None:
        """Discard a quarantined message for good: an audit row keeps who, why and when (and the
        body's sha256, not the body); the message no longer counts as quarantined nor replays.
        None when no quarantined message has that key."""
        import hashlib

        with self._lock, self.atomic():
            rows = self._rows("messages", "message_key", [message_key])
            row = rows.get(message_key)
            if row is None or row["outcome"] != "quarantined":
                return None
            audit = {
                "message_key": message_key, "resource_type": row["resource_type"],
                "resource_id": row["resource_id"], "event_id": row["event_id"],
                "quarantine_reason": row["reason"], "field": row["field"],
                "body_sha256": hashlib.sha256((row["body"] or "").encode("utf-8", "replace")).hexdigest(),
                "attempts": row["attempts"], "first_seen": row["first_seen"],
                "dropped_by": who, "dropped_reason": reason, "dropped_at": R.now(),
            }
            self.db["dropped_messages"].upsert(audit, pk="message_key")
            self.db.execute("update messages set outcome = 'dropped', body = null, last_seen = ? "
                            "where message_key = ?", [audit["dropped_at"], message_key])
        return audit

    def dropped(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query("select * from dropped_messages order by dropped_at"))

    def message_stats_by_event(self) -> dict[str, dict[str, Any]]:
        """Per event: quarantined messages now, and when the last message about it was seen."""
        with self._lock:
            return {r["event_id"]: {"quarantined": r["quarantined"] or 0, "last_message_at": r["last_seen"]}
                    for r in self.db.query(
                        "select event_id, sum(case when outcome = 'quarantined' then 1 else 0 end) as quarantined, "
                        "max(last_seen) as last_seen from messages where event_id is not null group by event_id")}

    def outcome_counts(self) -> dict[str, int]:
        with self._lock:
            return {r["outcome"]: r["n"] for r in self.db.query(
                "select outcome, count(*) as n from messages group by outcome order by outcome")}

    # -- runs and API usage -------------------------------------------------------------
    def start_run(self) -> int:
        with self._lock:
            return int(self.db["runs"].insert({"started_at": R.now()}).last_pk)

    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        with self._lock:
            self.db["runs"].update(run_id, {"finished_at": R.now(), "exit_code": exit_code,
                                            "summary": json.dumps(summary, ensure_ascii=False)})

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self.db.query("select * from runs order by id desc limit ?", [limit]))
        for row in rows:
            row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
        return rows

    def last_run(self) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db.query("select * from runs order by id desc limit 1"))
        return R.run_out(rows[0]) if rows else None

    def put_api_usage(self, used: int, max_: int) -> None:
        with self._lock:
            self.db["api_usage"].upsert({"id": 1, "used": used, "max": max_, "seen_at": R.now()}, pk="id")

    def api_usage(self) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db.query("select used, max, seen_at from api_usage where id = 1"))
        return rows[0] if rows else None

    # -- the org's describes (preflight) ------------------------------------------------
    def describes(self) -> dict[str, dict[str, Any]]:
        """sobject → {"describe": dict | None (object missing), "fetched_at": ISO time}."""
        with self._lock:
            rows = list(self.db.query("select sobject, describe, fetched_at from describe_cache"))
        return {r["sobject"]: {"describe": json.loads(r["describe"]), "fetched_at": r["fetched_at"]}
                for r in rows}

    def put_describes(self, describes: dict[str, dict[str, Any] | None]) -> None:
        """Replace the cached describes (all fetched together: one fetched_at)."""
        now = R.now()
        with self.atomic():
            self.db.conn.execute("delete from describe_cache")
            self.db["describe_cache"].insert_all(
                [{"sobject": k, "describe": json.dumps(v, ensure_ascii=False), "fetched_at": now}
                 for k, v in describes.items()], pk="sobject")

    # -- what the connector last wrote to each record (reconcile compares it) ------------------
    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(sf_id, sobject, fields) per record written: fields merge into what was there (a later
        value wins; None means the field was cleared)."""
        if not rows:
            return
        now = R.now()
        with self._lock:
            merged: dict[str, dict[str, Any]] = {}
            before = self._rows("written", "sf_id", [r[0] for r in rows])
            for sf_id, sobject, fields in rows:
                prev = merged.get(sf_id) or (
                    {"sobject": before[sf_id]["sobject"], "fields": json.loads(before[sf_id]["fields"])}
                    if sf_id in before else {"sobject": sobject, "fields": {}})
                merged[sf_id] = {"sobject": sobject, "fields": {**prev["fields"], **fields}}
            self.db["written"].upsert_all(
                [{"sf_id": k, "sobject": v["sobject"], "written_at": now,
                  "fields": json.dumps(v["fields"], ensure_ascii=False, sort_keys=True, default=str)}
                 for k, v in merged.items()], pk="sf_id")

    def written(self, sf_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: R.written_out(row) for k, row in self._rows("written", "sf_id", sf_ids).items()}

    # -- reads and repairs for reconcile -------------------------------------------------
    def all_members_of_event(self, event_id: str) -> list[dict[str, Any]]:
        """Every member row of the event, also those whose Salesforce record is known to be gone."""
        with self._lock:
            rows = list(self.db.query("select * from members where event_id = ? order by member_key", [event_id]))
        for row in rows:
            row["category_ids"] = json.loads(row["category_ids"]) if row.get("category_ids") else []
        return rows

    def all_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query("select * from records order by jomablue_id"))

    def relink_person(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        """A person record was merged away (or converted): registrations and their memberships
        now name the surviving record, as Salesforce moved the memberships to it."""
        with self._lock, self.atomic():
            self.relink_person_records(old_sf_id, sobject, new_sf_id)
            self.db.execute("update members set person_sf_id = ?, updated_at = ? where person_sf_id = ?",
                            [new_sf_id, R.now(), old_sf_id])

    # -- small settings (the redaction key) -------------------------------------------------
    def setting(self, name: str, default: str) -> str:
        """The stored value of a setting; `default` is stored and returned the first time."""
        with self._lock:
            self.db.execute("insert or ignore into settings (name, value) values (?, ?)", [name, default])
            return next(iter(self.db.query("select value from settings where name = ?", [name])))["value"]

    # -- connector import: the archive objects finished (issue 20) ---------------------------
    def finished_imports(self, scopes: Iterable[str]) -> set[str]:
        """Object URIs an import finished under any of these scopes (its filters and mapping)."""
        wanted = list(scopes)
        with self._lock:
            return {r["object_uri"] for r in self.db.query(
                f"select object_uri from imported_objects where scope in ({','.join('?' * len(wanted))})", wanted)}

    def put_finished_import(self, object_uri: str, scope: str, lines: int) -> None:
        with self._lock:
            self.db.execute("insert or replace into imported_objects (object_uri, scope, lines, finished_at) "
                            "values (?, ?, ?, ?)", [object_uri, scope, lines, R.now()])

    # -- upkeep: the store stays small ---------------------------------------------------
    def prune(self, keep_days: float) -> int:
        """Delete outcome rows last seen more than keep_days ago (quarantined ones stay), and old runs.

        Returns the outcome rows deleted. Freed pages are reused by later writes, so the file
        stops growing once a keep_days window of messages is in it.
        """
        cut = R.cutoff(keep_days)
        with self.atomic():
            n = self.db.execute(
                "delete from messages where last_seen < ? and outcome != 'quarantined'", [cut]).rowcount
            self.db.execute("delete from runs where started_at < ? and id < (select max(id) from runs)", [cut])
        return n

    def ping(self) -> None:
        """One trivial read: the file is open and readable (readiness probes)."""
        try:
            with self._lock:
                self.db.execute("select 1").fetchone()
        except sqlite3.Error as exc:
            raise StateUnavailable(f"cannot read the state store at {self.db_path}: {exc}",
                                   location=str(self.db_path), cause=str(exc)) from None

    def size_bytes(self) -> int:
        """The database's size on disk (its pages; the WAL is checkpointed into them)."""
        with self._lock:
            pages = self.db.execute("pragma page_count").fetchone()[0]
            size = self.db.execute("pragma page_size").fetchone()[0]
        return int(pages) * int(size)


class RunLock:
    """One `connector run` per SQLite state file: an exclusive flock on `<db>.lock` beside it.

    Two runs on one file would each act on what the other has not committed yet (statuses moving
    backwards, issue 11). The kernel drops a flock when its process dies, however it dies, so
    there is no stale lock to clean up; readers (`status`, reports) never take it. It needs a
    local filesystem (flock is not reliable over NFS).
    """

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self.path = self.db_path.with_name(self.db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self, wait_seconds: float = 0) -> None:
        """Take the lock, waiting up to `wait_seconds`; StopRun (exit 75) if another run keeps it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                    os.close(fd)
                    who = f" (pid {holder})" if holder.isdigit() else ""
                    raise StopRun(f"another run holds {self.db_path}{who}; lock file {self.path}") from None
                time.sleep(min(0.2, left))
        # Who holds it, for the operator reading the refusal; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def open_state(path: Path | str) -> SqliteStateStore:
    return SqliteStateStore(path)
