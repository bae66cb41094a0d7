"""Live mode: a producer publishes registrations at a fixed rate while the runner consumes as a service.

For each rate and each `sqs.batch_window_seconds` setting, on a fresh emulator (answering every
call in `latency_ms`) and a fresh state store: the event is synced first (setup, not measured),
then a producer thread publishes new registrations for `duration` seconds while
`Runner(drain=False)` (service mode, the connector's default SQS and Salesforce settings) consumes.
When the producer is done and the queue is empty the runner is stopped. Reported: API calls per
1,000 messages (gateway.stats), and the lag from publish to the moment the engine's batch
returned (Salesforce confirmed, state committed), p50/p99/max.

The queue is the in-memory one with SQS long polling added (LongPollQueue): a receive on an empty
queue waits up to `wait_seconds` and returns as soon as a message is there, as SQS does.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harness import (
    HAS_WINDOW,
    CallMeter,
    TimedEngine,
    default_batch_messages,
    drain,
    kinds,
    md_table,
    per_k,
    pipeline_config,
    start_emulator,
)
from traffic import BASE_TIME, CATEGORIES, dumps, event_payload, registration

from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.sync.model import Inbound
from connector.wiring import wire

DRAIN_GRACE_SECONDS = 120      # after the producer stops, how long the runner may take to catch up


@dataclass
class LongPollQueue(MemoryQueue):
    """MemoryQueue whose receive honours wait_seconds the way SQS long polling does."""

    empty_receives: int = 0
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def send(self, body: str) -> str:
        mid = super().send(body)
        with self._arrived:
            self._arrived.notify_all()
        return mid

    def close(self) -> None:
        """Wake any waiting receive (the bench is stopping the runner)."""
        with self._arrived:
            self._closed = True
            self._arrived.notify_all()

    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]:
        deadline = time.monotonic() + wait_seconds
        with self._arrived:   # held while looking, so a send between look and wait is not missed
            while True:
                got = super().receive(max_messages, 0, visibility_timeout)
                left = deadline - time.monotonic()
                if got or self._closed or left <= 0:
                    if not got:
                        self.empty_receives += 1
                    return got
                # Bounded wait: a message can also become visible again when its visibility ends.
                self._arrived.wait(timeout=min(left, 0.5))


@dataclass
class LiveResult:
    rate: float
    window: float | None
    max_lag: float | None = None
    published: int = 0
    processed: int = 0
    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    receives: int = 0
    empty_receives: int = 0
    left_in_queue: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def pct(self, q: float) -> float:
        if not self.lags:
            return float("nan")
        s = sorted(self.lags)
        return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]

    def window_label(self) -> str:
        if self.max_lag is not None:
            return f"max_lag_seconds {self.max_lag:g}"
        return f"{self.window:g} s" if HAS_WINDOW and self.window is not None else "none (today's runner)"

    def row(self) -> list[Any]:
        mean = statistics.fmean(self.batch_sizes) if self.batch_sizes else 0.0
        return [f"{self.rate:g}/s", self.window_label(), self.published, self.calls, per_k(self.calls, self.published),
                round(self.pct(0.5), 2), round(self.pct(0.99), 2), round(max(self.lags, default=0), 2),
                len(self.batch_sizes), round(mean, 1), round(self.receives / max(self.seconds, 1e-9), 1),
                self.empty_receives, self.left_in_queue,
                kinds(self.by_kind)]

    def as_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "window": self.window if HAS_WINDOW else None, "max_lag": self.max_lag,
                "published": self.published,
                "processed": self.processed, "api_calls": self.calls,
                "calls_per_1000": per_k(self.calls, self.published), "calls_by_kind": self.by_kind,
                "lag_p50": self.pct(0.5), "lag_p99": self.pct(0.99), "lag_max": max(self.lags, default=None),
                "batches": len(self.batch_sizes), "batch_sizes": self.batch_sizes, "receives": self.receives,
                "empty_receives": self.empty_receives, "left_in_queue": self.left_in_queue,
                "seconds": round(self.seconds, 1), "outcomes": self.outcomes}


def _producer(q: LongPollQueue, bodies: list[str], rate: float, published: dict[str, float]) -> None:
    """Publish bodies[i] at t0 + i/rate, noting each one's publish time by message id."""
    t0 = time.monotonic()
    for i, body in enumerate(bodies):
        pause = t0 + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        at = time.monotonic()
        published[q.send(body)] = at


