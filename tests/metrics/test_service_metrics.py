"""Service mode with `metrics.port`: traffic through the in-memory queue and the emulator, then
/metrics scraped and parsed with prometheus_client's own text parser; /healthz when the loop is
blocked; /readyz when the state store goes away (its body naming it, nothing personal in it)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from jbtest import MemSqs, make_config, sample
from metricprobe import free_port, get, samples, total, until

from connector import __version__
from connector.metrics.health import Liveness, liveness_bound
from connector.metrics.run import RunMetrics
from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.wiring import wire

P = "jomablue_connector"


def _service(emu, tmp_path, queue: Any, **overrides: Any) -> tuple[Runner, Any]:
    cfg = make_config(emu, tmp_path / "s.db", metrics__port=free_port(), sqs__batch_window_seconds=0,
                      salesforce__retry_attempts=3, **overrides)
    wired = wire(cfg)
    runner = Runner(wired.engine, queue, cfg.sqs, drain=False)
    runner.metrics = RunMetrics.start(cfg, wired, queue, service=True)
    return runner, wired


async def _stop(runner: Runner, task: asyncio.Task) -> Any:
    runner.stop.set()
    runner.queue.interrupt()
    result = await asyncio.wait_for(task, timeout=10)
    runner.metrics.close()
    return result


def test_metrics_count_what_the_service_did(emu, tmp_path):
    q = MemSqs()
    q.publish(sample("event"))
    q.publish(sample("person"))
    q.send_raw("this is { not json")          # quarantined
    emu.org.set_api_usage(1_000, 100_000)
    emu.faults.fail_next(1, 503)             # the first call answers 503 once, then is retried
    runner, wired = _service(emu, tmp_path, q.queue)
    port = runner.metrics.server.port

    async def main() -> tuple[Any, str]:
        task = asyncio.create_task(runner.run())
        await until(lambda: len(q.queue) == 0, "the queue drained")
        await until(lambda: total(samples(get(port, "/metrics")[1]), f"{P}_messages_total") == 3, "3 counted")
        text = get(port, "/metrics")[1]
        return await _stop(runner, task), text

    result, text = asyncio.run(main())
    found = samples(text)
    # Messages by outcome (as in the message log lines) and resource type; the unreadable body has none.
    assert total(found, f"{P}_messages_total", outcome="synced", resource_type="event") == 1
    assert total(found, f"{P}_messages_total", outcome="synced", resource_type="person") == 1
    assert total(found, f"{P}_messages_total", outcome="quarantined", resource_type="other") == 1
    assert total(found, f"{P}_messages_total") == sum(result.counts.values()) == 3
    # Every API call, the 503 one included, with its status; the retry it caused.
    assert total(found, f"{P}_salesforce_api_calls_total", status="503") == 1
    assert total(found, f"{P}_salesforce_api_calls_total") == wired.gateway.stats.calls == result.api_calls
    assert total(found, f"{P}_salesforce_api_calls_total", status="2xx") == result.api_calls - 1
    assert total(found, f"{P}_salesforce_retries_total") == 1
    # Gauges: the quarantine, the budget from Sforce-Limit-Info, the queue, the last success.
    assert total(found, f"{P}_quarantined_messages") == len(wired.state.quarantined()) == 1
    assert total(found, f"{P}_salesforce_daily_api_requests_limit") == 100_000
    assert total(found, f"{P}_salesforce_daily_api_requests_used") >= 1_000
    assert total(found, f"{P}_queue_messages", queue="main") == 0
    assert total(found, f"{P}_last_success_timestamp_seconds") > 0
    # Histograms: one lag per message that left the queue, one duration per batch.
    assert total(found, f"{P}_lag_seconds_count") == 3
    assert total(found, f"{P}_batch_duration_seconds_count") >= 1
    assert total(found, f"{P}_build_info", version=__version__) == 1
    assert total(found, f"{P}_build_info", mapping_version=wired.mappings.version[:12]) == 1
    # Low cardinality: no label value is an id or an email.
    for (_name, labels), _v in found.items():
        for _k, value in labels:
            assert "@" not in value and "/" not in value, labels


def test_healthz_turns_503_while_the_loop_is_blocked_and_200_when_it_moves(emu, tmp_path):
    release = threading.Event()
    entered = threading.Event()

    class Wedged(MemoryQueue):
        def receive(self, *args: Any, **kwargs: Any) -> Any:
            if not release.is_set():
                entered.set()
                release.wait(30)       # a hung receive: the loop cannot complete an iteration
            return super().receive(*args, **kwargs)

    queue = Wedged()
    runner, _ = _service(emu, tmp_path, queue)
    port = runner.metrics.server.port
    runner.metrics.liveness = Liveness(0.2)     # the bound from config is minutes (tested below)

    async def main() -> list[tuple[int, str]]:
        task = asyncio.create_task(runner.run())
        await until(entered.is_set, "the receive hangs")
        await until(lambda: get(port, "/healthz")[0] == 503, "/healthz 503")
        wedged = get(port, "/healthz")
        release.set()
        await until(lambda: get(port, "/healthz")[0] == 200, "/healthz 200 again")
        healthy = get(port, "/healthz")
        await _stop(runner, task)
        return [wedged, healthy]

    (code, body), (code2, _) = asyncio.run(main())
    assert code == 503 and code2 == 200
    assert "consume_loop" in json.loads(body)["failing"]


def test_the_liveness_bound_comes_from_the_config(emu, tmp_path):
    cfg = make_config(emu, tmp_path / "s.db", sqs__wait_seconds=20, sqs__batch_window_seconds=5,
                      salesforce__timeout_seconds=60)
    assert liveness_bound(cfg) == 20 + 5 + 60 + 30
    slow = make_config(emu, tmp_path / "s.db", sqs__wait_seconds=20, sqs__batch_window_seconds=5,
                       salesforce__timeout_seconds=120)
    assert liveness_bound(slow) == liveness_bound(cfg) + 60
    clock = [0.0]
    live = Liveness(10, clock=lambda: clock[0])
    clock[0] = 11
    assert live.check() is not None
    live.beat(grace=100)            # a pause on purpose (an outage): not a wedged loop
    clock[0] = 100
    assert live.check() is None


def test_readyz_names_the_state_store_when_it_goes_away(emu, tmp_path):
    runner, wired = _service(emu, tmp_path, MemoryQueue())
    port = runner.metrics.server.port
    try:
        assert get(port, "/readyz")[0] == 200
        wired.state.close()
        code, body = get(port, "/readyz")
        assert code == 503
        doc = json.loads(body)
        assert list(doc["failing"]) == ["state_store"], doc
    finally:
        runner.metrics.close()


@pytest.mark.parametrize("redact", [False, True])
def test_readyz_bodies_carry_no_email_when_redacting(emu, tmp_path, redact):
    runner, wired = _service(emu, tmp_path, MemoryQueue(), logging__redact_personal_data=redact)
    port = runner.metrics.server.port

    def refuse() -> None:
        raise RuntimeError("password authentication failed for user ada.lovelace@example.com")

    wired.state.ping = refuse
    try:
        code, body = get(port, "/readyz")
    finally:
        runner.metrics.close()
    assert code == 503 and "state_store" in json.loads(body)["failing"]
    assert ("ada.lovelace@example.com" in body) is (not redact)
    if redact:
        assert "email:" in body


def test_a_taken_metrics_port_is_a_one_line_config_error(tmp_path, emu, memq):
    import socket

    from jbtest import cli, write_config

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = write_config(tmp_path, emu, memq, metrics__port=port)
        res = cli("run", "--config", str(cfg))       # service mode: the listener starts first
    assert res.returncode == 2
    assert f"metrics.port: cannot listen on port {port}" in res.stderr
