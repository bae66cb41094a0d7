"""`make bench`: every row of issue 18's "Done when", then one summary beside the bound and the
previous release (summary.py, previous.py).

Parts (`--only` picks some; each prints its own table as well):

- shapes: the backlog shapes (shapes.py) at 20 ms a call;
- live: 5, 20, 100 registrations a second at the default batching window, and 20 a second with
  the low-lag setting (`sqs.max_lag_seconds` 5) (live.py), 100 ms a call;
- replicas: 1, 2, 3 replicas at 20 a second through SNS → SQS on moto with PostgreSQL state
  (replicas_live.py), and the same on a backlog (replicas.py); skipped, and said so, when no
  PostgreSQL server answers;
- store: bytes per synced person of the SQLite store (state_size.py, run as a child process);
- latency: a backlog of new registrations at 20, 100 and 300 ms a call with the connector's
  default limiter (latency_backlog.py), 100,000 messages with `--full`, otherwise a smaller run
  scaled to 100,000 (the table says "scaled").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import previous
from harness import new_people_batch_calls
from summary import Row, summary_table

from connector.config import SqsConfig

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("shapes", "live", "replicas", "store", "latency")
PG_URL = os.environ.get("CONNECTOR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_WINDOW = float(SqsConfig.model_fields["batch_window_seconds"].default)
LIVE_TARGETS = {20.0: (20.0, 7.0), 100.0: (8.0, 6.0)}       # issue 18: calls per 1,000, p99 lag s
LOW_LAG = 5.0                    # the README's low-lag setting: sqs.max_lag_seconds 5
LOW_LAG_TARGET = (28.0, 5.0)     # issue 18: at 20 a second, p99 at most 5 s at no more than 28 calls per 1,000


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    """Run lengths: default (about ten minutes), --quick (a look while building), --full (the issue's)."""
    if args.full:
        return {"live_s": 60.0, "replicas_s": 60.0, "latency_n": 100_000, "store_n": 10_000, "backlog_n": 1_500}
    if args.quick:
        return {"live_s": 15.0, "replicas_s": 15.0, "latency_n": 2_000, "store_n": 2_000, "backlog_n": 600}
    return {"live_s": 30.0, "replicas_s": 30.0, "latency_n": 5_000, "store_n": 10_000, "backlog_n": 1_500}


def shape_key(name: str) -> str:
    """A shape's key in previous.SHAPES, from the name shapes.py gives it."""
    head = name.split(" ", 1)[0].rstrip(".")
    if head == "d":
        return "d500" if "batches of 500" in name else "d1000"
    if name.startswith("backlog mix"):
        return "mix"
    if name.startswith("backlog repeats"):
        return "repeats"
    if "-message queue" in name:
        return name.split("-", 1)[0]
    return head


def live_floor(rate: float, window: float, batch_messages: int) -> float:
    """The fewest calls per 1,000 new registrations arriving at `rate` when a batch holds what one
    window brings (at most batch_messages): a batch of k people costs its lookup and then its k
    Leads and k members, five collections of 200 a /composite (issue 18: two calls a batch up to
    400 people, three past it), so the best batch is the cheapest per message up to that size."""
    most = int(max(1.0, min(rate * window, batch_messages)))
    per_message = min(new_people_batch_calls(k) / k for k in range(1, most + 1))
    return round(1000 * per_message, 1)


def shape_rows(data: dict[str, Any]) -> list[Row]:
    """The bound counts lookups of 500 people a query (a statement in a /composite body); the note
    gives issue 18's bound (200 a query, the URL's) and, where batches bind, the batch floor."""
    rows = []
    for s in data["shapes"]:
        notes = []
        if s.get("issue_bound_per_1000") is not None and s["issue_bound_per_1000"] != s["composite_bound_per_1000"]:
            notes.append(f"issue 18's bound (200 people a query): {s['issue_bound_per_1000']}")
        if s.get("batch_floor_per_1000"):
            notes.append(f"floor with these batches: {s['batch_floor_per_1000']} "
                         f"(now {s['calls_per_1000'] / s['batch_floor_per_1000']:.2f}×)")
        rows.append(Row("Backlog shapes (20 ms a call, drain)", s["shape"], "calls/1k", s["calls_per_1000"],
                        bound=s["composite_bound_per_1000"], before=previous.SHAPES.get(shape_key(s["shape"])),
                        target="≤ 1.5× bound", note="; ".join(notes)))
    return rows


def live_rows(data: dict[str, Any], batch_messages: int) -> list[Row]:
    rows = []
    section = f"Live registrations, default window ({DEFAULT_WINDOW:g} s) and the low-lag setting, 100 ms a call"
    for run in data["runs"]:
        rate = float(run["rate"])
        low_lag = run.get("max_lag") is not None
        before = None if low_lag else previous.LIVE.get(rate)
        calls_t, lag_t = LOW_LAG_TARGET if low_lag else LIVE_TARGETS.get(rate, (None, None))
        # With a lag target the window is at most the target less the last receive's pace.
        window = run["max_lag"] - 0.5 if low_lag else (run["window"] or DEFAULT_WINDOW)
        label = f"{rate:g}/s" + (f", max_lag_seconds {run['max_lag']:g}" if low_lag else "")
        rows.append(Row(section, f"{label}: calls per 1,000", "calls/1k", run["calls_per_1000"],
                        bound=live_floor(rate, window, batch_messages),
                        before=before[0] if before else None, target=f"≤ {calls_t:g}" if calls_t else "",
                        note="bound: 2 calls a batch"))
        rows.append(Row(section, f"{label}: lag p99", "s", round(run["lag_p99"], 2),
                        before=before[1] if before else None, target=f"≤ {lag_t:g} s" if lag_t else "",
                        note=f"p50 {run['lag_p50']:.2f} s"))
    return rows


def replica_rows(live: list[dict[str, Any]], backlog: list[dict[str, Any]], batch_messages: int) -> list[Row]:
    rows = []
    one = next((r["calls_per_1000"] for r in live if r["replicas"] == 1 and r["turns"]), None)
    section = "Replicas, PostgreSQL state"
    for r in live:
        k = r["replicas"]
        label = (f"{k} at 20/s via SNS → SQS: calls per 1,000"
                 + ("" if r["turns"] else " (no turns: every replica receives)"))
        rows.append(Row(section, label, "calls/1k", r["calls_per_1000"],
                        bound=live_floor(20, DEFAULT_WINDOW, batch_messages),
                        before=previous.REPLICAS_LIVE.get(k) if r["turns"] else None,
                        target=f"≤ {1.25 * one:.1f} (1.25× one)" if one is not None and k > 1 and r["turns"] else "",
                        note=f"p99 {r['lag_p99']:.2f} s; batches {r['batches_per_replica']}; "
                             f"turns {r['collector_turns']}"
                             + (f"; {r['people_missing']} missing" if r["people_missing"] else "")
                             + (f"; {r['synced_twice']} synced twice" if r["synced_twice"] else "")))
    for r in backlog:
        k = r["replicas"]
        rows.append(Row(section, f"{k} on a backlog ({r['messages']:,} messages): messages/s", "msgs/s",
                        r["messages_per_second"], before=previous.REPLICAS_BACKLOG_RATE.get(k),
                        target="spreads over all replicas",
                        note=f"{r['calls_per_1000']} calls/1k (before {previous.REPLICAS_BACKLOG_CALLS.get(k, '–')});"
                             f" wrong status {r['wrong_status']}"))
    return rows


def store_rows(report: dict[str, Any] | None, why: str = "") -> list[Row]:
    """Issue 18's measure: bytes kept per synced person (every row but the outcome rows, which are
    pruned after keep_days); the whole store per message beside it."""
    if not report:
        return [Row("State store (SQLite)", "bytes kept per synced person", "bytes", None,
                    before=previous.STORE_BYTES_PER_PERSON, target="≤ 500", note=why or "bench/state_size.py")]
    kinds = ", ".join(f"{k} {v:,.0f}" for k, v in sorted((report.get("kept_per_person_by_kind") or {}).items(),
                                                          key=lambda kv: -kv[1]))
    return [Row("State store (SQLite)", f"bytes kept per synced person ({report['messages']:,} people)", "bytes",
                report.get("bytes_per_person_kept"), before=previous.STORE_BYTES_PER_PERSON, target="≤ 500",
                note=why or (f"{kinds}; with outcome rows: {report.get('bytes_per_message'):,} per message"
                             if kinds else "bench/state_size.py"))]


def latency_rows(rows: list[dict[str, Any]]) -> list[Row]:
    out = []
    section = "Backlog of new registrations at a real org's latency (default limiter: 5 req/s, 2 in flight)"
    for r in rows:
        scaled = " (scaled from the run)" if r["extrapolated"] else ""
        out.append(Row(section, f"{r['latency_ms']} ms a call: messages/s ({r['messages']:,} messages, "
                       f"{r['seconds']:.0f} s)", "msgs/s", r["messages_per_second"],
                       note=f"{r['calls_per_1000']} calls/1k; exit {r['exit_code']}"))
        out.append(Row(section, f"{r['latency_ms']} ms: 100,000 messages, wall time{scaled}", "min",
                       round(r["target_seconds"] / 60, 1)))
        out.append(Row(section, f"{r['latency_ms']} ms: 100,000 messages, API calls{scaled}", "calls",
                       float(r["target_calls"]), target="< 80,000 (80 % of 100,000 a day), no pause",
                       note=f"{100 * r['target_share_of_daily_allocation']:.1f} % of a default Enterprise org's day"))
    return out


def run_store(n: int) -> tuple[dict[str, Any] | None, str]:
    """bench/state_size.py in a child process (it is helper "state"'s); its JSON report."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "state_size.py"), "--n", str(n)],
                          capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout
    if proc.returncode != 0 or "{" not in out:
        return None, f"state_size.py failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    try:
        return json.loads(out[out.index("{"):]), ""
    except json.JSONDecodeError as exc:
        return None, f"state_size.py printed no JSON report ({exc})"


def pg_reason() -> str | None:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any reason means: no server to measure against
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def run_all(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    only = [p for p in (args.only.split(",") if args.only else PARTS) if p]
    unknown = set(only) - set(PARTS)
    if unknown:
        raise SystemExit(f"--only: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    n = sizes(args)
    batch_messages = int(SqsConfig.model_fields["batch_messages"].default)
    rows: list[Row] = []
    parts_md: list[str] = []
    data: dict[str, Any] = {"sizes": n, "previous_release": previous.SOURCE}
    if "shapes" in only:
        from shapes import run_shapes

        md, d = run_shapes(20, args.seed)
        parts_md.append(md)
        data["shapes"] = d
        rows += shape_rows(d)
    if "live" in only:
        from live import run_live

        md, d = run_live(100, n["live_s"], [5.0, 20.0, 100.0], [DEFAULT_WINDOW], args.seed, 20, None)
        md_low, d_low = run_live(100, n["live_s"], [20.0], [], args.seed, 20, None, (LOW_LAG,))
        parts_md += [md, md_low]
        d["runs"] += d_low["runs"]
        data["live"] = d
        rows += live_rows(d, batch_messages)
    if "replicas" in only:
        why = pg_reason()
        if why is None:
            import replicas
            from replicas_live import run_live_replicas

            live = [r.as_dict() for r in run_live_replicas([1, 2, 3], 20, n["replicas_s"], 100, PG_URL,
                                                            (3,) if args.full else ())]
            ns = argparse.Namespace(n=n["backlog_n"], latency_ms=100, rps=1000, max_in_flight=4, batch_messages=100,
                                    checkins="late")
            backlog = [replicas.run_one(k, ns) for k in (1, 2, 3)]
            data["replicas"] = {"live": live, "backlog": backlog}
            rows += replica_rows(live, backlog, batch_messages)
        else:
            rows.append(Row("Replicas, PostgreSQL state", "replicas", "", None,
                            note=f"skipped: no PostgreSQL server at {PG_URL} ({why})"))
    if "store" in only:
        report, why = run_store(n["store_n"])
        data["store"] = report
        rows += store_rows(report, why)
    if "latency" in only:
        from latency_backlog import run_latency_backlog

        lat = [r.as_dict() for r in run_latency_backlog([20, 100, 300], n["latency_n"])]
        data["latency"] = lat
        rows += latency_rows(lat)
    md = ("## Summary: now, the lower bound, the previous release\n\n"
          f"Previous release: {previous.SOURCE} (bench/previous.py). Bounds: bench/README.md.\n\n"
          + summary_table(rows) + "\n" + "\n".join(parts_md))
    data["summary"] = [r.__dict__ for r in rows]
    return md, data