def run_one(latency_ms: int, rate: float, window: float | None, duration: float, first_pid: int,
            wait_seconds: int = 20, batch_messages: int | None = None, max_lag: float | None = None) -> LiveResult:
    res = LiveResult(rate, window, max_lag)
    emu = start_emulator(latency_ms)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as d:
        wired = wire(pipeline_config(emu, d, wait_seconds=wait_seconds, window=window, fast_limiter=False,
                                     batch_messages=batch_messages, max_lag=max_lag))
        try:
            ev = event_payload(1, CATEGORIES, BASE_TIME)
            drain(wired, [dumps(ev)])
            n = int(rate * duration)
            bodies = [dumps(registration(ev, first_pid + k, BASE_TIME + timedelta(days=1, seconds=k / rate)))
                      for k in range(n)]
            q = LongPollQueue()
            published: dict[str, float] = {}

            def on_done(inbounds: list[Inbound], outcomes: list[Any], at: float) -> None:
                for ib, o in zip(inbounds, outcomes, strict=True):
                    if getattr(o, "leaves_queue", True) and ib.sqs_message_id in published:
                        res.lags.append(at - published[ib.sqs_message_id])

            engine = TimedEngine(wired.engine, on_done)
            runner = Runner(engine, q, wired.cfg.sqs, drain=False)  # type: ignore[arg-type]
            producer = threading.Thread(target=_producer, args=(q, bodies, rate, published), daemon=True)

            async def watch() -> None:
                """Stop the service once everything published has left the queue."""
                limit = time.monotonic() + duration + DRAIN_GRACE_SECONDS
                while (producer.is_alive() or len(q)) and time.monotonic() < limit:
                    await asyncio.sleep(0.05)
                runner.stop.set()
                q.close()

            async def service() -> Any:
                watcher = asyncio.create_task(watch())
                out = await runner.run()
                await watcher
                return out

            meter = CallMeter(wired.gateway)
            t0 = time.monotonic()
            producer.start()
            run_result = asyncio.run(service())
            res.seconds = time.monotonic() - t0
            calls = meter.read()
            res.published, res.processed = len(published), len(res.lags)
            res.calls, res.by_kind = calls.total, calls.by_kind
            res.batch_sizes = engine.batch_sizes
            res.receives, res.empty_receives = q.receive_calls, q.empty_receives
            res.left_in_queue = len(q)
            res.outcomes = dict(sorted(run_result.counts.items()))
        finally:
            wired.state.close()
            emu.stop()
    return res


def run_live(latency_ms: int, duration: float, rates: list[float], windows: list[float], seed: int,
             wait_seconds: int = 20, batch_messages: int | None = None,
             max_lags: tuple[float, ...] = ()) -> tuple[str, dict[str, Any]]:
    """One row per rate and window, then one per rate and `sqs.max_lag_seconds` value."""
    del seed   # the traffic is deterministic by person id
    if not HAS_WINDOW:
        print("  sqs.batch_window_seconds is not a config key yet: one run per rate (today's runner)", flush=True)
        windows = windows[:1]
    results: list[LiveResult] = []
    pid = 6_000_000
    settings: list[tuple[float | None, float | None]] = [(w, None) for w in windows] + [(None, m) for m in max_lags]
    for rate in rates:
        for window, max_lag in settings:
            r = run_one(latency_ms, rate, window, duration, pid, wait_seconds, batch_messages, max_lag)
            pid += int(rate * duration) + 1
            results.append(r)
            print(f"  {rate:g}/s window {r.window_label()}: {r.published} published, {r.calls} calls "
                  f"({per_k(r.calls, r.published)}/1k), lag p50 {r.pct(0.5):.2f} s p99 {r.pct(0.99):.2f} s, "
                  f"{len(r.batch_sizes)} batches", flush=True)
    head = ["rate", "window", "messages", "API calls", "calls/1k", "lag p50 s", "lag p99 s", "lag max s",
            "batches", "mean batch", "receives/s", "empty receives", "left in queue", "calls by kind"]
    md = ("## Live: producer at a fixed rate, runner in service mode\n\n"
          f"Producer {duration:g} s per row; emulator answers every call in {latency_ms} ms; sqs.wait_seconds "
          f"{wait_seconds}, batch_messages {batch_messages or default_batch_messages()}, otherwise the connector's "
          "defaults (requests_per_second 5, max_in_flight 2); lag = publish → "
          "the engine's batch returned.\n\n" + md_table(head, [r.row() for r in results]) + "\n")
    return md, {"duration": duration, "latency_ms": latency_ms, "wait_seconds": wait_seconds,
                "batch_messages": batch_messages, "runs": [r.as_dict() for r in results]}
