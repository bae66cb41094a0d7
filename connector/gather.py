"""Gathering a batch from the queue, and keeping what this run holds invisible.

Three ways to gather, chosen by how the run was started:

- ``--drain`` (backlogs, scheduled containers): as fast as possible. One poll, then parallel
  receives while they come back full; the batch ends at the first thin receive.
- service mode (no ``--drain``): a batching window. After the first message arrives, keep
  receiving until the batch is full (``sqs.batch_messages``) or that message has waited
  ``sqs.batch_window_seconds`` (or the window ``sqs.max_lag_seconds`` leaves once the recent
  batch time is taken off), or until its stream goes quiet (no message for ten of its mean
  gaps: :func:`quiet_seconds`): live traffic then costs per batch, not per trickle. An empty
  queue is long-polled (at least MIN_SERVICE_WAIT_SECONDS a poll, whatever the config says).
- service mode with replicas (PostgreSQL state): while the queue is short, one replica at a time
  collects (:mod:`connector.collector`); on a backlog every replica receives.
- ``--dry-run``: one pass over the queue. Every message is received at most once and held
  (invisible) until the pass ends, so SQS cannot hand it out again in the same pass; a message
  seen twice means the pass came round; an empty receive means every message has been seen.
  The runner releases everything at the end (visibility 0). Near the dead-letter queue: see
  :meth:`Gatherer._dry_filter`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from connector import logs
from connector.collector import Lease, Turns
from connector.config import SqsConfig
from connector.queue import Failed, Queue
from connector.sync.model import Inbound

MIN_SERVICE_WAIT_SECONDS = 1   # an empty queue costs at most one receive a second, never a spin
DRY_RUN_WAIT_SECONDS = 1       # a 1 s long poll asks every SQS server; a short poll samples a few
WINDOW_PACE_SECONDS = 0.5      # inside a batching window, at most two receives a second
# A live batch this big is as cheap as it gets: its people (two collections of 200) and members
# (two more) and the statuses they need (one) fill the five collections one /composite takes
# (connector/sync/together.py), so waiting for more adds lag and, past it, calls.
LIVE_BATCH_MESSAGES = 400
# A window also closes when the stream it is gathering goes quiet: no message for QUIET_GAPS times
# the window's mean gap between arrivals (at least QUIET_MIN_SECONDS, SQS waits in whole seconds).
# For Poisson arrivals a gap that long has odds e**-10 (about 1 in 22,000), so a steady stream is
# never cut short; the end of a burst (a registration rush, a session's check-ins) is not held for
# the rest of the window, which only added lag to every message in it.
QUIET_GAPS = 10
QUIET_MIN_SECONDS = 1
BATCH_TIME_WEIGHT = 0.3        # sqs.max_lag_seconds: the newest batch's share of the recent batch time


def quiet_seconds(messages: int, elapsed: float) -> int:
    """How long a window waits for the next message before calling its stream quiet: QUIET_GAPS
    mean gaps of the arrivals so far (`messages` in the `elapsed` seconds from the window's
    opening to the latest arrival; whole seconds, at least QUIET_MIN_SECONDS)."""
    rate = max(messages, 1) / max(elapsed, WINDOW_PACE_SECONDS)      # a window holds one at least
    return max(QUIET_MIN_SECONDS, math.ceil(QUIET_GAPS / rate))


def key_of(m: Inbound) -> str:
    return m.sqs_message_id or str(m.handle)


def log_failures(log: Any, event: str, failed: list[Failed], **extra: Any) -> None:
    """One warning per error code: how many entries, which code; SQS redelivers them."""
    by_code = Counter(f.code for f in failed)
    for code, n in by_code.items():
        log.warning(event, count=n, error_code=code, **extra)


class Held:
    """Messages this run holds invisible; one heartbeat keeps them so until deleted or released."""

    def __init__(self, queue: Queue, visibility_timeout: int) -> None:
        self.queue = queue
        self.visibility_timeout = visibility_timeout
        self.handles: dict[str, Any] = {}
        self.log = logs.get()

    def add(self, msgs: list[Inbound]) -> None:
        for m in msgs:
            self.handles[key_of(m)] = m.handle

    def drop(self, msgs: list[Inbound]) -> None:
        for m in msgs:
            self.handles.pop(key_of(m), None)

    async def heartbeat(self) -> None:
        # A third of the timeout: two beats can fail before a held message shows again.
        period = max(1.0, self.visibility_timeout / 3)
        while True:
            await asyncio.sleep(period)
            handles = list(self.handles.values())
            if handles:
                failed = await asyncio.to_thread(self.queue.change_visibility, handles, self.visibility_timeout)
                log_failures(self.log, "visibility_extend_failed", failed,
                             note="the message may be received again; the state store makes a repeat cost nothing")

    async def release(self, msgs: list[Inbound] | None = None) -> None:
        """Visible again at once (stop, dry run's end, engine failure): the next run can take them."""
        handles = [m.handle for m in msgs] if msgs is not None else list(self.handles.values())
        if msgs is not None:
            self.drop(msgs)
        else:
            self.handles.clear()
        if handles:
            failed = await asyncio.to_thread(self.queue.change_visibility, handles, 0)
            log_failures(self.log, "release_failed", failed,
                         note="visible again when the visibility timeout ends")


class Gatherer:
    def __init__(self, queue: Queue, sqs: SqsConfig, held: Held, stop: asyncio.Event, *, drain: bool,
                 dry_run: bool, clock: Callable[[], float] = time.monotonic, lease: Lease | None = None) -> None:
        self.queue = queue
        self.sqs = sqs
        self.held = held
        self.stop = stop
        self.drain = drain
        self.dry_run = dry_run
        self.clock = clock
        self.log = logs.get()
        self.receives_ok = 0            # --drain reports success only after one of these
        self.counts: Counter[str] = Counter()
        # Dry run: one pass.
        self.seen: set[str] = set()
        self.pass_over = False
        self.max_receive_count: int | None = None
        self._policy_read = False
        # Replicas in service mode on a shared store take turns while the queue is short.
        self.batch_seconds: float | None = None     # recent engine time per batch (the runner notes it)
        self.heard = 0.0                            # when a receive last brought messages
        self.turns = (Turns(lease, queue, sqs.batch_messages, sleep=self._virtual_sleep())
                      if lease is not None and not drain and not dry_run else None)

    async def receive(self, n: int, wait: int) -> list[Inbound]:
        msgs = await asyncio.to_thread(self.queue.receive, n, wait, self.sqs.visibility_timeout)
        self.receives_ok += 1
        self.held.add(msgs)
        if msgs:
            self.heard = self.clock()       # the stream's last sign of life (quiet_seconds)
        return msgs

    async def gather(self, budget: int) -> list[Inbound]:
        if self.dry_run:
            return await self._gather_dry(budget)
        if self.drain:
            return _unique(await self._gather_fast(budget, self.sqs.wait_seconds))
        if self.turns is not None and not await self.turns.may_receive():
            return []                       # another replica collects: look again in a moment
        window = self.window_seconds()
        if window <= 0:
            batch = await self._gather_fast(budget, max(MIN_SERVICE_WAIT_SECONDS, self.sqs.wait_seconds))
        else:
            batch = await self._gather_window(budget, window)
        if self.turns is not None:
            self.turns.after_gather(len(batch), budget)
        return _unique(batch)

    def note_batch_seconds(self, seconds: float) -> None:
        w = BATCH_TIME_WEIGHT
        self.batch_seconds = seconds if self.batch_seconds is None else (1 - w) * self.batch_seconds + w * seconds

    def window_seconds(self) -> float:
        """`sqs.batch_window_seconds`, or what `sqs.max_lag_seconds` leaves for the window.

        The oldest message of a batch arrived just after the previous gather ended: it waited
        for the previous batch to be processed, then the window, then its own batch. So the
        window is the target minus twice the recent batch time (and the last receive's pace).
        """
        lag = self.sqs.max_lag_seconds
        if lag is None:
            return self.sqs.batch_window_seconds
        return max(0.0, lag - 2 * (self.batch_seconds or 0.0) - WINDOW_PACE_SECONDS)

    def close(self) -> None:
        """The run ends: hand the collector lease on."""
        if self.turns is not None:
            self.turns.close()

    async def _gather_fast(self, budget: int, first_wait: int) -> list[Inbound]:
        """Up to `budget` messages: one poll, then parallel receives while the backlog lasts."""
        first = await self.receive(min(10, budget), first_wait)
        batch = list(first)
        if len(first) == 10:
            batch.extend(await self._backlog(budget - len(batch)))
        return batch

    async def _backlog(self, budget: int, deadline: float | None = None) -> list[Inbound]:
        """Parallel receives while every one comes back full (a window's burst: never past its
        `deadline`, where a receive that finds nothing would otherwise wait its second out)."""
        batch: list[Inbound] = []
        while len(batch) < budget and not self.stop.is_set():
            want = min(self.sqs.parallel_receives, -(-(budget - len(batch)) // 10))
            # A short poll (wait 0) samples only some SQS servers and can come back thin while the
            # backlog is large; a 1 s long poll asks them all and costs little when the queue is dry.
            follow_wait = min(1, self.sqs.wait_seconds)
            if deadline is not None:
                follow_wait = min(follow_wait, max(0, int(deadline - self.clock())))
            # Each receive asks for its own share: together never more than the budget (a live
            # batch past LIVE_BATCH_MESSAGES would need a third people collection and a call more).
            left = budget - len(batch)
            rounds = await asyncio.gather(*(self.receive(min(10, left - 10 * i), follow_wait) for i in range(want)))
            batch.extend(m for r in rounds for m in r)
            if sum(len(r) for r in rounds) < 10 * want:
                break
        return batch

    async def _gather_window(self, budget: int, window: float) -> list[Inbound]:
        """Service mode: hold the first messages up to the window for a fuller, cheaper batch.

        A queue that is already deep when the window opens (the first receives come back full) is
        a backlog: taken up to the budget at once. Otherwise the batch is live traffic, and the
        window closes early once it fills one combined call (LIVE_BATCH_MESSAGES): more would add
        lag and, past it, calls.
        """
        batch = await self.receive(min(10, budget), max(MIN_SERVICE_WAIT_SECONDS, self.sqs.wait_seconds))
        if not batch:
            return []
        opened = self.clock()
        deadline = opened + window
        if len(batch) == 10:                # a backlog: no need to wait for it
            batch.extend(await self._backlog(budget - len(batch)))
        limit = max(len(batch), min(budget, LIVE_BATCH_MESSAGES))
        full = False
        while len(batch) < limit and not self.stop.is_set():
            if full:                        # a burst inside the window: take it now, up to the limit
                batch.extend(await self._backlog(limit - len(batch), deadline))
                full = False
                continue
            left = deadline - self.clock()
            quiet = quiet_seconds(len(batch), self.heard - opened)     # the rate while it was arriving
            if left <= 0 or self.clock() - self.heard >= quiet:
                break                       # the window is over, or its stream went quiet
            # SQS answers a long poll as soon as one message is there: a short pause first lets
            # several arrive, so one receive brings them together (fewer receives, same lag).
            await self._sleep(min(left, WINDOW_PACE_SECONDS))
            left = deadline - self.clock()
            if left < 1:
                # WaitTimeSeconds is whole seconds: wait out the rest, then one last short poll.
                await self._sleep(left)
                got = await self.receive(min(10, limit - len(batch)), 0)
                batch.extend(got)
                if len(got) < 10:
                    break
                full = True                 # a burst after all: take it now
                continue
            # A long poll no longer than the window's rest, nor than it takes to call the stream quiet.
            silent = max(1, math.ceil(quiet - (self.clock() - self.heard)))
            got = await self.receive(min(10, limit - len(batch)), min(20, int(left), silent))
            batch.extend(got)
            full = len(got) == 10
        return batch

    def _virtual_sleep(self) -> Callable[[float], Any] | None:
        """With virtual time, a refused lease moves the clock by the wait it stands for."""
        return self._sleep if getattr(self.clock, "advance", None) is not None else None

    async def _sleep(self, seconds: float) -> None:
        advance = getattr(self.clock, "advance", None)     # virtual time (tests): move it on
        if advance is not None:
            advance(seconds)
            await asyncio.sleep(0)
        elif seconds > 0:
            await asyncio.sleep(seconds)

    # -- dry run: one pass ----------------------------------------------------------------
    async def _gather_dry(self, budget: int) -> list[Inbound]:
        if not self._policy_read:
            self._policy_read = True
            self.max_receive_count = await asyncio.to_thread(self.queue.max_receive_count)
        batch: list[Inbound] = []
        # One receive at a time (no parallel receives): should a message turn out to have had its
        # last delivery taken, the pass stops having taken at most ten.
        while len(batch) < budget and not self.pass_over and not self.stop.is_set():
            got = await self.receive(min(10, budget - len(batch)), DRY_RUN_WAIT_SECONDS)
            if not got:
                self.pass_over = True       # every message is held, or was never there
                break
            batch.extend(self._dry_filter(got))
            if len(got) < 10 and batch:
                break                       # plan what there is; the next gather goes on
        return batch

    def _dry_filter(self, got: list[Inbound]) -> list[Inbound]:
        """Keep the messages this pass has not seen and that are not near the dead-letter queue.

        SQS tells a message's receive count (k) only in the answer to a receive, and that count
        already includes this receive; SQS moves a message to the DLQ, instead of delivering it,
        on the first receive after k reached maxReceiveCount (N). A dry run cannot look without
        receiving, so what it does is:

        - receive each message at most once per pass, and hold it (invisible, heartbeat) until
          the pass ends, when all are released at once: released straight away, a message would
          come back in the same pass and be counted again;
        - k = N-1: the message has one real delivery left. It is not planned; a warning names it.
        - k >= N: this receive took its last delivery (its next receive moves it to the DLQ). It
          is not planned, the warning says so, and the pass stops so no other message loses its
          last delivery (a backlog's messages tend to share a count).
        """
        keep: list[Inbound] = []
        n = self.max_receive_count
        for m in got:
            key = key_of(m)
            if key in self.seen:
                # Shown again: its hold lapsed or SQS delivered it twice. Either way the pass came
                # round; planning it again would only count it twice.
                self.pass_over = True
                self.counts["dry_run_seen_again"] += 1
                continue
            self.seen.add(key)
            if n is not None and m.receive_count >= n - 1:
                last = m.receive_count >= n
                self.counts["dry_run_last_delivery" if last else "dry_run_near_dlq"] += 1
                self.log.warning(
                    "dry_run_last_delivery" if last else "dry_run_near_dlq", sqs_message_id=m.sqs_message_id,
                    receive_count=m.receive_count, max_receive_count=n,
                    note=("its next receive moves it to the dead-letter queue; not planned; the dry run stops here"
                          if last else "one delivery left; not planned; released at the end of the pass"))
                if last:
                    self.pass_over = True
                continue
            keep.append(m)
        return keep


def _unique(batch: list[Inbound]) -> list[Inbound]:
    """SQS may hand one message out twice (at-least-once): keep one handle per message id, the latest."""
    seen: dict[str, Inbound] = {}
    for m in batch:
        seen[key_of(m)] = m
    return list(seen.values())
