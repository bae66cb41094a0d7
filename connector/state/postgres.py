"""PostgreSQL state store (`state.url: postgresql://...`): the shared store for replicas.

The statements both backends share are in :class:`connector.state.sql.SqlStateStore` (the
contract tests in tests/state/ run against both); this module binds them to psycopg 3 with a
connection pool, and adds what replicas need:

- a transaction is one PostgreSQL transaction on one pooled connection, bound to the calling
  thread; every store call made inside it on that thread joins it, nested calls too;
- outcomes and the write journal merge in SQL, so two replicas writing one row both land;
- :meth:`hold` takes session advisory locks, one per resource key, on a dedicated connection,
  so two replicas never work on the same resource at once; :meth:`release_held` drops them;
- :meth:`campaign_lock` serialises one Campaign's member writes across replicas;
- restarts and failovers (issue 19): the pool checks a connection before lending it
  (psycopg_pool's ``check_connection``) and discards broken ones, a read that still meets a
  connection lost under it is tried once more on a fresh one, and the lock connection is
  opened again; a transaction cut off fails as one StateUnavailable with nothing half-written
  (the server rolls back what it had not committed).

Advisory lock keys hash the schema name with the key, so stores in different schemas of one
database never wait for each other. The schema comes from the URL's search_path
(`?options=-csearch_path%3Dconnector`); it is created when missing. Every connection of the
store is named `connector:<schema>` (application_name), so an operator sees whose it is.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from functools import lru_cache
from types import TracebackType
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from connector.errors import StateUnavailable
from connector.state import rows as R
from connector.state.base import CallLimit, Row
from connector.state.pg_migrations import apply_migrations, schema_name
from connector.state.sql import SqlStateStore, unavailable
from connector.state_failures import masked as redact  # the one password mask (also the CLI's)

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


@lru_cache(maxsize=256)
def _pg(q: str) -> str:
    """Shared SQL (`?` placeholders) in psycopg's spelling (`%s`; a literal % doubled)."""
    return q.replace("%", "%%").replace("?", "%s")


def _failure(location: str, exc: Exception, action: str) -> StateUnavailable | None:
    if not isinstance(exc, (psycopg.Error, PoolTimeout)):
        return None
    return unavailable(location, action, exc, disk_full=isinstance(exc, psycopg.errors.DiskFull))


