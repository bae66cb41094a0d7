"""The replicas' collector lease on the PostgreSQL store they share (connector/collector.py says
how replicas take turns): a session-level advisory lock on a connection of its own."""

from __future__ import annotations

from typing import Any

import psycopg

from connector import logs

# The lease's advisory-lock key: the store's schema and the queue URL, hashed to a bigint.
_KEY = "hashtextextended(coalesce(current_schema(), '') || ':collector:' || %s, 0)"


class PgLease:
    """The lease as a session-level advisory lock on a connection of its own.

    (`current_schema()` is null until the store has created its schema, and the lock functions
    do nothing on a null key: hence the coalesce.)
    """

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.log = logs.get()
        self._conn: Any = None
        self._held = False
        self._unavailable = False       # warned once per outage, not once per batch

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True)
            self._held = False          # a new session holds nothing
        return self._conn

    def acquire(self, wait_seconds: float) -> bool:
        try:
            conn = self._connection()
            conn.execute(f"set lock_timeout = '{max(1, int(wait_seconds * 1000))}ms'")
            conn.execute(f"select pg_advisory_lock({_KEY})", (self.name,))
        except psycopg.errors.LockNotAvailable:
            return False
        except psycopg.Error as exc:
            # The store is unreachable: receiving anyway is safe (the holds decide what is applied),
            # and the batch's own state access will stop the run if the store stays down.
            if not self._unavailable:
                self._unavailable = True
                self.log.warning("collector_lease_unavailable", reason=str(exc).strip().splitlines()[0] if str(exc)
                                 else type(exc).__name__, note="this replica receives without the lease")
            self._drop()
            return True
        self._unavailable = False
        self._held = True
        return True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            self._conn.execute(f"select pg_advisory_unlock({_KEY})", (self.name,))
        except psycopg.Error:
            self._drop()                # the session is gone, and its lock with it

    def close(self) -> None:
        self.release()
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._held = False
