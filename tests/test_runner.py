"""The run loop as a long-running service (no --drain): it waits out a spent budget or an outage
instead of exiting, and stops cleanly when asked."""

from __future__ import annotations

import asyncio
import json

from jbtest import sample

from connector.config import Config
from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.wiring import wire


def _wired(emu, tmp_path):
    cfg = Config.model_validate({
        "sqs": {"queue_url": "mem://q", "region": "us-east-1", "wait_seconds": 0,
                "batch_window_seconds": 1},   # the window has its own tests (test_batching_window.py)
        "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                       "auth": {"method": "client_credentials", "login_url": emu.url,
                                "client_id": emu.client_id, "client_secret": emu.client_secret},
                       "requests_per_second": 1000, "retry_attempts": 2, "retry_base_seconds": 0.01,
                       "retry_max_wait_seconds": 0.02},
        "state": {"path": str(tmp_path / "s.db")},
    })
    return cfg, wire(cfg)


async def _serve_until(runner: Runner, done, heal, timeout: float = 20.0):
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.3)
    heal()
    for _ in range(int(timeout / 0.05)):
        if done():
            break
        await asyncio.sleep(0.05)
    runner.stop.set()
    return await asyncio.wait_for(task, timeout=10)


def test_a_service_waits_for_the_budget_to_come_back(emu, tmp_path):
    cfg, w = _wired(emu, tmp_path)
    q = MemoryQueue()
    q.send(json.dumps(sample("event")))
    q.send(json.dumps(sample("person")))
    emu.org.set_api_usage(90_000, 100_000)
    runner = Runner(w.engine, q, cfg.sqs, drain=False)
    runner.budget_pause_seconds = 0.1
    result = asyncio.run(_serve_until(runner, lambda: len(q) == 0, lambda: emu.org.set_api_usage(1_000, 100_000)))
    assert result.exit_code == 0
    assert len(q) == 0 and len(emu.org.records("CampaignMember")) == 1


def test_a_service_waits_out_an_outage(emu, tmp_path):
    cfg, w = _wired(emu, tmp_path)
    q = MemoryQueue()
    q.send(json.dumps(sample("person")))
    emu.faults.fail_rate(1.0)
    runner = Runner(w.engine, q, cfg.sqs, drain=False)
    runner.outage_pause_seconds = 0.1
    result = asyncio.run(_serve_until(runner, lambda: len(q) == 0, lambda: emu.faults.fail_rate(0)))
    assert result.exit_code == 0 and len(q) == 0
    assert len(emu.org.records("Lead")) == 1


def test_drain_mode_exits_75_on_an_outage_and_keeps_the_messages(emu, tmp_path):
    cfg, w = _wired(emu, tmp_path)
    q = MemoryQueue()
    q.send(json.dumps(sample("person")))
    emu.faults.fail_rate(1.0)
    result = asyncio.run(Runner(w.engine, q, cfg.sqs, drain=True).run())
    assert result.exit_code == 75 and "kept failing" in result.reason
    assert len(q) == 1
