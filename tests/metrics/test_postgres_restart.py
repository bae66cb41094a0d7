"""A running service on `state.url` rides out what managed PostgreSQL does routinely: its
connections dropped (`pg_terminate_backend`, as a failover or a restart does). /readyz turns 503
naming the state store, then 200 once it is back; the service goes on without a restart, and
nothing is lost or written twice."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
from jbtest import MemSqs, make_config, sample
from metricprobe import free_port, get, until
from pgtest import base_url, pg_url  # noqa: F401  (fixture)

from connector.metrics.run import RunMetrics
from connector.runner import Runner
from connector.wiring import wire

pytestmark = [pytest.mark.e2e]


def _person(i: int) -> dict:
    return sample("person", identifiers__id=f"acme/event_person/{7000 + i}",
                  identifiers__email=f"restart{i}@example.com", identifiers__organisation_uid="",
                  identifiers__last_name=f"Restart{i}")


def _terminate(application_name: str) -> int:
    """Drop every connection of this test's store (only its own: other tests share the server)."""
    with psycopg.connect(base_url(), autocommit=True) as conn:
        rows = conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                            "where application_name = %s and pid <> pg_backend_pid()", [application_name]).fetchall()
    return len(rows)


def test_the_service_rides_out_dropped_postgresql_connections(emu, tmp_path, pg_url):  # noqa: F811
    cfg = make_config(emu, tmp_path / "unused.db", state__url=pg_url, metrics__port=free_port(),
                      sqs__batch_window_seconds=0, salesforce__retry_attempts=2)
    wired = wire(cfg)
    app = wired.state.application_name     # connector:<schema>: this test's store alone
    q = MemSqs()
    runner = Runner(wired.engine, q.queue, cfg.sqs, drain=False)
    runner.metrics = RunMetrics.start(cfg, wired, q.queue, service=True)
    port = runner.metrics.server.port
    q.publish(sample("event"))
    for i in range(5):
        q.publish(_person(i))

    async def main() -> dict:
        task = asyncio.create_task(runner.run())
        seen: dict = {}
        try:
            await until(lambda: len(q.queue) == 0, "the first messages synced")
            await until(lambda: get(port, "/readyz")[0] == 200, "ready")
            assert await asyncio.to_thread(_terminate, app) > 0
            code, body = await asyncio.to_thread(get, port, "/readyz")
            seen["dropped"] = (code, json.loads(body))
            await until(lambda: get(port, "/readyz")[0] == 200, "ready again")
            for i in range(5, 10):
                q.publish(_person(i))
            await until(lambda: len(q.queue) == 0 or task.done(), "the later messages synced")
            seen["alive"] = not task.done()
        finally:
            runner.stop.set()
            runner.queue.interrupt()
            try:
                seen["result"] = await asyncio.wait_for(task, timeout=20)
            except Exception as exc:  # noqa: BLE001 - the service died: asserted below, after the probes
                seen["result"] = exc
            runner.metrics.close()
        return seen

    seen = asyncio.run(main())
    code, doc = seen["dropped"]
    # The pool checks a connection before lending it and a read is retried once on a fresh one, so
    # a dropped connection is usually replaced before the probe notices; a probe that does notice
    # names the store, and nothing else.
    assert (code, doc["failing"]) == (200, {}) or (code == 503 and list(doc["failing"]) == ["state_store"]), doc
    assert seen["alive"] and not isinstance(seen["result"], Exception), f"the service ended: {seen['result']!r}"
    assert seen["result"].exit_code == 0
    assert len(q.queue) == 0
    leads = emu.org.records("Lead")
    emails = sorted(r["Email"] for r in leads)
    assert emails == sorted(f"restart{i}@example.com" for i in range(10))       # none lost, none twice
    assert len(emu.org.records("CampaignMember")) == 10
