"""What both SQL backends share: the statements whose SQL is the same, ``apply``, and the one
translation of a backend's errors into :class:`connector.errors.StateUnavailable`.

A backend supplies its driver's primitives (:meth:`SqlStateStore._fetch`, ``_run``,
``_run_many``, ``_transaction``), how it spells a list in a ``where`` (SQLite: ``in (?, ...)`` in
chunks; PostgreSQL: ``= any(array)``), and the statements that differ per dialect
(outcomes, the write journal's merge, the conditional resource upsert, locks, sizes). Shared SQL
is written with ``?`` placeholders; the PostgreSQL backend turns them into ``%s``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from connector.errors import StateUnavailable
from connector.state import rows as R
from connector.state.base import CallLimit, Row

if TYPE_CHECKING:
    from connector.sync.changes import ChangeSet

NOTHING_LOST = "nothing was lost: the batch was not committed and its messages stay queued"


def unavailable(location: str, action: str, exc: BaseException, *, disk_full: bool = False,
                io_error: bool = False) -> StateUnavailable:
    """The one error every backend failure becomes: what failed (open, read, write), where, and why."""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if disk_full:
        text = f"the disk holding the state store at {location} is full"
    elif io_error:
        text = f"cannot {action} the state store at {location}: {cause} (is its disk full or failing?)"
    else:
        text = f"cannot {action} the state store at {location}: {cause}"
    return StateUnavailable(text, location=location, cause=cause)


class SqlStateStore(ABC):
    """A state store on a SQL database; subclasses bind it to a driver and a dialect."""

    location: str                  # where the store is, as the operator configured it (password masked)
    ORDER_BYTES = "collate binary"  # order text by its bytes (the same order on every backend)
    FOR_UPDATE = ""                 # lock a read row until the transaction ends

    def __init__(self) -> None:
        self._tx = threading.local()   # this thread's transaction depth

    # -- what a backend supplies ------------------------------------------------------------
    @abstractmethod
    def _fetch(self, q: str, params: Sequence[Any]) -> list[Row]: ...
    @abstractmethod
    def _run(self, q: str, params: Sequence[Any]) -> int: ...
    @abstractmethod
    def _run_many(self, q: str, rows: list[tuple[Any, ...]]) -> None: ...
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """Begin; commit when the block ends, roll back when it raises."""
    @abstractmethod
    def _in(self, values: list[str]) -> Iterator[tuple[str, list[Any]]]:
        """(`in` clause, its parameters) per chunk of `values` (nothing for no values)."""
    @abstractmethod
    def _failure(self, exc: Exception, action: str) -> StateUnavailable | None:
        """The StateUnavailable a backend error becomes (None: not a backend error)."""

    @abstractmethod
    def record_outcomes(self, rows: list[dict[str, Any]]) -> None:
        """Many message outcomes at once: attempts, first_seen and reasons carry on."""
    @abstractmethod
    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(sf_id, sobject, fields) per record written: fields merge into what was there."""
    @abstractmethod
    def size_by_kind(self) -> dict[str, int]: ...
    @abstractmethod
    def close(self) -> None: ...

    # -- errors, statements, transactions ---------------------------------------------------
    def in_transaction(self) -> bool:
        return bool(getattr(self._tx, "depth", 0))

    @contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        """Backend errors in the block leave as one StateUnavailable naming `action` (read/write);
        inside a transaction every failure is a failed write."""
        try:
            yield
        except StateUnavailable:
            raise
        except Exception as exc:
            failure = self._failure(exc, "write to" if self.in_transaction() else action)
            if failure is None:
                raise
            raise failure from exc

    def _query(self, q: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._failing("read"):
            return self._fetch(q, params)

    def _execute(self, q: str, params: Sequence[Any] = ()) -> int:
        with self._failing("write to"):
            return self._run(q, params)

    def _execute_many(self, q: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self._failing("write to"):
                self._run_many(q, rows)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; nested calls (and every store call on this thread) join the outer one."""
        if self.in_transaction():
            self._tx.depth += 1
            try:
                yield
            finally:
                self._tx.depth -= 1
            return
        with self._failing("write to"), self._transaction():
            self._tx.depth = 1
            try:
                yield
            finally:
                self._tx.depth = 0

    def _rows(self, table: str, key: str, values: Iterable[str]) -> dict[str, Row]:
        out: dict[str, Row] = {}
        for clause, params in self._in(R.unique(values)):
            for row in self._query(f"select * from {table} where {key} {clause}", params):
                out[row[key]] = row
        return out

    def _execute_in(self, template: str, values: Iterable[str]) -> int:
        """`template` with its `{in}` clause, once per chunk of `values`; rows touched."""
        return sum(self._execute(template.format(in_=clause), params) for clause, params in self._in(R.unique(values)))

    def _upsert(self, table: str, pk: tuple[str, ...], rows: list[Row]) -> None:
        """Insert rows, or update the given columns of existing ones (sqlite-utils' upsert)."""
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        known = R.COLUMNS[table]
        for cols, group in groups.items():
            unknown = [c for c in cols if c not in known]
            if unknown:     # column names are checked, so they can go into the statement as they are
                raise ValueError(f"{table} has no column {', '.join(unknown)}")
            rest = [c for c in cols if c not in pk]
            action = "do nothing" if not rest else "do update set " + ", ".join(f"{c} = excluded.{c}" for c in rest)
            self._execute_many(
                f"insert into {table} ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
                f" on conflict ({', '.join(pk)}) {action}",
                [tuple(int(v) if isinstance(v, bool) else v for v in (r[c] for c in cols)) for r in group])

    # -- the one write of a batch ------------------------------------------------------------
    def apply(self, changes: ChangeSet) -> None:
        """Everything one batch learned, in one transaction (all or nothing)."""
        try:
            with self.atomic():
                for event_id, fields in changes.events.items():
                    self.put_event(event_id, **fields)
                for event_id, table in changes.category_tables.items():
                    self.replace_categories(event_id, table)
                self.add_campaign_statuses(changes.statuses)
                self.put_people(changes.people)
                for old_id, sobject, new_id in changes.relinks:
                    # A merge or a conversion: the registrations and their memberships (which
                    # Salesforce moved with the record) now name the surviving record.
                    self.relink_person(old_id, sobject, new_id)
                self.put_members(changes.members)
                self.forget_members(changes.forgotten_members)
                self.forget_campaigns(changes.forgotten_campaigns)
                self.forget_people(changes.forgotten_people)
                self._put_records(changes.records)
                if changes.api_usage:
                    self.put_api_usage(*changes.api_usage)
                self.put_written(changes.written)
                self.put_resources(changes.resources)
                self.record_outcomes(changes.outcomes)
        except StateUnavailable as exc:
            raise StateUnavailable(f"{exc}; {NOTHING_LOST}", location=exc.location, cause=exc.cause) from exc

    def put_resources(self, rows: list[tuple[str, str, str]]) -> None:
        """(resource_key, content_hash, generated_at) for many resources in one statement.

        Conditional: a row is written only when its generated_at is not older than the stored
        one, so an older version never replaces a newer one (two replicas, a late redelivery).
        """
        # generated_at is integer microseconds (rows.TIME_COLUMNS): compared as a number.
        self._execute_many(
            "insert into resources (resource_key, content_hash, generated_at) values (?, ?, ?)"
            " on conflict (resource_key) do update set content_hash = excluded.content_hash,"
            " generated_at = excluded.generated_at"
            " where resources.generated_at is null or excluded.generated_at >= resources.generated_at",
            [(k, R.hash_in(h), R.time_in(g)) for k, h, g in rows])

    # -- engine reads ------------------------------------------------------------------------
    def resources(self, keys: Iterable[str]) -> dict[str, Row]:
        return {k: R.expand("resources", row) for k, row in self._rows("resources", "resource_key", keys).items()}

    def people(self, jomablue_ids: Iterable[str]) -> dict[str, Row]:
        return {k: R.expand("people", row) for k, row in self._rows("people", "jomablue_id", jomablue_ids).items()}

    def events(self, event_ids: Iterable[str]) -> dict[str, Row]:
        return {k: R.event_out(row) for k, row in self._rows("events", "event_id", event_ids).items()}

    def categories(self, event_id: str) -> dict[str, str]:
        return {r["category_id"]: r["name"] for r in self._query(
            "select category_id, name from categories where event_id = ?", [event_id])}

    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]:
        return {(r["campaign_id"], r["label"]) for clause, params in self._in(R.unique(campaign_ids))
                for r in self._query(f"select campaign_id, label from campaign_statuses where campaign_id {clause}",
                                     params)}

    def members(self, member_keys: Iterable[str]) -> dict[str, Row]:
        return {k: R.member_out(row) for k, row in self._rows("members", "member_key", member_keys).items()}

    def members_of_event(self, event_id: str) -> list[Row]:
        """The event's members with a CampaignMember (a category renamed reaches each). SQLite
        keeps no index on event_id (issue 18: ~46 bytes a member): this reads the members table
        once, about 0.13 s for a million members; PostgreSQL has its members_event_id index."""
        return [R.member_out(r) for r in self._query(
            f"select * from members where event_id = ? and cm_id is not null order by member_key {self.ORDER_BYTES}",
            [event_id])]

    def records(self, jomablue_ids: Iterable[str]) -> dict[str, Row]:
        return self._rows("records", "jomablue_id", jomablue_ids)

    # -- replicas: one process per store unless a backend says otherwise ---------------------
    def hold(self, keys: Iterable[str], shared: Iterable[str] = (), wait_seconds: float = 0) -> set[str]:
        """Every key: a store serving one process has no other holder (one run per SQLite file)."""
        return set(keys) | set(shared)

    def release_held(self) -> None:
        return None

    def campaign_lock(self, campaign_id: str) -> AbstractAsyncContextManager[None]:
        return nullcontext()

    def shared_call_limit(self, requests_per_second: float, max_in_flight: int) -> CallLimit | None:
        return None

    # -- granular writers (apply's parts; some serve reconcile --fix alone) --------------------
    def put_event(self, event_id: str, **fields: Any) -> None:
        self._upsert("events", ("event_id",), [{"event_id": event_id, **R.event_in(fields), "updated_at": R.now()}])

    def replace_categories(self, event_id: str, table: dict[str, str]) -> None:
        with self.atomic():
            self._execute("delete from categories where event_id = ?", [event_id])
            self._execute_many("insert into categories (event_id, category_id, name) values (?, ?, ?)",
                               [(event_id, k, v) for k, v in table.items()])

    def add_campaign_statuses(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._upsert("campaign_statuses", ("campaign_id", "label"),
                     [{"campaign_id": c, "label": label} for c, label in pairs])

    def put_people(self, rows: dict[str, Row]) -> None:
        self._upsert("people", ("jomablue_id",),
                     [R.compact("people", {"jomablue_id": jid, **fields}) for jid, fields in rows.items()])

    def forget_people(self, jomablue_ids: Iterable[str]) -> None:
        """Links to records deleted in Salesforce: the next delivery walks the ladder again."""
        self._execute_in("delete from people where jomablue_id {in_}", jomablue_ids)

    def relink_person_records(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        """A Lead was converted: every registration linked to it now points at the Contact."""
        self._execute("update people set sobject = ?, sf_id = ? where sf_id = ?", [sobject, new_sf_id, old_sf_id])

    def put_members(self, rows: dict[str, Row]) -> None:
        """Many member rows; each row carries every column."""
        self._upsert("members", ("member_key",), [R.member_in(k, f) for k, f in rows.items()])

    def put_member(self, member_key: str, **fields: Any) -> None:
        if "category_ids" in fields:
            fields["category_ids"] = R.dumps(fields["category_ids"]) if fields["category_ids"] is not None else None
        self._upsert("members", ("member_key",),
                     [R.compact("members", {"member_key": member_key, **fields})])

    def forget_members(self, member_keys: Iterable[str]) -> None:
        """Members deleted in Salesforce: the next write creates them again (upsert, not update by Id)."""
        self._execute_in("update members set cm_id = null, record_hash = null where member_key {in_}", member_keys)

    def forget_campaigns(self, campaign_ids: Iterable[str]) -> None:
        """Campaigns deleted in Salesforce (and their members with them): rebuild on the next delivery.

        The event's (or session's) link goes, its members lose their Ids, its statuses are no longer
        known, and the event message counts as not applied, so a re-sent one restores the details.
        """
        ids = R.unique(campaign_ids)
        if not ids:
            return
        with self.atomic():
            events = [r["event_id"] for clause, params in self._in(ids)
                      for r in self._query(f"select event_id from events where campaign_id {clause}", params)]
            self._execute_in("update events set campaign_id = null where campaign_id {in_}", ids)
            self._execute_in("delete from records where sf_id {in_}", ids)
            self._execute_in("update members set cm_id = null, record_hash = null where campaign_id {in_}", ids)
            self._execute_in("delete from campaign_statuses where campaign_id {in_}", ids)
            self._execute_in("delete from resources where resource_key {in_}", [f"event:{e}" for e in events])

    def put_record(self, jomablue_id: str, sobject: str, sf_id: str) -> None:
        self._put_records({jomablue_id: (sobject, sf_id)})

    def _put_records(self, records: dict[str, tuple[str, str]]) -> None:
        """jomablue_id -> (sobject, sf_id) for many records in one statement (a batch's, in apply)."""
        stamp = R.now()
        self._upsert("records", ("jomablue_id",),
                     [{"jomablue_id": jid, "sobject": sobject, "sf_id": sf_id, "updated_at": stamp}
                      for jid, (sobject, sf_id) in records.items()])

    def relink_person(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        """A person record was merged away (or converted): registrations and their memberships
        now name the surviving record, as Salesforce moved the memberships to it."""
        with self.atomic():
            self.relink_person_records(old_sf_id, sobject, new_sf_id)
            self._execute("update members set person_sf_id = ? where person_sf_id = ?", [new_sf_id, old_sf_id])

    # -- the console -------------------------------------------------------------------------
    def quarantined(self, message_keys: list[str] | None = None) -> list[Row]:
        if message_keys is None:
            return self._query("select * from messages where outcome = 'quarantined' order by first_seen")
        rows = self._rows("messages", "message_key", message_keys)
        return [r for r in rows.values() if r["outcome"] == "quarantined"]

    def drop_quarantined(self, message_key: str, *, reason: str, who: str) -> Row | None:
        """Discard a quarantined message for good: an audit row keeps who, why and when (and the
        body's sha256, not the body); the message no longer counts as quarantined nor replays.
        None when no quarantined message has that key."""
        with self.atomic():
            rows = self._query(f"select * from messages where message_key = ?{self.FOR_UPDATE}", [message_key])
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
            self._execute("update messages set outcome = 'dropped', body = null, last_seen = ? where message_key = ?",
                          [audit["dropped_at"], message_key])
        return audit

    def settle_replayed(self, replays: list[Row]) -> None:
        """Quarantined messages a replay recorded under another key settle their own row.

        A body quarantined before it could be parsed is keyed `sha256:<body hash>`, an imported
        line by its origin; once it parses, the engine records it under the message's real key,
        and the row replayed would stay quarantined for ever. Each of `replays` is {message_key
        (the row replayed), replayed_as (the key the engine recorded), outcome, reason, field,
        resource_type, resource_id, event_id}: the row takes the replay's outcome (its body goes,
        as any settled message's does); quarantined again, the message is now quarantined under
        its real key (which holds the body), so the row replayed becomes `replayed` and is not
        counted twice; a retry leaves it quarantined, to be replayed again.
        """
        rows = [{**{k: r.get(k) for k in ("resource_type", "resource_id", "event_id", "reason", "field")},
                 "message_key": r["message_key"],
                 "outcome": R.REPLAYED if r["outcome"] == "quarantined" else r["outcome"]}
                for r in replays if r["replayed_as"] != r["message_key"] and r["outcome"] != "retry"]
        if rows:
            with self.atomic():
                quarantined = {q["message_key"] for q in self.quarantined([r["message_key"] for r in rows])}
                self.record_outcomes([r for r in rows if r["message_key"] in quarantined])

    def dropped(self) -> list[Row]:
        return self._query("select * from dropped_messages order by dropped_at")

    def message_stats_by_event(self) -> dict[str, Row]:
        """Per event: quarantined messages now, and when the last message about it was seen."""
        return {r["event_id"]: {"quarantined": int(r["quarantined"] or 0), "last_message_at": r["last_seen"]}
                for r in self._query(
                    "select event_id, sum(case when outcome = 'quarantined' then 1 else 0 end) as quarantined,"
                    " max(last_seen) as last_seen from messages where event_id is not null group by event_id")}

    def outcome_counts(self) -> dict[str, int]:
        return {r["outcome"]: int(r["n"]) for r in self._query(
            f"select outcome, count(*) as n from messages group by outcome order by outcome {self.ORDER_BYTES}")}

    def all_events(self, event_id: str | None = None) -> list[Row]:
        if event_id is None:
            return self._query(f"select * from events order by event_id {self.ORDER_BYTES}")
        return self._query("select * from events where event_id = ?", [event_id])

    def all_members_of_events(self, event_ids: Iterable[str]) -> dict[str, list[Row]]:
        """Every member row of each event (each event's list ordered by member key), also those
        whose Salesforce record is known to be gone; one read per 500 events, not one per event:
        SQLite reads its members table once for each."""
        out: dict[str, list[Row]] = {e: [] for e in R.unique(event_ids)}
        for clause, params in self._in(list(out)):
            for r in self._query(f"select * from members where event_id {clause}"
                                 f" order by member_key {self.ORDER_BYTES}", params):
                out[r["event_id"]].append(R.member_out(r))
        return out

    def all_records(self) -> list[Row]:
        return self._query(f"select * from records order by jomablue_id {self.ORDER_BYTES}")

    def written(self, sf_ids: Iterable[str]) -> dict[str, Row]:
        return {k: R.written_out(row) for k, row in self._rows("written", "sf_id", sf_ids).items()}

    def size_bytes(self) -> int:
        return sum(self.size_by_kind().values())

    # -- runs and API usage -------------------------------------------------------------------
    def start_run(self) -> int:
        with self._failing("write to"):
            return int(self._fetch("insert into runs (started_at) values (?) returning id", [R.now()])[0]["id"])

    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        self._execute("update runs set finished_at = ?, exit_code = ?, summary = ? where id = ?",
                      [R.now(), exit_code, R.dumps(summary), run_id])

    def recent_runs(self, limit: int = 5) -> list[Row]:
        return [R.run_out(r) for r in self._query("select * from runs order by id desc limit ?", [limit])]

    def last_run(self) -> Row | None:
        runs = self.recent_runs(1)
        return runs[0] if runs else None

    def put_api_usage(self, used: int, max_: int) -> None:
        self._upsert("api_usage", ("id",), [{"id": 1, "used": used, "max": max_, "seen_at": R.now()}])

    def api_usage(self) -> Row | None:
        rows = self._query("select used, max, seen_at from api_usage where id = 1")
        return rows[0] if rows else None

    # -- the org's describes (preflight) ------------------------------------------------------
    def describes(self) -> dict[str, Row]:
        """sobject → {"describe": dict | None (object missing), "fetched_at": ISO time}."""
        return {r["sobject"]: {"describe": json.loads(r["describe"]), "fetched_at": r["fetched_at"]}
                for r in self._query("select sobject, describe, fetched_at from describe_cache")}

    def put_describes(self, describes: dict[str, dict[str, Any] | None]) -> None:
        """Replace the cached describes (all fetched together: one fetched_at)."""
        stamp = R.now()
        with self.atomic():
            self._execute("delete from describe_cache")
            # An upsert, not an insert: replicas starting together each replace the cache at once.
            self._upsert("describe_cache", ("sobject",),
                         [{"sobject": k, "describe": json.dumps(v, ensure_ascii=False), "fetched_at": stamp}
                          for k, v in describes.items()])

    # -- connector import: the archive objects finished (issue 20) ---------------------------
    def finished_imports(self, scopes: Iterable[str]) -> set[str]:
        """Object URIs an import finished under any of these scopes (its filters and mapping)."""
        return {str(r["object_uri"]) for clause, params in self._in(R.unique(scopes))
                for r in self._query(f"select object_uri from imported_objects where scope {clause}", params)}

    def put_finished_import(self, object_uri: str, scope: str, lines: int) -> None:
        self._upsert("imported_objects", ("object_uri", "scope"),
                     [{"object_uri": object_uri, "scope": scope, "lines": lines, "finished_at": R.now()}])

    # -- upkeep -------------------------------------------------------------------------------
    def setting(self, name: str, default: str) -> str:
        """The stored value of a setting; `default` is stored and returned the first time."""
        self._execute("insert into settings (name, value) values (?, ?) on conflict (name) do nothing",
                      [name, default])
        return str(self._query("select value from settings where name = ?", [name])[0]["value"])

    def prune(self, keep_days: float) -> int:
        """Delete outcome rows last seen more than keep_days ago (quarantined ones stay), and old runs.

        Returns the outcome rows deleted. Freed pages are reused by later writes, so the store
        stops growing once a keep_days window of messages is in it.
        """
        cut = R.cutoff(keep_days)
        with self.atomic():
            n = self._execute("delete from messages where last_seen < ? and outcome <> 'quarantined'", [cut])
            self._execute("delete from runs where started_at < ? and id < (select max(id) from runs)", [cut])
        return n

    def ping(self) -> None:
        """One trivial round trip (readiness probes); StateUnavailable when the store cannot answer."""
        self._query("select 1 as n")

