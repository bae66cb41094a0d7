"""The run loop as a long-running service (no --drain): it waits out a spent budget or an outage
instead of exiting, and stops cleanly when asked."""

from __future__ import annotations

import asyncio
import json

from jbtest import make_config, sample

from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.wiring import wire


def _wired(emu, tmp_path):
    # the batching window has its own tests (test_batching_window.py)
    cfg = make_config(emu, tmp_path / "s.db", salesforce__retry_attempts=2, salesforce__retry_max_wait_seconds=0.02,
                      sqs__batch_window_seconds=1)
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
    runner.queue.interrupt()        # as the SIGTERM handler does: the long poll under way ends now
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


def test_a_spent_budget_reading_is_checked_with_salesforce_once_before_giving_up(emu, tmp_path):
    """The last run saw the budget spent; the org's limit was raised since: one /limits call, then work."""
    cfg, wired = _wired(emu, tmp_path)
    wired.gateway.guard.observe(99_000, 100_000)        # the stored reading: over the 80 % budget
    wired.gateway.guard.from_store = True
    emu.org.set_api_usage(10, 200_000)                    # the admin raised the limit meanwhile
    q = MemoryQueue()
    q.send(json.dumps(sample("event")))
    result = asyncio.run(Runner(wired.engine, q, cfg.sqs, drain=True).run())
    assert result.exit_code == 0, result.reason
    assert result.counts["synced"] == 1
    assert emu.calls_by_kind["limits"] == 1, emu.calls_by_kind


def test_a_budget_still_spent_after_the_recheck_stops_with_the_messages_queued(emu, tmp_path):
    cfg, wired = _wired(emu, tmp_path)
    wired.gateway.guard.observe(99_000, 100_000)
    wired.gateway.guard.from_store = True
    emu.org.set_api_usage(99_500, 100_000)
    q = MemoryQueue()
    q.send(json.dumps(sample("event")))
    result = asyncio.run(Runner(wired.engine, q, cfg.sqs, drain=True).run())
    assert result.exit_code == 75 and "budget" in result.reason
    assert len(q) == 1 and emu.org.records("Campaign") == []
