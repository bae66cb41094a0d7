"""SQLite state store (the embedded default), on sqlite-utils.

Writes that belong together go inside :meth:`SqliteStateStore.atomic`; the sync engine commits
one batch's links, hashes and outcomes in one transaction, and only then deletes the messages
from SQS. Another backend implements the same Protocol (:class:`connector.state.base.StateStore`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlite_utils

from connector.state import rows as R
from connector.state.migrations import apply_migrations


def _chunks(items: list[str], n: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class SqliteStateStore:
    """State in one SQLite file (WAL mode), safe to share between the run loop's threads."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        self.db = sqlite_utils.Database(conn)
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

    def size_bytes(self) -> int:
        """The database's size on disk (its pages; the WAL is checkpointed into them)."""
        with self._lock:
            pages = self.db.execute("pragma page_count").fetchone()[0]
            size = self.db.execute("pragma page_size").fetchone()[0]
        return int(pages) * int(size)


def open_state(path: Path | str) -> SqliteStateStore:
    return SqliteStateStore(path)
