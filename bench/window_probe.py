"""Measure the batching window (issue 13): live registrations at a steady rate through the real
Runner in service mode (MemoryQueue in real time → SyncEngine → gateway → emulator over HTTPS),
reporting API calls per 1,000 messages, batch sizes and send-to-committed lag for each window.

    PYTHONPATH=. python bench/window_probe.py --rate 20 --seconds 30 --windows 0 1 2 3 5 10
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path

from connector import logs
from connector.config import Config
from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.wiring import wire
from connector_devkit.emulator import Emulator
from connector_devkit.emulator.org import Org

SAMPLES = json.loads((Path(__file__).parents[1] / "tests/fixtures/jomablue-samples.json").read_text(encoding="utf-8"))


def person(i: int) -> str:
    p = copy.deepcopy(SAMPLES["person"])
    p["identifiers"].update(id=f"acme/event_person/{100000 + i}", email=f"live{i}@example.com",
                            organisation_uid=None)
    return json.dumps(p)


def measure(emu: Emulator, window: float, rate: float, seconds: float) -> dict:
    emu.org = Org(daily_limit=10_000_000)
    with tempfile.TemporaryDirectory() as state_dir:
        cfg = Config.model_validate({
            "sqs": {"queue_url": "mem://live", "region": "us-east-1", "wait_seconds": 20,
                    "batch_window_seconds": window},
            "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                           "auth": {"method": "client_credentials", "login_url": emu.url,
                                    "client_id": emu.client_id, "client_secret": emu.client_secret},
                           "requests_per_second": 25, "max_in_flight": 4},
            "state": {"path": str(Path(state_dir) / "s.db")},
        })
        wired = wire(cfg)
        q = MemoryQueue()
        q.send(json.dumps(SAMPLES["event"]))           # the event exists before the live traffic
        asyncio.run(Runner(wired.engine, q, cfg.sqs, drain=True).run())
        emu.reset_counters()

        total = int(rate * seconds)
        sent_at: dict[str, float] = {}
        lags: list[float] = []
        sizes: list[int] = []
        process = wired.engine.process

        async def timed(batch):
            out = await process(batch)
            now = time.monotonic()
            sizes.append(len(batch))
            lags.extend(now - sent_at[m.sqs_message_id] for m in batch)
            if len(lags) >= total:
                runner.stop.set()
            return out

        wired.engine.process = timed

        def produce() -> None:
            start = time.monotonic()
            for i in range(total):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                mid = q.send(person(i))
                sent_at[mid] = time.monotonic()   # the body is in the queue from here

        runner = Runner(wired.engine, q, cfg.sqs, drain=False)
        producer = threading.Thread(target=produce)
        producer.start()
        asyncio.run(runner.run())
        producer.join()
        lags.sort()
        return {
            "window_s": window, "messages": len(lags), "api_calls": emu.api_calls,
            "calls_per_1000": round(1000 * emu.api_calls / max(1, len(lags)), 1),
            "batches": len(sizes), "mean_batch": round(statistics.mean(sizes), 1),
            "lag_p50_s": round(lags[len(lags) // 2], 2), "lag_p99_s": round(lags[int(len(lags) * 0.99) - 1], 2),
            "receives": q.receive_calls,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--windows", type=float, nargs="+", default=[0, 1, 2, 3, 5, 10])
    args = ap.parse_args()
    logs.configure(level=logging.WARNING)
    emu = Emulator().start()
    emu.faults.latency_ms = args.latency_ms
    try:
        for w in args.windows:
            print(json.dumps({"rate": args.rate, **measure(emu, w, args.rate, args.seconds)}), flush=True)
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
