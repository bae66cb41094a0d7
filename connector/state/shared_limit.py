"""One Salesforce call budget for all replicas: `requests_per_second` and `max_in_flight` hold
for every connector process sharing a PostgreSQL state store, not for each one.

The gateway awaits :meth:`SharedCallLimit.slot` around each call when `state.url` is set (with
SQLite, one process runs, and its local aiolimiter and semaphore are the whole budget).

- **In flight**: one of `max_in_flight` slots, each a session advisory lock taken on a pooled
  connection held for the call. A replica that dies mid-call loses its connection and so its
  slot; nothing needs cleaning up. When all slots are taken, callers poll every 20-40 ms.
- **Rate**: a token bucket row refilled from the database server's clock (one clock for every
  replica, so no skew), with a capacity of one token: no burst, the same smooth ceiling as the
  single-process limiter. Each call runs one UPDATE ... RETURNING that *reserves* the next
  free instant: tokens = min(1, tokens + elapsed × rate) − 1. A result ≥ 0 means go now;
  −k means k calls are already booked ahead, so wait k / rate seconds. Callers queue in
  the order they reached the row, with one round trip each and no polling.

So with R replicas and `requests_per_second: r`, the org sees at most r calls a second and at
most `max_in_flight` concurrent calls in total, whatever R is; each replica gets about r / R
calls a second while all are busy, and all of r when it is the only one with work.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import ConnectionPool

_SLOT_NS = "hashtext(current_schema() || ':in-flight:' || %s)"
_RESERVE = """
insert into call_budget as b (name, tokens, updated_at) values (%s, 0, clock_timestamp())
on conflict (name) do update set
    tokens = least(1.0, b.tokens + extract(epoch from excluded.updated_at - b.updated_at) * %s) - 1,
    updated_at = excluded.updated_at
returning tokens
"""


class SharedCallLimit:
    """The per-second rate and the in-flight cap, kept in the PostgreSQL state store."""

    def __init__(self, pool: ConnectionPool, requests_per_second: float, max_in_flight: int,
                 name: str = "salesforce") -> None:
        self.pool = pool
        self.rate = float(requests_per_second)
        self.max_in_flight = int(max_in_flight)
        self.name = name
        # Waits for a slot or a token, for the benchmark and the run summary.
        self.stats: Counter[str] = Counter()

    def _try_slot(self, conn: Any, start: int) -> int:
        row = conn.execute(f"select connector_take_slot({_SLOT_NS}, %s, %s) as slot",
                           [self.name, self.max_in_flight, start]).fetchone()
        return int(row["slot"] if isinstance(row, dict) else row[0])

    def _release_slot(self, conn: Any, slot: int) -> None:
        try:
            conn.execute(f"select pg_advisory_unlock({_SLOT_NS}, %s)", [self.name, slot])
        finally:
            self.pool.putconn(conn)

    def _reserve(self, conn: Any) -> float:
        """Seconds to wait before this call may go (0: now)."""
        row = conn.execute(_RESERVE, [self.name, self.rate]).fetchone()
        tokens = float(row["tokens"] if isinstance(row, dict) else row[0])
        return -tokens / self.rate if tokens < 0 else 0.0

    async def _take_slot(self) -> tuple[Any, int]:
        conn = await asyncio.to_thread(self.pool.getconn)
        start = random.randrange(self.max_in_flight)
        waited_since = None
        try:
            while True:
                slot = await asyncio.to_thread(self._try_slot, conn, start)
                if slot >= 0:
                    break
                if waited_since is None:
                    waited_since = time.monotonic()
                    self.stats["slot_waits"] += 1
                await asyncio.sleep(random.uniform(0.02, 0.04))
        except BaseException:
            self.pool.putconn(conn)
            raise
        if waited_since is not None:
            self.stats["slot_wait_ms"] += int((time.monotonic() - waited_since) * 1000)
        return conn, slot

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the shared in-flight slots and one rate token for one API call."""
        conn, slot = await self._take_slot()
        try:
            wait = await asyncio.to_thread(self._reserve, conn)
            if wait > 0:
                self.stats["rate_waits"] += 1
                self.stats["rate_wait_ms"] += int(wait * 1000)
                await asyncio.sleep(wait)
            yield
        finally:
            await asyncio.to_thread(self._release_slot, conn, slot)
