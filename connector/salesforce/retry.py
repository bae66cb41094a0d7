"""When to try again: the same request after a TransientError, and the rows a collection left.

Salesforce sends no Retry-After (REST API Developer Guide, "Status Codes and Error Responses"),
so waits are exponential with full jitter (tenacity's ``wait_random_exponential``), bounded by
`attempts`; what still fails after them stops the run with its messages kept
(SalesforceUnavailable, a StopRun).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from connector.errors import SalesforceUnavailable, TransientError
from connector.salesforce.pacing import CallStats

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_wait: float = 0.5
    max_wait: float = 30

    async def run(self, attempt: Callable[[], Awaitable[T]], stats: CallStats) -> T:
        """`attempt()` until it does not raise TransientError, at most `attempts` times."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_random_exponential(multiplier=self.base_wait, max=self.max_wait),
            stop=stop_after_attempt(self.attempts),
            reraise=False,
        )
        try:
            async for state in retrying:
                with state:
                    if state.retry_state.attempt_number > 1:
                        stats.retries += 1
                    return await attempt()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise SalesforceUnavailable(
                f"Salesforce kept failing after {self.attempts} attempts: {last}; messages stay queued"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def pause_rows(self, round_: int) -> None:
        """The wait before sending a collection's locked rows again (round 0, 1, ...)."""
        await asyncio.sleep(min(self.max_wait, self.base_wait * 2**round_) * random.uniform(0.5, 1.0))
