"""How fast and how much: one limiter, one in-flight cap, the daily budget guard, call counts.

Salesforce answers no 429 and sends no Retry-After; an org that is pushed past its daily
allocation refuses every caller with REQUEST_LIMIT_EXCEEDED "TotalRequests Limit exceeded."
(REST API Developer Guide, "Status Codes and Error Responses"). So the connector paces itself:
a smooth rate, a small number of calls in flight (long-running requests count against the
org's concurrency limit: App Limits cheatsheet, "API Request Limits and Allocations"), and a
guard fed by the `Sforce-Limit-Info: api-usage=used/max` header of every response (REST API
Developer Guide, "Limit Info Header").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiolimiter import AsyncLimiter

from connector.errors import BudgetExhausted


@dataclass
class UsageGuard:
    """The daily API budget: stop taking work once used/max reaches the configured fraction."""

    fraction: float
    used: int | None = None
    max: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The reading came from the state store (an earlier run), not from Salesforce in this run.
    from_store: bool = False

    def observe(self, used: int, max_: int) -> None:
        with self._lock:
            self.used, self.max = used, max_
            self.from_store = False

    def exhausted(self) -> bool:
        with self._lock:
            return self.max is not None and self.max > 0 and self.used is not None \
                and self.used >= self.fraction * self.max

    def check(self) -> None:
        if self.exhausted():
            raise BudgetExhausted(
                f"daily API budget reached: {self.used}/{self.max} calls used, "
                f"budget {self.fraction:.0%}; messages stay queued"
            )


@dataclass
class CallStats:
    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    # (kind, HTTP status) -> calls, for the metrics: "2xx" answered, "transport" no HTTP answer.
    by_kind_status: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, kind: str, failure: BaseException | None = None) -> None:
        self.calls += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        status = "2xx" if failure is None else str(getattr(failure, "status", None) or "transport")
        self.by_kind_status[(kind, status)] = self.by_kind_status.get((kind, status), 0) + 1


class Pacer:
    """The rate and the in-flight cap every call waits for.

    `shared_limit` (connector/state/shared_limit.py, replicas on one PostgreSQL store) replaces
    the local rate with one for all replicas together: ``async with shared_limit.slot()``.
    """

    def __init__(self, requests_per_second: float, max_in_flight: int, shared_limit: Any = None) -> None:
        self.requests_per_second = requests_per_second
        self.max_in_flight = max_in_flight
        self.shared_limit = shared_limit
        self._limiter: AsyncLimiter | None = None
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _primitives(self) -> tuple[AsyncLimiter, asyncio.Semaphore]:
        # Created lazily so they bind to the running event loop (a new loop gets new ones).
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._sem is None or self._loop is not loop:
            self._loop = loop
            # A bucket of one token per period: a smooth ceiling, no initial burst.
            self._limiter = AsyncLimiter(1, 1.0 / self.requests_per_second)
            self._sem = asyncio.Semaphore(self.max_in_flight)
        return self._limiter, self._sem

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        limiter, sem = self._primitives()
        async with sem:
            if self.shared_limit is not None:
                async with self.shared_limit.slot():
                    yield
            else:
                await limiter.acquire()
                yield
