"""Replicas on one queue with the PostgreSQL state store: 1, 2 and 3 side by side.

    .venv/bin/python bench/replicas.py [--replicas 1,2,3] [--n 1500] [--latency-ms 100]
                                       [--rps 1000] [--max-in-flight 4] [--batch-messages 100]

Each replica is a full connector (its own `wire()`: state store with its own pool and lock
connection, gateway with the shared call limit, engine, Runner in drain mode) in its own thread
and event loop; all of them consume one in-memory queue with SQS visibility semantics (moto slows
down as a backlog grows, which would be measured instead of the connector). The Salesforce
emulator (HTTPS) answers every REST call after `--latency-ms`. Workload: `--n` person
registrations over 3 events, then a check-in for every third person interleaved a few messages
behind, so the replicas meet on the same people and Campaigns.

Reported per replica count: messages/s, API calls per 1,000 messages (counted by the emulator),
and lock waits: messages deferred because another replica held their resource, Campaign-lock
waits, and waits for the shared in-flight slots and rate tokens. Every run is checked: each
person one Lead and one CampaignMember with the newest status.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector import logs  # noqa: E402
from connector.config import Config  # noqa: E402
from connector.queue import MemoryQueue  # noqa: E402
from connector.runner import Runner  # noqa: E402
from connector.wiring import wire  # noqa: E402
from connector_devkit.emulator import Emulator  # noqa: E402

SAMPLES = json.loads((ROOT / "tests" / "fixtures" / "jomablue-samples.json").read_text(encoding="utf-8"))
PG_URL = os.environ.get("CONNECTOR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2025, 9, 1, tzinfo=timezone.utc)
EVENTS = 3


def _at(s: float) -> str:
    return (T0 + timedelta(seconds=s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def traffic(n: int, near: bool) -> tuple[list[str], dict[str, str]]:
    """Bodies in queue order, and the status each person must end with.

    Check-ins follow the registrations at the end of the queue (`near` False: later in the day),
    or 25 messages behind their registration (`near` True: every batch meets the previous one's
    people, the worst case for replicas).
    """
    bodies, expected, later = [], {}, []
    for e in range(EVENTS):
        ev = copy.deepcopy(SAMPLES["event"])
        ev["identifiers"]["id"] = f"acme/event/{8000 + e}"
        ev["data"]["metadata"] = {}
        bodies.append(json.dumps(ev, ensure_ascii=False))
    for i in range(n):
        pid = f"acme/event_person/{700_000 + i}"
        p = copy.deepcopy(SAMPLES["person"])
        p["context"] = {"event_id": f"acme/event/{8000 + i % EVENTS}"}
        p["identifiers"].update({"id": pid, "organisation_uid": "", "email": f"replica.{i}@example.com",
                                 "last_name": f"Replica{i}"})
        p["data"].update({"checked_in": False, "first_check_in": None, "cancelled": False})
        p["generated_at"] = _at(i)
        bodies.append(json.dumps(p, ensure_ascii=False))
        expected[pid] = "Registered"
        if i % 3 == 0:
            c = copy.deepcopy(p)
            c["data"].update({"checked_in": True, "first_check_in": _at(10_000 + i)})
            c["generated_at"] = _at(10_000 + i)
            later.append((i + 25 if near else n + i, json.dumps(c, ensure_ascii=False)))
            expected[pid] = "Attended"
        while later and later[0][0] <= i:
            bodies.append(later.pop(0)[1])
    bodies.extend(b for _, b in later)
    return bodies, expected


def config(emu: Emulator, url: str, args: argparse.Namespace) -> Config:
    return Config.model_validate({
        "sqs": {"queue_url": "mem://replicas", "region": "us-east-1", "wait_seconds": 0,
                "batch_messages": args.batch_messages},
        "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                       "auth": {"method": "client_credentials", "login_url": emu.url,
                                "client_id": emu.client_id, "client_secret": emu.client_secret},
                       "requests_per_second": args.rps, "max_in_flight": args.max_in_flight,
                       "retry_base_seconds": 0.05},
        "state": {"url": url}})


def run_one(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    schema = f"bench_replicas_{uuid.uuid4().hex[:10]}"
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options={quote(f'-csearch_path={schema}')}"
    emu = Emulator().start()
    emu.faults.latency_ms = args.latency_ms
    try:
        bodies, expected = traffic(args.n, args.checkins == "near")
        cfg = config(emu, url, args)
        wired = [wire(cfg) for _ in range(replicas)]
        q = MemoryQueue()
        for b in bodies:
            q.send(b)
        emu.reset_counters()
        counts: Counter[str] = Counter()
        rounds = 0
        t0 = time.perf_counter()
        while len(q) and rounds < 10:          # a replica's deferred messages come back a moment later
            rounds += 1
            results: list[Any] = [None] * replicas

            def go(k: int, results: list[Any] = results) -> None:
                results[k] = asyncio.run(Runner(wired[k].engine, q, cfg.sqs, drain=True).run())

            threads = [threading.Thread(target=go, args=(k,)) for k in range(replicas)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for r in results:
                counts.update(r.counts)
            if len(q):
                time.sleep(2.5)
        seconds = time.perf_counter() - t0
        calls = emu.api_calls
        leads = Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))
        members = {r["Jomablue_Id__c"]: r["Status"] for r in emu.org.records("CampaignMember")}
        wrong = sum(1 for k, s in expected.items() if members.get(k) != s)
        lock: Counter[str] = Counter()
        limit: Counter[str] = Counter()
        for w in wired:
            lock.update(getattr(w.state, "lock_stats", {}))
            shared = getattr(w.gateway, "shared_limit", None)
            if shared is not None:
                limit.update(shared.stats)
            w.state.close()
    finally:
        emu.stop()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
    return {
        "replicas": replicas, "messages": len(bodies), "seconds": round(seconds, 1),
        "messages_per_second": round(len(bodies) / seconds, 1),
        "api_calls": calls, "calls_per_1000": round(1000 * calls / len(bodies), 1),
        "deferred_held": counts["retry"], "hold_waits": lock["hold_waits"], "campaign_lock_waits": lock["campaign_waits"],
        "campaign_lock_wait_ms": lock["campaign_wait_ms"], "slot_waits": limit["slot_waits"],
        "rate_waits": limit["rate_waits"], "rounds": rounds,
        "leads_duplicated": sum(1 for v in leads.values() if v > 1), "people_missing": len(set(expected) - set(leads)),
        "wrong_status": wrong, "outcomes": dict(sorted(counts.items())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", default="1,2,3")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--rps", type=float, default=1000)
    ap.add_argument("--max-in-flight", type=int, default=4)
    ap.add_argument("--batch-messages", type=int, default=100)
    ap.add_argument("--checkins", choices=["late", "near"], default="late",
                    help="check-ins at the end of the queue (late) or 25 messages behind the registration (near)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "replicas.json"))
    args = ap.parse_args(argv)
    logs.configure()
    logging.getLogger().setLevel(logging.ERROR)
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any reason means: no server to measure against
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"replicas benchmark skipped: no PostgreSQL server answers at {PG_URL} ({reason})")
        return 0
    rows = [run_one(int(r), args) for r in args.replicas.split(",")]
    print(f"\n{args.n} people + check-ins ({args.checkins}) for a third, {EVENTS} events; "
          f"emulator {args.latency_ms} ms per call; "
          f"requests_per_second {args.rps:g}, max_in_flight {args.max_in_flight} (shared); "
          f"batch_messages {args.batch_messages}")
    print("| replicas | messages | seconds | messages/s | API calls per 1,000 | batches that waited for a hold "
          "| messages deferred | Campaign-lock waits | in-flight slot waits | rate waits | wrong status |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['replicas']} | {r['messages']:,} | {r['seconds']} | {r['messages_per_second']} | "
              f"{r['calls_per_1000']} | {r['hold_waits']} | {r['deferred_held']} | {r['campaign_lock_waits']} "
              f"({r['campaign_lock_wait_ms']} ms) | {r['slot_waits']} | {r['rate_waits']} | {r['wrong_status']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0 if all(r["wrong_status"] == 0 and r["leads_duplicated"] == 0 and not r["people_missing"]
                    for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
