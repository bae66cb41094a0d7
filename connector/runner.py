"""The run loop: gather → engine → delete, with visibility heartbeats and clean shutdown.

A message leaves SQS only after the engine returned its outcome, which happens after Salesforce
confirmed the writes and the state store committed them (or after it was quarantined with its
body). On StopRun (budget, Salesforce or SQS down) or SIGTERM, messages held but not finished
are released at once (visibility 0) so the next run can take them. How a batch is gathered
(drain, batching window, dry-run pass) lives in :mod:`connector.gather`.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector import logs
from connector.collector import lease_for
from connector.config import SqsConfig
from connector.errors import BudgetExhausted, FatalError, StateUnavailable, StopRun, StorageFull
from connector.gather import Gatherer, Held, log_failures
from connector.queue import Queue
from connector.state_failures import as_unavailable, is_backend_error, write_failed
from connector.sync.engine import SyncEngine
from connector.sync.model import Inbound, Outcome

EXIT_OK, EXIT_FATAL, EXIT_CONFIG, EXIT_STOPPED = 0, 1, 2, 75
RETRY_BACKOFF_SECONDS = 30
HELD_BACKOFF_SECONDS = 2
PROGRESS_LOG_SECONDS = 60


def stop_reason(exc: StopRun, *, taken: bool = True) -> str:
    """Why a run stopped early (exit 75), as an admin reads it in the run summary and the exit line.

    `taken`: messages had been received (False: the run stopped before taking any).
    """
    if isinstance(exc, StorageFull):
        # STORAGE_LIMIT_EXCEEDED: the org's data storage allocation is used up; every create fails
        # until an admin frees space (Salesforce Help, "Data and File Storage Allocations";
        # SOAP API Developer Guide, "StatusCode": STORAGE_LIMIT_EXCEEDED).
        kept = "every message not yet synced stays in the queue" if taken else "no message was taken"
        code = exc.code or "STORAGE_LIMIT_EXCEEDED"
        return (f"the Salesforce org's data storage is full (Salesforce answered {code}):"
                f" an admin must free space or raise the limit in Setup → Storage Usage; {kept}, and the next run"
                " after that continues")
    if isinstance(exc, StateUnavailable):
        return str(exc) if "nothing was lost" in str(exc) else write_failed(exc, exc.location, taken=taken)
    return str(exc)


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
                 config_path: str = "CONFIG", on_batch: Any = None,
                 clock: Callable[[], float] = time.monotonic, state_location: str = "") -> None:
        self.engine = engine
        self.queue = queue
        self.sqs = sqs
        self.drain = drain
        self.max_messages = max_messages
        self.max_seconds = max_seconds
        self.config_path = config_path
        self.on_batch = on_batch   # progress display (the demo)
        self.state_location = state_location   # how a state failure names the store (password masked)
        self.metrics: Any = None   # connector.metrics.RunMetrics: told of every iteration, pause and batch
        # Without --drain the connector is a service: it waits out an outage or a spent budget.
        self._last_progress = time.monotonic()
        self.outage_pause_seconds = 60.0
        self.budget_pause_seconds = 900.0
        self.stop = asyncio.Event()
        self.log = logs.get()
        self.result = RunResult(EXIT_OK)
        self._retries_pending = 0
        self.clock = clock
        self.held = Held(queue, sqs.visibility_timeout)
        self.gatherer = Gatherer(queue, sqs, self.held, self.stop, drain=drain, dry_run=engine.dry_run, clock=clock,
                                 lease=lease_for(engine.state, sqs.queue_url) if not drain else None)

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
        self.queue.interrupt()      # cut an SQS back-off short

    def _log_outcome(self, ib: Inbound, o: Outcome) -> None:
        fields: dict[str, Any] = {
            "message_id": o.message_key or ib.sqs_message_id, "sqs_message_id": ib.sqs_message_id,
            "outcome": f"would_{o.status}" if o.planned else o.status,
            "resource_type": o.resource_type, "resource_id": o.resource_id, "event_id": o.event_id,
        }
        if o.reason:
            fields["reason"] = o.reason
        if o.field:
            fields["field"] = o.field
        for k in ("match", "member", "skip", "candidates", "pending_categories", "adopted", "not_updated", "plan"):
            if k in o.detail:
                fields[k] = o.detail[k]
        if o.status == "quarantined":
            fields["replay"] = f"connector replay --config {self.config_path} --message-id {o.message_key}"
            self.log.warning("message", **fields)
        else:
            self.log.info("message", **fields)

    async def run(self) -> RunResult:
        started = self.clock()
        beat = asyncio.create_task(self.held.heartbeat())
        try:
            await self._loop(started)
        finally:
            beat.cancel()
            await asyncio.to_thread(self.gatherer.close)    # replicas: the collector lease goes on
            # Whatever is still held (a dry run's pass, a stop mid-gather) is visible again at once.
            await self.held.release()
        self.result.counts.update(self.gatherer.counts)
        if self.result.exit_code == EXIT_OK and self.drain and self._retries_pending:
            self.result.exit_code = EXIT_STOPPED
            self.result.reason = f"{self._retries_pending} messages left in the queue to retry"
        if self.result.exit_code == EXIT_OK and self.drain and not self.gatherer.receives_ok and not self.stop.is_set():
            # An empty queue and an unusable one must not look the same.
            self.result.exit_code = EXIT_STOPPED
            self.result.reason = "no receive from the queue succeeded"
        guard = self.engine.gateway.guard
        if guard.used is not None and guard.max and not self.engine.dry_run:
            # What the run saw last, also when it stopped on the budget before any commit.
            self.engine.state.put_api_usage(guard.used, guard.max)
        self.result.seconds = self.clock() - started
        self.result.api_calls = self.engine.gateway.stats.calls
        return self.result

    async def _loop(self, started: float) -> None:
        received = 0
        while not self.stop.is_set():
            if self.metrics:
                self.metrics.iteration()      # liveness: the loop came round
            if self.max_seconds is not None and self.clock() - started >= self.max_seconds:
                break
            if self.max_messages is not None and received >= self.max_messages:
                break
            budget = self.sqs.batch_messages
            if self.max_messages is not None:
                budget = min(budget, self.max_messages - received)
            try:
                batch = await self.gatherer.gather(budget)
                if self.stop.is_set():
                    await self.held.release(batch)
                    break
                if not batch:
                    if self.drain or self.engine.dry_run:    # a dry run ends when its pass does
                        break
                    continue
                # The budget is checked once there is work: a budget that is spent after the last
                # message was handled is a clean drain (exit 0), not "stopped early".
                await self._budget_allows(batch)
                received += len(batch)
                await self._process(batch)
            except StopRun as exc:
                if self.drain or self.engine.dry_run:
                    self.result.exit_code, self.result.reason = EXIT_STOPPED, stop_reason(exc)
                    break
                await self._pause(exc)      # a long-running service waits instead of exiting
            except FatalError as exc:
                self.log.error("fatal", reason=str(exc))
                self.result.exit_code, self.result.reason = EXIT_FATAL, str(exc)
                break

    async def _budget_allows(self, batch: list[Any]) -> None:
        """StopRun (the batch released) when the daily budget is spent; a reading that says so is
        checked once with Salesforce (/limits, one call past the guard) before giving up: the org's
        limit may have been raised, or the rolling 24 h window may have room again."""
        guard = self.engine.gateway.guard
        await self.engine.gateway.recheck_spent_budget()   # only a reading an earlier run stored
        try:
            guard.check()
        except StopRun:
            await self.held.release(batch)
            raise

    async def _pause(self, exc: StopRun) -> None:
        """Salesforce or SQS down, or the budget spent: wait (interruptibly), then look again."""
        # A full org waits as long as a spent budget: an admin has to act, a minute will not do.
        long = isinstance(exc, BudgetExhausted | StorageFull)
        seconds = self.budget_pause_seconds if long else self.outage_pause_seconds
        self.log.warning("paused", reason=stop_reason(exc), seconds=seconds)
        if self.metrics:
            self.metrics.pausing(seconds)
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
        began = time.monotonic()
        try:
            started = self.clock()
            outcomes = await self.engine.process(batch)
            self.gatherer.note_batch_seconds(self.clock() - started)     # sqs.max_lag_seconds sizes the window
        except BaseException as exc:
            await self.held.release(batch)
            if isinstance(exc, Exception) and is_backend_error(exc) and not isinstance(exc, StateUnavailable):
                # The batch's transaction did not commit: its messages are released, nothing lost.
                raise as_unavailable(exc, self.state_location) from exc
            raise
        done = [ib for ib, o in zip(batch, outcomes, strict=True) if o.leaves_queue]
        later = [ib for ib, o in zip(batch, outcomes, strict=True) if not o.leaves_queue]
        queue_fatal = None
        if not self.engine.dry_run:
            # A dry run keeps its messages held until the pass ends (run() releases them).
            self.held.drop(batch)
            failed = await asyncio.to_thread(self.queue.delete, [ib.handle for ib in done]) if done else []
            log_failures(self.log, "delete_failed", failed,
                         note="will be redelivered; the state store makes the repeat cost nothing")
            queue_fatal = next((f for f in failed if f.fatal), None)
            for ib, o in zip(batch, outcomes, strict=True):
                if o.leaves_queue:
                    continue
                # Held by another replica: back in a moment, once that replica has committed.
                delay = HELD_BACKOFF_SECONDS if o.detail.get("retry") == "held" else \
                    min(43200, RETRY_BACKOFF_SECONDS * ib.receive_count)
                failed = await asyncio.to_thread(self.queue.change_visibility, [ib.handle], delay)
                log_failures(self.log, "retry_delay_failed", failed, note="visible again at its visibility timeout")
        self._retries_pending += len(later)
        self.result.notes += self.engine.notes      # the engine keeps only its last batch's
        for ib, o in zip(batch, outcomes, strict=True):
            self.result.counts[o.label] += 1
            if o.planned:
                self.result.plans.append((o.message_key or ib.sqs_message_id, o.label, o.detail.get("plan") or
                                          ([o.reason] if o.reason else [])))
            self._log_outcome(ib, o)
        if self.metrics:
            self.metrics.batch(batch, outcomes, time.monotonic() - began)
        if self.on_batch:
            self.on_batch(self.result.counts)
        if time.monotonic() - self._last_progress >= PROGRESS_LOG_SECONDS:
            # A long-running service says how it is doing every minute, not only at the end.
            self._last_progress = time.monotonic()
            self.log.info("progress", counts=dict(self.result.counts), api_calls=self.engine.gateway.stats.calls,
                          api_usage=f"{self.engine.gateway.guard.used}/{self.engine.gateway.guard.max}")
        if queue_fatal is not None:
            # The batch is committed and its messages stay queued; a queue that refuses deletes
            # (deleted, or access denied) cannot be consumed, so the run stops here.
            raise FatalError(f"SQS queue {getattr(self.queue, 'url', '')}: {queue_fatal.code} on delete_message_batch")
