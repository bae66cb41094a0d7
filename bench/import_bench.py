"""Import mode: `connector import` of an archive of N messages (100,000 by default).

The archive is written first, streamed, as Amazon Data Firehose writes an SNS subscription to S3:
one SNS notification envelope per line, gzip (a local .jsonl.gz: S3 would add only its transfer;
the reader is the same code). The traffic is the soak's (20 events, then people: 70 % new, 15 %
check-ins, 15 % identical re-sends). Then:

1. the import through the real path (ArchiveQueue → Runner --drain → SyncEngine → gateway →
   emulator in a child process): messages/s, calls per 1,000, VmRSS every `step` messages and the
   peak (VmHWM), to show memory stays flat while the archive streams;
2. the same archive again under another name (so the ledger does not skip it): every message was
   applied, so it must cost no write and at most a few reads: calls per 1,000 of a re-import.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import CallMeter, md_table, per_k, pipeline_config
from soak import ChildEmulator, proc_status, soak_traffic
from traffic import BASE_TIME

from connector.importer.command import archive_queue, import_runner
from connector.importer.filters import LineFilter
from connector.importer.source import LocalFile
from connector.wiring import wire

TOPIC = "arn:aws:sns:ap-southeast-2:123456789012:jomablue-push"


def write_archive(path: Path, n: int, seed: int) -> int:
    """n envelopes, one per line, gzip; streamed (never held whole). Returns the file's bytes."""
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        for k, body in enumerate(soak_traffic(n, seed)):
            stamp = (BASE_TIME + timedelta(seconds=k)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            out.write(json.dumps({"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": TOPIC,
                                  "Message": body, "Timestamp": stamp,
                                  "MessageAttributes": {"resource_type": {
                                      "Type": "String", "Value": json.loads(body)["resource_type"]}}}) + "\n")
    return path.stat().st_size


def _one_pass(wired: Any, path: Path, step: int, samples: list[tuple[int, float]]) -> dict[str, Any]:
    source = LocalFile(path)
    queue, _ = archive_queue(wired, source, source.objects(), LineFilter(), dry_run=False)
    meter = CallMeter(wired.gateway)
    next_mark = [step]

    def on_batch(counts: Any) -> None:
        done = sum(counts.values())
        if done >= next_mark[0]:
            next_mark[0] += step
            samples.append((done, proc_status().get("VmRSS", 0.0)))

    runner = import_runner(wired, queue, on_batch=on_batch)
    t0 = time.monotonic()
    result = asyncio.run(runner.run())
    seconds = time.monotonic() - t0
    messages = sum(result.counts.values())
    calls = meter.read()
    return {"messages": messages, "seconds": seconds, "rate": messages / seconds if seconds else 0.0,
            "calls": calls.total, "calls_per_k": per_k(calls.total, messages), "by_kind": calls.by_kind,
            "counts": dict(result.counts), "exit_code": result.exit_code, "finished": queue.counts["objects_finished"]}


def run_import_bench(latency_ms: int, n: int, step: int, seed: int) -> tuple[str, dict[str, Any]]:
    emu = ChildEmulator(latency_ms)
    samples: list[tuple[int, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-import-") as d:
            archive = Path(d) / "archive.jsonl.gz"
            t0 = time.monotonic()
            size = write_archive(archive, n, seed)
            print(f"  wrote {n:,} archived messages, {size / 2**20:.1f} MB gzip, in {time.monotonic() - t0:.0f} s",
                  flush=True)
            rss_before = proc_status().get("VmRSS", 0.0)
            wired = wire(pipeline_config(emu.info, d))
            first = _one_pass(wired, archive, step, samples)
            print(f"  import: {first['messages']:,} messages, {first['rate']:.0f} msgs/s, "
                  f"{first['calls_per_k']} calls/1k", flush=True)
            copy = Path(d) / "archive-copy.jsonl.gz"
            os.link(archive, copy)
            again = _one_pass(wired, copy, step, [])
            print(f"  re-import: {again['rate']:.0f} msgs/s, {again['calls_per_k']} calls/1k", flush=True)
            wired.state.close()
    finally:
        emu.stop()
    peak = proc_status().get("VmHWM", 0.0)
    head = ["pass", "messages", "seconds", "msgs/s", "API calls", "calls/1k", "outcomes"]
    rows = [[name, r["messages"], round(r["seconds"]), round(r["rate"]), r["calls"], r["calls_per_k"],
             ", ".join(f"{k} {v:,}" for k, v in sorted(r["counts"].items()))]
            for name, r in (("import", first), ("re-import (a copy: all applied)", again))]
    md = (f"## Import: {n:,} archived messages (SNS envelopes, one per line, {size / 2**20:.1f} MB gzip)\n\n"
          f"Soak traffic, emulator in a child process answering in {latency_ms} ms.\n\n"
          + md_table(head, rows) + "\n\n### Memory while the archive streams (this process)\n\n"
          + md_table(["messages done", "VmRSS MB"], [[m, round(r, 1)] for m, r in samples]) + "\n\n"
          f"Before wiring: {rss_before:.1f} MB; peak (VmHWM) over the whole run: {peak:.1f} MB.\n")
    return md, {"n": n, "archive_bytes": size, "import": first, "reimport": again, "rss_samples": samples,
                "rss_before_mb": rss_before, "peak_mb": peak}
