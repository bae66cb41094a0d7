"""The run loop: receive → engine → delete, with visibility heartbeats and clean shutdown.

A message leaves SQS only after the engine returned its outcome, which happens after Salesforce
confirmed the writes and the state store committed them (or after it was quarantined with its
body). On StopRun (budget, Salesforce down) or SIGTERM, messages held but not finished are
released at once (visibility 0) so the next run can take them.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connector import logs
from connector.config import SqsConfig
from connector.errors import BudgetExhausted, FatalError, StopRun, TransientError
from connector.queue import Queue
from connector.sync.engine import SyncEngine
from connector.sync.model import Inbound, Outcome

EXIT_OK, EXIT_FATAL, EXIT_CONFIG, EXIT_STOPPED = 0, 1, 2, 75
RETRY_BACKOFF_SECONDS = 30
PROGRESS_LOG_SECONDS = 60


@dataclass
class RunResult:
    exit_code: int
    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0
    api_calls: int = 0
    plans: list[tuple[str, str, list[str]]] = field(default_factory=list)   # dry run: per message

    def summary(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "counts": dict(self.counts), "notes": self.notes,
                "reason": self.reason, "seconds": round(self.seconds, 3), "api_calls": self.api_calls}


class Runner:
    def __init__(self, engine: SyncEngine, queue: Queue, sqs: SqsConfig, *, drain: bool = False,
                 max_messages: int | None = None, max_seconds: float | None = None,
                 config_path: str = "CONFIG", on_batch: Any = None) -> None:
        self.engine = engine
        self.queue = queue
        self.sqs = sqs
        self.drain = drain
        self.max_messages = max_messages
        self.max_seconds = max_seconds
        self.config_path = config_path
        self.on_batch = on_batch   # progress display (the demo)
        # Without --drain the connector is a service: it waits out an outage or a spent budget.
        self._last_progress = time.monotonic()
        self.outage_pause_seconds = 60.0
        self.budget_pause_seconds = 900.0
        self.stop = asyncio.Event()
        self.log = logs.get()
        self.result = RunResult(EXIT_OK)
        self._retries_pending = 0

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop receiving; only the main thread can own signals (tests run others)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        self.log.info("stop_requested", signal=signal.Signals(sig).name)
        self.stop.set()

    async def _receive(self, n: int, wait: int) -> list[Inbound]:
        try:
            return await asyncio.to_thread(self.queue.receive, n, wait, self.sqs.visibility_timeout)
        except TransientError as exc:
            self.log.warning("receive_failed", error=str(exc))
            await asyncio.sleep(1)
            return []

    async def _gather(self, budget: int) -> list[Inbound]:
        """Up to `budget` messages: one long poll, then parallel receives while the backlog lasts."""
        first = await self._receive(min(10, budget), self.sqs.wait_seconds)
        batch = list(first)
        while len(batch) < budget and len(first) == 10 and not self.stop.is_set():
            want = min(self.sqs.parallel_receives, -(-(budget - len(batch)) // 10))
            # A short poll (wait 0) samples only some SQS servers and can come back thin while the
            # backlog is large; a 1 s long poll asks them all and costs little when the queue is dry.
            follow_wait = min(1, self.sqs.wait_seconds)
            rounds = await asyncio.gather(*(self._receive(min(10, budget - len(batch)), follow_wait)
                                            for _ in range(want)))
            got = [m for r in rounds for m in r]
            batch.extend(got)
            if sum(len(r) for r in rounds) < 10 * want:
                break
        # SQS may hand one message out twice (at-least-once): keep one handle per message id.
        seen: dict[str, Inbound] = {}
        for m in batch:
            seen[m.sqs_message_id or str(m.handle)] = m
        return list(seen.values())

    async def _heartbeat(self, handles: list[Any]) -> None:
        """Keep held messages invisible while Salesforce works on them."""
        period = max(1.0, self.sqs.visibility_timeout / 3)
        while True:
            await asyncio.sleep(period)
            await asyncio.to_thread(self.queue.change_visibility, handles, self.sqs.visibility_timeout)

    async def _release(self, batch: list[Inbound]) -> None:
        if batch:
            await asyncio.to_thread(self.queue.change_visibility, [m.handle for m in batch], 0)

    def _log_outcome(self, ib: Inbound, o: Outcome) -> None:
        fields: dict[str, Any] = {
            "message_id": o.message_key or ib.sqs_message_id, "sqs_message_id": ib.sqs_message_id,
            "outcome": f"would_{o.status}" if o.planned else o.status, "resource_type": o.resource_type, "resource_id": o.resource_id,
            "event_id": o.event_id,
        }
        if o.reason:
            fields["reason"] = o.reason
        if o.field:
            fields["field"] = o.field
        for k in ("match", "member", "skip", "candidates", "pending_categories", "adopted", "plan"):
            if k in o.detail:
                fields[k] = o.detail[k]
        if o.status == "quarantined":
            fields["replay"] = f"connector replay --config {self.config_path} --message-id {o.message_key}"
            self.log.warning("message", **fields)
        else:
            self.log.info("message", **fields)

    async def run(self) -> RunResult:
        started = time.monotonic()
        received = 0
        while not self.stop.is_set():
            if self.max_seconds is not None and time.monotonic() - started >= self.max_seconds:
                break
            if self.max_messages is not None and received >= self.max_messages:
                break
            budget = self.sqs.batch_messages
            if self.max_messages is not None:
                budget = min(budget, self.max_messages - received)
            try:
                self.engine.gateway.guard.check()
                batch = await self._gather(budget)
                if self.stop.is_set():
                    await self._release(batch)
                    break
                if not batch:
                    if self.drain:
                        break
                    continue
                received += len(batch)
                await self._process(batch)
            except StopRun as exc:
                if self.drain:
                    self.result.exit_code, self.result.reason = EXIT_STOPPED, str(exc)
                    break
                await self._pause(exc)      # a long-running service waits instead of exiting
            except FatalError as exc:
                self.result.exit_code, self.result.reason = EXIT_FATAL, str(exc)
                break
        if self.result.exit_code == EXIT_OK and self.drain and self._retries_pending:
            self.result.exit_code = EXIT_STOPPED
            self.result.reason = f"{self._retries_pending} messages left in the queue to retry"
        guard = self.engine.gateway.guard
        if guard.used is not None and guard.max and not self.engine.dry_run:
            # What the run saw last, also when it stopped on the budget before any commit.
            self.engine.state.put_api_usage(guard.used, guard.max)
        self.result.seconds = time.monotonic() - started
        self.result.notes = self.engine.notes
        self.result.api_calls = self.engine.gateway.stats.calls
        return self.result

    async def _pause(self, exc: StopRun) -> None:
        """Salesforce down or the budget spent: wait (interruptibly), then look again."""
        seconds = self.budget_pause_seconds if isinstance(exc, BudgetExhausted) else self.outage_pause_seconds
        self.log.warning("paused", reason=str(exc), seconds=seconds)
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            pass
        if isinstance(exc, BudgetExhausted) and not self.stop.is_set():
            try:
                # One call that is allowed past the guard: has the rolling 24 h usage come down?
                await self.engine.gateway.limits(bypass_guard=True)
            except StopRun as again:
                self.log.warning("still_paused", reason=str(again))

    async def _process(self, batch: list[Inbound]) -> None:
        beat = asyncio.create_task(self._heartbeat([m.handle for m in batch]))
        try:
            outcomes = await self.engine.process(batch)
        except BaseException:
            beat.cancel()
            await self._release(batch)
            raise
        beat.cancel()
        done = [ib.handle for ib, o in zip(batch, outcomes, strict=True) if o.leaves_queue]
        later = [ib for ib, o in zip(batch, outcomes, strict=True) if not o.leaves_queue]
        if not self.engine.dry_run:
            failed = await asyncio.to_thread(self.queue.delete, done) if done else []
            if failed:
                self.log.warning("delete_failed", count=len(failed),
                                 note="will be redelivered; the state store makes the repeat cost nothing")
            for ib in later:
                await asyncio.to_thread(self.queue.change_visibility, [ib.handle],
                                        min(43200, RETRY_BACKOFF_SECONDS * ib.receive_count))
        else:
            await self._release(batch)
        self._retries_pending += len(later)
        for ib, o in zip(batch, outcomes, strict=True):
            self.result.counts[o.label] += 1
            if o.planned:
                self.result.plans.append((o.message_key or ib.sqs_message_id, o.label, o.detail.get("plan") or
                                          ([o.reason] if o.reason else [])))
            self._log_outcome(ib, o)
        if self.on_batch:
            self.on_batch(self.result.counts)
        if time.monotonic() - self._last_progress >= PROGRESS_LOG_SECONDS:
            # A long-running service says how it is doing every minute, not only at the end.
            self._last_progress = time.monotonic()
            self.log.info("progress", counts=dict(self.result.counts), api_calls=self.engine.gateway.stats.calls,
                          api_usage=f"{self.engine.gateway.guard.used}/{self.engine.gateway.guard.max}")
