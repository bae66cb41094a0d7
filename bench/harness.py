"""What every benchmark mode shares: the emulator, the connector's config, a drain, the bound, tables.

The connector side is always the real pipeline: queue → Runner → SyncEngine → SalesforceGateway →
emulator over HTTPS. API calls are read from the gateway (`gateway.stats`, every request it
sends, retries included; the OAuth token request is not an API call).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connector.config import Config, SqsConfig
from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.sync.model import Inbound, Outcome
from connector_devkit.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

# The limiter is deliberately out of the way in backlog modes: we measure call counts and pipeline
# cost, not the configured politeness towards Salesforce. The live mode uses the defaults.
REQUESTS_PER_SECOND = 1000
MAX_IN_FLIGHT = 4

# The lower bound's two constants (bench/README.md, "Lower bounds").
RECORDS_PER_CALL = 200        # sObject Collections: at most 200 records a call
QUERIES_PER_CALL = 5          # /composite: at most five query (or Collections) subrequests, one call
# People one lookup query carries: an IN list holds at most 500 values (connector.salesforce.soql.
# MAX_IN_LIST, the App Limits cheatsheet's "500 IDs per query" read for every list), and 500
# Jomablue ids and 500 emails make a statement of ~30,000 characters, within SOQL's 100,000; a
# query that long travels in a /composite body, not the URL (Help 000386264). Issue 18's bound
# counted 200 (what fitted the ~15,000-byte URL the connector allowed before): ISSUE_PEOPLE_PER_QUERY.
PEOPLE_PER_QUERY = 500
ISSUE_PEOPLE_PER_QUERY = 200

# `sqs.batch_window_seconds` arrives with the batching-window work (issue 13 item 1); until then
# every window setting behaves like today's runner and the bench says so.
HAS_WINDOW = "batch_window_seconds" in SqsConfig.model_fields


def start_emulator(latency_ms: int) -> Emulator:
    emu = Emulator().start()
    emu.faults.latency_ms = latency_ms
    return emu


def pipeline_config(emu: Any, state_dir: str, *, batch_messages: int | None = None, wait_seconds: int = 0,
                    window: float | None = None, fast_limiter: bool = True, max_lag: float | None = None) -> Config:
    """The connector's config against `emu` (an Emulator or anything with url/ca_path/client_*)."""
    sqs: dict[str, Any] = {"queue_url": "mem://bench", "region": "us-east-1", "wait_seconds": wait_seconds}
    if batch_messages:
        sqs["batch_messages"] = batch_messages
    if window is not None and HAS_WINDOW:
        sqs["batch_window_seconds"] = window
    if max_lag is not None:
        sqs["max_lag_seconds"] = max_lag
    sf: dict[str, Any] = {
        "instance_url": emu.url, "ca_bundle": emu.ca_path,
        "auth": {"method": "client_credentials", "login_url": emu.url,
                 "client_id": emu.client_id, "client_secret": emu.client_secret},
        "retry_base_seconds": 0.05,
    }
    if fast_limiter:
        sf.update(requests_per_second=REQUESTS_PER_SECOND, max_in_flight=MAX_IN_FLIGHT)
    return Config.model_validate({"sqs": sqs, "salesforce": sf,
                                  "state": {"path": os.path.join(state_dir, "state.db")}})


def default_batch_messages() -> int:
    return int(SqsConfig.model_fields["batch_messages"].default)


# -- calls ------------------------------------------------------------------------------------
@dataclass
class Calls:
    """Calls the gateway made between two snapshots."""

    total: int
    by_kind: dict[str, int]


class CallMeter:
    """Snapshot gateway.stats and report the difference (the stats live as long as the gateway)."""

    def __init__(self, gateway: Any) -> None:
        self.stats = gateway.stats
        self.calls, self.kinds = self.stats.calls, dict(self.stats.by_kind)

    def read(self) -> Calls:
        kinds = {k: v - self.kinds.get(k, 0) for k, v in self.stats.by_kind.items()}
        return Calls(self.stats.calls - self.calls, {k: v for k, v in sorted(kinds.items()) if v})


def per_k(calls: float, messages: int) -> float:
    return round(1000 * calls / messages, 1) if messages else 0.0