class PostgresStateStore(SqlStateStore):
    """State in one PostgreSQL schema, shared by any number of connector processes."""

    ORDER_BYTES = 'collate "C"'
    FOR_UPDATE = " for update"

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 10) -> None:
        super().__init__()
        self.url = url
        self.location = redact(url)
        # Lock waits and refusals, for the benchmark and the run summary.
        self.lock_stats: Counter[str] = Counter()
        self._local = threading.local()
        self._locker: psycopg.Connection[Any] | None = None
        self._locker_mutex = threading.Lock()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn:
                apply_migrations(conn)
                self.application_name = f"connector:{schema_name(conn)}"[:63]
            self.pool = ConnectionPool(
                url, min_size=1, max_size=max(2, pool_size), open=False, name="connector-state",
                check=ConnectionPool.check_connection,
                kwargs={"autocommit": True, "row_factory": dict_row, "application_name": self.application_name})
            self.pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, PoolTimeout) as exc:
            raise unavailable(self.location, "open", exc) from exc

    def close(self) -> None:
        with self._locker_mutex:
            if self._locker is not None:
                self._locker.close()
                self._locker = None
        self.pool.close()

    # -- the driver -------------------------------------------------------------------------
    def _failure(self, exc: Exception, action: str) -> StateUnavailable | None:
        return _failure(self.location, exc, action)

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            yield joined
            return
        with self.pool.connection() as conn:
            yield conn

    def _fetch(self, q: str, params: Sequence[Any]) -> list[Row]:
        # A read outside a transaction is tried once more on a fresh connection when the one it
        # had was cut off (a restart or failover between the pool's check and the query).
        retry = not self.in_transaction() and q.lstrip().startswith("select")
        while True:
            try:
                with self._conn() as conn:
                    return list(conn.execute(_pg(q), params).fetchall())
            except psycopg.OperationalError:
                if not retry:
                    raise
                retry = False

    def _run(self, q: str, params: Sequence[Any]) -> int:
        with self._conn() as conn:
            return conn.execute(_pg(q), params).rowcount

    def _run_many(self, q: str, rows: list[tuple[Any, ...]]) -> None:
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(_pg(q), rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None

    def _in(self, values: list[str]) -> Iterator[tuple[str, list[Any]]]:
        if values:
            yield "= any(?::text[])", [values]

    # -- what PostgreSQL does its own way -----------------------------------------------------
    def record_outcomes(self, rows: list[dict[str, Any]]) -> None:
        """Many outcomes at once; attempts and first_seen carry on in SQL, so replicas cannot lose a count."""
        stamp = R.now()
        cols = R.COLUMNS["messages"]
        carried = {"message_key", "attempts", "first_seen", "reasons"}
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in carried)
        # One statement per row, in order: a key twice in one call counts two attempts.
        self._execute_many(
            f"insert into messages as m ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
            f" on conflict (message_key) do update set {sets}, attempts = m.attempts + 1,"
            f" first_seen = m.first_seen, reasons = {_REASONS_SQL}",
            [tuple(R.outcome_row(r, None, stamp)[c] for c in cols) for r in rows])

    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(sf_id, sobject, fields) per record written: fields merge into what was there (a later
        value wins; None means the field was cleared).

        The merge with the stored fields happens in SQL (jsonb ||), so two replicas writing one
        record's fields at once both land. The stored text is jsonb's rendering of the same
        object (its key order, not SQLite's); readers get the same dict from :meth:`written`.
        """
        merged: dict[str, tuple[str, dict[str, Any]]] = {}
        for sf_id, sobject, fields in rows:
            merged[sf_id] = (sobject, {**(merged[sf_id][1] if sf_id in merged else {}), **fields})
        self._execute_many(
            "insert into written as w (sf_id, sobject, fields) values (?, ?, ?)"
            " on conflict (sf_id) do update set sobject = excluded.sobject,"
            " fields = (coalesce(w.fields, '{}')::jsonb || excluded.fields::jsonb)::text",
            [(k, sobject, R.dumps(fields)) for k, (sobject, fields) in merged.items()])

    def size_by_kind(self) -> dict[str, int]:
        """Bytes per table of this store's schema: the table, its indexes and its TOAST."""
        return {r["kind"]: int(r["n"]) for r in self._query(
            "select c.relname as kind, pg_total_relation_size(c.oid) as n from pg_class c"
            " join pg_namespace s on s.oid = c.relnamespace where s.nspname = current_schema() and c.relkind = 'r'"
            f" order by c.relname {self.ORDER_BYTES}")}

    # -- replicas ---------------------------------------------------------------------------
    def shared_call_limit(self, requests_per_second: float, max_in_flight: int) -> CallLimit | None:
        """One rate limit and in-flight cap for every replica, kept in this store (README: Replicas)."""
        from connector.state.shared_limit import SharedCallLimit

        return SharedCallLimit(self.pool, requests_per_second, max_in_flight)

    def _on_locker(self, q: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A statement on the lock connection (caller holds _locker_mutex), opened again when it was
        lost: a lost connection lost its locks with it, so a batch simply takes them again."""
        with self._failing("lock keys in"):
            for attempt in (1, 2):
                if self._locker is None or self._locker.closed or self._locker.broken:
                    self._locker = psycopg.connect(self.url, autocommit=True, application_name=self.application_name)
                try:
                    return list(self._locker.execute(q, params).fetchall())
                except psycopg.OperationalError:
                    if attempt == 2 or not self._locker.broken:
                        raise
        raise AssertionError("unreachable")

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
                got = {r[0] for r in self._on_locker(_HOLD_SQL, [wanted, reads])}
                if len(got) < len(wanted) + len(reads) and not last:
                    self._on_locker(_UNHOLD_SQL, [[k for k in wanted if k in got], [k for k in reads if k in got]])
            if last or len(got) == len(wanted) + len(reads):
                break
            waited = True
            time.sleep(random.uniform(0.03, 0.07))
        self.lock_stats["hold_waits"] += waited
        self.lock_stats["held"] += len(got)
        self.lock_stats["refused"] += len(wanted) + len(reads) - len(got)
        return got

    def release_held(self) -> None:
        """Let every hold go (campaign locks are released by their own blocks before this); a lock
        connection that was lost took its locks with it."""
        with self._locker_mutex:
            self._unlock("select pg_advisory_unlock_all()", ())

    def _unlock(self, q: str, params: Sequence[Any]) -> None:
        """An unlock on the lock connection (caller holds _locker_mutex). A connection found lost
        here took its locks with it: that is the unlock done, not an error to report."""
        conn = self._locker
        if conn is None or conn.closed or conn.broken:
            return
        try:
            with self._failing("unlock in"):
                conn.execute(q, params)
        except StateUnavailable:
            if not conn.broken:
                raise

    def campaign_lock(self, campaign_id: str) -> AbstractAsyncContextManager[None]:
        """Held (``async with``) only while that Campaign's members are written."""
        return _CampaignLock(self, campaign_id)


class _CampaignLock(AbstractAsyncContextManager[None]):
    """A session advisory lock on one Campaign, on the store's lock connection.

    Entered with `async with` from the engine's event loop. It polls (every 20-50 ms)
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
            [row] = self.store._on_locker(f"select pg_try_advisory_lock({_CAMPAIGN_KEY})", [self.campaign_id])
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
            self.store._unlock(f"select pg_advisory_unlock({_CAMPAIGN_KEY})", [self.campaign_id])

    async def __aenter__(self) -> None:
        while not await asyncio.to_thread(self._try):
            await asyncio.sleep(random.uniform(*self.POLL_SECONDS))
        self._count()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self._release)
