"""Soak mode: a long backlog run reporting memory, state-store size and speed every `step` messages.

The emulator runs in a child process, so the bench process's memory is the connector's (plus the
in-memory queue of the current chunk, at most 1,000 messages) and its CPU time is the connector's.
Traffic is generated as it is sent, never held whole: 20 events first, then person messages of
which 70 % are new registrations, 15 % check-ins of someone registered shortly before (a member
status update) and 15 % identical re-sends (cost nothing). Messages go through the real Runner
(--drain) in chunks of two batches; after every `step` messages the row is taken.

RSS: VmRSS and VmHWM (peak) from /proc/self/status. State store: the SQLite file plus its WAL.
Connector CPU: user+system seconds of this process per 1,000 messages (the emulator's CPU is in
the child, so this does not grow because the emulator's linear SOQL scans slow down as the org
fills; messages/s does).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import sqlite3
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness import CallMeter, default_batch_messages, drain, md_table, per_k, pipeline_config
from traffic import BASE_TIME, CATEGORIES, dumps, event_payload, registration

from connector.wiring import wire

N_EVENTS = 20
NEW_SHARE, CHECKIN_SHARE = 0.70, 0.15      # the rest are identical re-sends


# -- the emulator in a child process ------------------------------------------------------------
def _serve(conn: Any, latency_ms: int) -> None:
    from connector_devkit.emulator import Emulator

    emu = Emulator().start()
    emu.faults.latency_ms = latency_ms
    conn.send({"url": emu.url, "ca_path": emu.ca_path, "client_id": emu.client_id,
               "client_secret": emu.client_secret})
    conn.recv()          # anything (or EOF) means stop
    emu.stop()


class ChildEmulator:
    def __init__(self, latency_ms: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, latency_ms), daemon=True, name="bench-emulator")
        self.proc.start()
        self.info = SimpleNamespace(**self.conn.recv())

    def stop(self) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()


# -- measurements --------------------------------------------------------------------------------
def proc_status() -> dict[str, float]:
    """VmRSS and VmHWM in MB (Linux); ru_maxrss where /proc is absent."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def store_bytes(db: Path) -> tuple[int, int]:
    """(main file, WAL) sizes in bytes."""
    def size(p: Path) -> int:
        return p.stat().st_size if p.exists() else 0
    return size(db), size(db.with_name(db.name + "-wal"))


def table_bytes(db: Path) -> list[tuple[str, int]]:
    """Bytes per table and index (SQLite's dbstat), largest first; empty if dbstat is not built in."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            rows = c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        return [(str(n), int(b)) for n, b in rows]
    except sqlite3.Error:
        return []


# -- traffic ----------------------------------------------------------------------------------------
def soak_traffic(n: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    events = [event_payload(100 + i, CATEGORIES, BASE_TIME - timedelta(days=30)) for i in range(N_EVENTS)]
    for ev in events:
        yield dumps(ev)
    recent: deque[tuple[int, str]] = deque(maxlen=2_000)      # (pid, body) of recent registrations
    pid = 7_000_000
    for k in range(n - N_EVENTS):
        at = BASE_TIME + timedelta(seconds=k)
        roll = rnd.random()
        if roll < NEW_SHARE or not recent:
            pid += 1
            body = dumps(registration(events[pid % N_EVENTS], pid, at))
            recent.append((pid, body))
            yield body
        elif roll < NEW_SHARE + CHECKIN_SHARE:
            who, _ = recent[rnd.randrange(len(recent))]
            yield dumps(registration(events[who % N_EVENTS], who, at, checked_in=True))
        else:
            yield recent[rnd.randrange(len(recent))][1]


def chunks(it: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for body in it:
        chunk.append(body)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- the run ------------------------------------------------------------------------------------------
@dataclass
class Row:
    messages: int
    seconds: float
    step_rate: float
    cpu_per_k: float
    calls_per_k: float
    rss_mb: float
    hwm_mb: float
    db_bytes: int
    wal_bytes: int

    def cells(self) -> list[Any]:
        total = self.db_bytes + self.wal_bytes
        return [self.messages, round(self.seconds), round(self.step_rate), round(self.cpu_per_k, 2),
                self.calls_per_k, round(self.rss_mb, 1), round(self.hwm_mb, 1), round(total / 2**20, 1),
                round(self.wal_bytes / 2**20, 1), round(total / self.messages)]


def run_soak(latency_ms: int, n: int, step: int, seed: int) -> tuple[str, dict[str, Any]]:
    batch = default_batch_messages()
    emu = ChildEmulator(latency_ms)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as d:
            wired = wire(pipeline_config(emu.info, d))
            db = Path(wired.cfg.state.path)
            meter = CallMeter(wired.gateway)
            done, t0, cpu0 = 0, time.monotonic(), cpu_seconds()
            mark = (done, t0, cpu0, 0)
            counts: dict[str, int] = {}
            for chunk in chunks(soak_traffic(n, seed), 2 * batch):
                run = drain(wired, chunk)
                for k, v in run.counts.items():
                    counts[k] = counts.get(k, 0) + v
                done += len(chunk)
                if done - mark[0] >= step or done >= n:
                    now, cpu, calls = time.monotonic(), cpu_seconds(), meter.read().total
                    m = done - mark[0]
                    mem = proc_status()
                    rows.append(Row(done, now - t0, m / (now - mark[1]), 1000 * (cpu - mark[2]) / m,
                                    per_k(calls - mark[3], m), mem.get("VmRSS", 0.0), mem.get("VmHWM", 0.0),
                                    *store_bytes(db)))
                    mark = (done, now, cpu, calls)
                    print("  " + " ".join(str(c) for c in rows[-1].cells()), flush=True)
            wired.state.close()
            tables = table_bytes(db)
            final = store_bytes(db)
    finally:
        emu.stop()
    head = ["messages", "seconds", "msgs/s (step)", "connector CPU s/1k", "calls/1k (step)", "VmRSS MB",
            "VmHWM MB (peak)", "store MB (db+WAL)", "of which WAL MB", "store bytes/msg"]
    total_final = sum(final)
    md = ("## Soak: one long backlog, a row every "
          f"{step:,} messages\n\n{n:,} messages (20 events; people 70 % new, 15 % check-ins, 15 % re-sends), "
          f"batches of {batch}, emulator in a child process answering in {latency_ms} ms.\n\n"
          + md_table(head, [r.cells() for r in rows]) + "\n")
    if tables:
        md += ("\n### State store after the run (file after close, SQLite dbstat)\n\n"
               + md_table(["table or index", "MB", "share", "bytes/msg"],
                          [[name, round(b / 2**20, 2), f"{100 * b / max(1, sum(x for _, x in tables)):.0f} %",
                            round(b / n)] for name, b in tables[:12]]) + "\n")
    md += (f"\nAfter the run (connection closed, WAL checkpointed): {total_final / 2**20:.1f} MB, "
           f"{total_final / n:,.0f} bytes per message.\n")
    md += f"\nOutcomes: {', '.join(f'{k} {v:,}' for k, v in sorted(counts.items()))}\n"
    return md, {"n": n, "step": step, "latency_ms": latency_ms, "rows": [r.__dict__ for r in rows],
                "final_store_bytes": total_final, "tables": tables, "outcomes": counts,
                "pid": os.getpid()}
