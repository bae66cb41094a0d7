"""Keeping the state store small while a run goes on: prune at start, then every hour.

The runner starts :func:`prune_periodically` as a task next to its receive loop and cancels it
when the run ends; pruning runs in a worker thread, so the loop keeps receiving meanwhile. With
replicas on PostgreSQL every replica prunes: the deletes are idempotent and cheap (an index on
`last_seen`), so no coordination is needed.
"""

from __future__ import annotations

import asyncio

from connector import logs
from connector.state.base import Upkeep

PRUNE_EVERY_SECONDS = 3600.0


async def prune_periodically(state: Upkeep, keep_days: float, every: float = PRUNE_EVERY_SECONDS) -> None:
    """prune(keep_days) now and every `every` seconds until cancelled; a failure is logged, never fatal."""
    log = logs.get()
    while True:
        try:
            deleted = await asyncio.to_thread(state.prune, keep_days)
            if deleted:
                log.info("state_pruned", deleted=deleted, keep_days=keep_days)
        except Exception as exc:  # noqa: BLE001 - upkeep must not stop the run
            log.warning("state_prune_failed", error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(every)
