"""Replicas on a short queue take turns collecting; on a deep one they all receive.

Why: in service mode each replica gathers with the batching window, and a batch of new people
costs a fixed number of calls whatever its size. Three replicas each waiting their own window
over a third of a live event's traffic make three times the batches, so three times the calls
(issue 18 measured 26.7 → 80.0 calls per 1,000 at 20 messages a second). So while the queue is
short, one replica at a time collects: it holds the *collector lease*, gathers one batch with the
window, processes it, and hands the lease on at its next gather. The others wait for the lease
instead of receiving. A queue deeper than a full batch is a backlog one replica would fall behind
on: then every replica receives without the lease, until its batch comes back short.

The lease is a PostgreSQL session-level advisory lock (`pg_advisory_lock`) on a dedicated
connection of the store the replicas already share; its key hashes the store's schema with the
queue URL, so other stores and queues on the same server never meet it. The waiters block in
`pg_advisory_lock` with a `lock_timeout`, so when the holder unlocks, PostgreSQL grants the lock
to the longest waiter at once (its lock queue is first-come first-served) and the former holder
queues behind the others: turns, without a gap. A replica that dies or loses its connection
loses its lease with the session ("Advisory Locks", PostgreSQL documentation §13.3.5,
https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS; `lock_timeout`:
https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT).

Nothing of the guarantees rests on the lease: it only decides who receives. Two replicas that
both receive (a lost connection, a deep queue) are what the store's per-resource holds already
make safe. With SQLite (one run per state file) there is no lease and nothing changes; neither in
`--drain` nor in a dry run, which are one run each.

The queue's depth is SQS `ApproximateNumberOfMessages` (messages available to receive:
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html),
read by a waiter each time its wait for the lease times out, so at most once every
LEASE_WAIT_SECONDS per replica; SQS requests are not Salesforce API calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any, Protocol

from connector import logs

LEASE_WAIT_SECONDS = 2.0     # how long a waiter blocks on the lease before it looks at the queue's depth


class Lease(Protocol):
    """The collector lease: one holder at a time among the replicas of one queue."""

    def acquire(self, wait_seconds: float) -> bool:
        """Block up to `wait_seconds` for the lease (in a worker thread); True when held."""

    def release(self) -> None:
        """Hand the lease on (to the longest waiter)."""

    def close(self) -> None:
        """Release and let the resources go."""


class LocalLease:
    """The lease among replicas of one process (threads): for tests and in-process benchmarks.

    Each replica takes its own handle (:meth:`handle`). As with PostgreSQL's lock queue, a
    release grants the lease to the longest waiter. A handle waits up to the given seconds, or,
    with `blocking` False (virtual time in tests), answers at once and stays in the queue until
    it is granted the lease or closed, leaving the waiting to the caller's clock.
    """

    def __init__(self, *, blocking: bool = True) -> None:
        self.blocking = blocking
        self.cond = threading.Condition()
        self.holder: LocalLeaseHandle | None = None
        self.waiting: deque[LocalLeaseHandle] = deque()
        self.turns: list[int] = []          # which handle took the lease, in order
        self.handles = 0

    def handle(self) -> LocalLeaseHandle:
        self.handles += 1
        return LocalLeaseHandle(self, self.handles - 1)


class LocalLeaseHandle:
    def __init__(self, shared: LocalLease, number: int) -> None:
        self.shared = shared
        self.number = number

    def acquire(self, wait_seconds: float) -> bool:
        shared = self.shared
        with shared.cond:
            if shared.holder is None and not shared.waiting:
                self._take()
            elif shared.holder is not self:
                if self not in shared.waiting:
                    shared.waiting.append(self)
                if shared.blocking and not shared.cond.wait_for(lambda: shared.holder is self, timeout=wait_seconds):
                    shared.waiting.remove(self)     # a timed-out waiter leaves the queue
            return shared.holder is self

    def _take(self) -> None:
        self.shared.holder = self
        self.shared.turns.append(self.number)

    def release(self) -> None:
        shared = self.shared
        with shared.cond:
            if shared.holder is self:
                shared.holder = None
                if shared.waiting:
                    shared.waiting.popleft()._take()
                shared.cond.notify_all()

    def close(self) -> None:
        with self.shared.cond:
            if self in self.shared.waiting:
                self.shared.waiting.remove(self)
        self.release()


def lease_for(state: Any, queue_url: str) -> Lease | None:
    """The collector lease for replicas sharing `state`: PostgreSQL only (SQLite is one run a file)."""
    url = getattr(state, "url", None)
    if isinstance(url, str) and url.startswith(("postgresql:", "postgres:")):
        from connector.state.lease import PgLease  # the PostgreSQL driver stays in connector/state/

        return PgLease(url, queue_url)
    return None


class Turns:
    """Before each service-mode gather: may this replica receive? (See the module docstring.)"""

    def __init__(self, lease: Lease, queue: Any, deep_at: int, *, wait_seconds: float = LEASE_WAIT_SECONDS,
                 sleep: Any = None) -> None:
        self.lease = lease
        self.queue = queue
        self.deep_at = deep_at          # a queue this deep is a backlog: every replica receives
        self.wait_seconds = wait_seconds
        self.sleep = sleep              # virtual time (tests): called with the wait a refused lease took
        self.holding = False
        self.deep = False
        self.log = logs.get()
        self.stats = {"turns": 0, "waits": 0, "deep": 0}
        self._depth_warned = False
        self._turn_started: str | None = None

    async def may_receive(self) -> bool:
        if self.deep:
            return True                 # the last batch came back full: the backlog goes on
        if self.holding:
            await self._hand_on()       # our batch is done: the next waiter collects
        if await asyncio.to_thread(self.lease.acquire, self.wait_seconds):
            self.holding = True
            self.stats["turns"] += 1
            self._turn_started = _now_iso()
            return True
        if self.sleep is not None:
            await self.sleep(self.wait_seconds)
        self.stats["waits"] += 1
        depth = await asyncio.to_thread(self._depth)
        if depth is not None and depth >= self.deep_at:
            self.deep = True
            self.stats["deep"] += 1
            self.log.info("collector_deep_queue", depth=depth, deep_at=self.deep_at,
                          note="a backlog: this replica receives too until its batch comes back short")
            return True
        return False

    def _depth(self) -> int | None:
        read = getattr(self.queue, "approximate_depth", None)
        if read is None:
            return None
        try:
            return int(read())
        except Exception as exc:  # noqa: BLE001 - access denied, a deleted queue: the receive will say so
            if not self._depth_warned:
                self._depth_warned = True
                self.log.warning("queue_depth_unreadable", reason=str(exc) or type(exc).__name__,
                                 note="replicas take turns until one's batch comes back full")
            return None

    def after_gather(self, received: int, budget: int) -> None:
        """A full batch: the queue is deep, keep receiving without waiting for the lease."""
        self.deep = received >= budget

    async def _hand_on(self) -> None:
        self._log_turn()
        await asyncio.to_thread(self.lease.release)

    def _log_turn(self) -> None:
        # One line a turn (a batch): which replica collected, from when to when. `ended` is read
        # before the unlock, so two replicas' logged turns never overlap.
        self.holding = False
        self.log.info("collector_turn", started=self._turn_started, ended=_now_iso())

    def close(self) -> None:
        if self.holding:
            self._log_turn()
        self.lease.close()



def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