# -- the lower bound -----------------------------------------------------------------------------
@dataclass
class Bound:
    """The fewest calls a workload can cost: writes in full 200-record calls, queries five a call."""

    writes: dict[str, int] = field(default_factory=dict)   # "Lead upsert" → records
    queries: int = 0                                       # SOQL queries needed
    why: str = ""
    issue_queries: int | None = None    # the queries issue 18's bound counted (200 people a query)
    batch_floor: int | None = None      # the fewest calls with the batches as they fall (see new_people)

    @property
    def calls(self) -> int:
        return (sum(math.ceil(n / RECORDS_PER_CALL) for n in self.writes.values())
                + math.ceil(self.queries / QUERIES_PER_CALL))

    @property
    def packed_calls(self) -> int:
        """The bound when writes travel in /composite too (issue 13 item 3): a /composite request
        holds at most five sObject Collections or query subrequests (salesforce-api.md §1)."""
        return self._packed(self.queries)

    @property
    def issue_packed_calls(self) -> int:
        """The composite bound as issue 18 counted it (lookups of 200 people a query)."""
        return self._packed(self.queries if self.issue_queries is None else self.issue_queries)

    def _packed(self, queries: int) -> int:
        return math.ceil((sum(math.ceil(n / RECORDS_PER_CALL) for n in self.writes.values()) + queries)
                         / QUERIES_PER_CALL)

    def derivation(self) -> str:
        parts = [f"{k} {n:,}/200 → {math.ceil(n / RECORDS_PER_CALL)}" for k, n in self.writes.items() if n]
        if self.queries:
            parts.append(f"{self.queries} queries/5 → {math.ceil(self.queries / QUERIES_PER_CALL)}")
        return "; ".join(parts) or "nothing to write or read → 0"


def person_queries(people: int, objects: int = 2, per_query: int = PEOPLE_PER_QUERY) -> int:
    """Lookup queries for `people` not yet linked: one query per object (Lead, Contact) per 500."""
    return objects * math.ceil(people / per_query) if people else 0


def new_people_batch_calls(people: int, riders: int = 0) -> int:
    """The fewest calls a batch of new people at one event costs: its lookup (with `riders` more
    subrequests in the same call) must come back before its Leads and members are written, five
    collections of 200 a /composite."""
    reads = person_queries(people) + riders
    writes = 2 * math.ceil(people / RECORDS_PER_CALL)
    return math.ceil(reads / QUERIES_PER_CALL) + math.ceil(writes / QUERIES_PER_CALL)


# -- drains ---------------------------------------------------------------------------------------
@dataclass
class Drain:
    messages: int
    seconds: float
    calls: int
    by_kind: dict[str, int]
    counts: dict[str, int]
    exit_code: int
    reason: str | None
    batches: int = 0
    notes: list[str] = field(default_factory=list)


class TimedEngine:
    """The engine as the Runner sees it, noting when each batch returned and how big it was.

    Everything else (gateway, state, notes, dry_run) is the wrapped engine's own.
    """

    def __init__(self, engine: Any, on_done: Any = None) -> None:
        self._engine = engine
        self.on_done = on_done          # called with (inbounds, outcomes, monotonic time)
        self.batch_sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def process(self, inbounds: list[Inbound]) -> list[Outcome]:
        outcomes = await self._engine.process(inbounds)
        self.batch_sizes.append(len(inbounds))
        if self.on_done:
            self.on_done(inbounds, outcomes, time.monotonic())
        return outcomes


def drain(wired: Any, bodies: Iterable[str], batch_messages: int | None = None) -> Drain:
    """Send bodies to a fresh MemoryQueue and run the real Runner (--drain) until it is empty."""
    q = MemoryQueue()
    n = 0
    for b in bodies:
        q.send(b)
        n += 1
    sqs = wired.cfg.sqs if not batch_messages else wired.cfg.sqs.model_copy(update={"batch_messages": batch_messages})
    meter = CallMeter(wired.gateway)
    notes_before = len(wired.engine.notes)
    engine = TimedEngine(wired.engine)
    runner = Runner(engine, q, sqs, drain=True)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    res = asyncio.run(runner.run())
    seconds = time.perf_counter() - t0
    calls = meter.read()
    notes = list(wired.engine.notes[notes_before:])
    if len(q):
        notes.append(f"{len(q)} messages still in the queue")
    return Drain(n, seconds, calls.total, calls.by_kind, dict(sorted(res.counts.items())), res.exit_code,
                 res.reason, len(engine.batch_sizes), notes)


# -- output -----------------------------------------------------------------------------------
def kinds(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def md_table(head: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:,.1f}"
        if isinstance(x, int):
            return f"{x:,}"
        return str(x).replace("|", "\\|")
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def write_report(mode: str, markdown: str, data: dict[str, Any]) -> Path:
    """bench/results/<mode>.md and .json (gitignored), plus a timestamped copy of the markdown."""
    import json

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{mode}.md"
    path.write_text(markdown + "\n", encoding="utf-8")
    (RESULTS_DIR / f"{mode}-{stamp}.md").write_text(markdown + "\n", encoding="utf-8")
    (RESULTS_DIR / f"{mode}.json").write_text(json.dumps(
        {"generated_at": stamp, **data}, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path
