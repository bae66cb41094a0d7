"""A backlog at a real org's latency: wall time, messages a second, and the day's API budget.

One event and `n` new registrations (the costliest backlog per message: every person needs the
lookup, the person write and the member write) are drained through the real pipeline with the
connector's default settings (batches of 1,000, 5 requests a second, 2 in flight, daily budget
80 % of the org's allocation), against the emulator in a child process answering every call
after 20, 100 or 300 ms. The emulator's org allows 100,000 calls a day: a default Enterprise
org's allocation before per-licence additions (100,000 + 1,000 per Salesforce licence,
"API Request Limits and Allocations",
https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm).

"Without pausing": the run ends with exit 0 and no budget stop (a spent budget stops a drain
with exit 75). When `n` is smaller than 100,000 the row also shows the 100,000-message figures
scaled linearly from the run (calls and wall time per message), and says so.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from harness import drain, per_k, pipeline_config
from soak import ChildEmulator
from traffic import BASE_TIME, CATEGORIES, dumps, event_payload, registration

from connector.wiring import wire

TARGET = 100_000              # the backlog
DAILY_ALLOCATION = 100_000    # a default Enterprise org, no licences counted (see the docstring)


@dataclass
class LatencyRow:
    latency_ms: int
    messages: int
    seconds: float
    calls: int
    exit_code: int
    reason: str | None

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def at_target(self) -> tuple[float, float]:
        """(seconds, calls) for TARGET messages: measured when the run was that big, else scaled."""
        scale = TARGET / self.messages
        return self.seconds * scale, self.calls * scale

    def as_dict(self) -> dict[str, Any]:
        seconds, calls = self.at_target()
        return {"latency_ms": self.latency_ms, "messages": self.messages, "seconds": round(self.seconds, 1),
                "messages_per_second": round(self.per_second, 1), "api_calls": self.calls,
                "calls_per_1000": per_k(self.calls, self.messages), "exit_code": self.exit_code,
                "reason": self.reason, "extrapolated": self.messages < TARGET,
                "target_seconds": round(seconds), "target_calls": round(calls),
                "target_share_of_daily_allocation": round(calls / DAILY_ALLOCATION, 4)}


def run_one(latency_ms: int, n: int) -> LatencyRow:
    emu = ChildEmulator(latency_ms)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-latency-") as d:
            wired = wire(pipeline_config(emu.info, d, fast_limiter=False))
            try:
                ev = event_payload(1, CATEGORIES, BASE_TIME)
                drain(wired, [dumps(ev)])
                bodies = (dumps(registration(ev, 9_000_000 + k, BASE_TIME + timedelta(days=1, seconds=k)))
                          for k in range(n))
                run = drain(wired, bodies)
            finally:
                wired.state.close()
    finally:
        emu.stop()
    return LatencyRow(latency_ms, run.messages, run.seconds, run.calls, run.exit_code, run.reason)


def run_latency_backlog(latencies: list[int], n: int) -> list[LatencyRow]:
    rows = []
    for ms in latencies:
        r = run_one(ms, n)
        seconds, calls = r.at_target()
        print(f"  backlog of {n:,} at {ms} ms a call: {r.seconds:.0f} s, {r.per_second:.0f} messages/s, "
              f"{r.calls} calls (exit {r.exit_code}); {TARGET:,} → {seconds / 60:.1f} min, {calls:.0f} calls",
              flush=True)
        rows.append(r)
    return rows
