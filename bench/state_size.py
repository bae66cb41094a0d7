"""How big the SQLite state store grows per synced message (issue 13, item 5).

    .venv/bin/python bench/state_size.py [--n 10000] [--events 5]

Syncs N new people (one person message each, over a few events) through the real pipeline
(MemoryQueue → Runner → SyncEngine → gateway → the bundled emulator, no latency), then reports
the database's bytes per message, in total and per table/index (SQLite's dbstat), after a
checkpoint and a VACUUM so free pages do not count, and the bytes per person kept: everything
but the outcome rows (pruned after state.keep_days), per synced person.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import sqlite3
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector import logs  # noqa: E402
from connector.config import Config  # noqa: E402
from connector.queue import MemoryQueue  # noqa: E402
from connector.runner import Runner  # noqa: E402
from connector.wiring import wire  # noqa: E402
from connector_devkit.emulator import Emulator  # noqa: E402

SAMPLES = json.loads((ROOT / "tests" / "fixtures" / "jomablue-samples.json").read_text(encoding="utf-8"))
T0 = datetime(2025, 9, 10, 8, 0, tzinfo=timezone.utc)


def bodies(n: int, events: int) -> list[str]:
    out = []
    evs = []
    for e in range(events):
        ev = copy.deepcopy(SAMPLES["event"])
        ev["identifiers"]["id"] = f"acme/event/{7000 + e}"
        ev["generated_at"] = T0.isoformat().replace("+00:00", "Z")
        evs.append(ev)
        out.append(json.dumps(ev, ensure_ascii=False))
    for i in range(n):
        ev = evs[i % events]
        p = copy.deepcopy(SAMPLES["person"])
        p["generated_at"] = (T0 + timedelta(seconds=i + 1)).isoformat().replace("+00:00", "Z")
        p["context"]["event_id"] = ev["identifiers"]["id"]
        p["context"].pop("event_metadata", None)
        p["identifiers"].update({"id": f"acme/event_person/{600_000 + i}", "organisation_uid": "",
                                 "email": f"size.{i}@example.com", "last_name": f"Size{i}"})
        out.append(json.dumps(p, ensure_ascii=False))
    return out


def measure(db_path: str, messages: int) -> dict[str, Any]:
    conn = sqlite3.connect(db_path)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.execute("vacuum")
    page = conn.execute("pragma page_size").fetchone()[0]
    total = conn.execute("pragma page_count").fetchone()[0] * page
    try:
        by_name = dict(conn.execute("select name, sum(pgsize) from dbstat group by name order by 2 desc").fetchall())
        # Per kind of row: a table with its indexes (what `connector status` shows as size_by_kind).
        by_kind = dict(conn.execute(
            "select coalesce(m.tbl_name, s.name), sum(s.pgsize) from dbstat s left join sqlite_master m"
            " on m.name = s.name group by 1 order by 2 desc").fetchall())
    except sqlite3.OperationalError:       # SQLite built without dbstat
        by_name, by_kind = {}, {}
    rows = {t: conn.execute(f"select count(*) from [{t}]").fetchone()[0]
            for (t,) in conn.execute("select name from sqlite_master where type = 'table'")}
    conn.close()
    # What stays for a year of events: everything but the outcome rows, which are pruned after
    # state.keep_days (issue 18's target: at most 500 bytes per synced person kept).
    people = rows.get("people") or 1
    kept = total - sum(v for k, v in by_name.items() if k in ("messages", "messages_quarantined"))
    return {"messages": messages, "bytes": total, "bytes_per_message": round(total / messages, 1),
            "bytes_per_person_kept": round(kept / people, 1),
            "kept_per_person_by_kind": {k: round(v / people, 1) for k, v in by_kind.items()
                                        if k != "messages" and v / people >= 1},
            "by_table": {k: {"bytes": v, "per_message": round(v / messages, 1)} for k, v in by_name.items()},
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=5)
    ap.add_argument("--keep", help="copy the measured database to this path (to look inside)")
    args = ap.parse_args(argv)
    logs.configure()
    logging.getLogger().setLevel(logging.WARNING)
    emu = Emulator().start()
    try:
        with tempfile.TemporaryDirectory(prefix="state-size-") as d:
            db = os.path.join(d, "state.db")
            cfg = Config.model_validate({
                "sqs": {"queue_url": "mem://size", "region": "us-east-1", "wait_seconds": 0},
                "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                               "auth": {"method": "client_credentials", "login_url": emu.url,
                                        "client_id": emu.client_id, "client_secret": emu.client_secret},
                               "requests_per_second": 1000, "max_in_flight": 4},
                "state": {"path": db}})
            wired = wire(cfg)
            q = MemoryQueue()
            sent = bodies(args.n, args.events)
            for b in sent:
                q.send(b)
            res = asyncio.run(Runner(wired.engine, q, cfg.sqs, drain=True).run())
            wired.state.close()
            report = measure(db, len(sent))
            if args.keep:
                import shutil

                shutil.copy(db, args.keep)
            report["outcomes"] = dict(res.counts)
    finally:
        emu.stop()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
