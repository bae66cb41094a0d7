"""Issue 19: a service on the PostgreSQL store rides out a restart (`pg_terminate_backend` of its
connections), in process through the runner and the in-memory queue: a batch cut off in its
commit is released and retried after the outage pause (StateUnavailable is a StopRun), the next
batches run on fresh connections, and every person is in Salesforce and in the store once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jbtest import make_config, sample
from pgtest import pg_url  # noqa: F401  (fixture)
from test_pg_failover import terminate

from connector.errors import StopRun
from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.state.postgres import PostgresStateStore
from connector.state.sql import NOTHING_LOST
from connector.wiring import wire


def _person(i: int) -> str:
    return json.dumps(sample("person", identifiers__id=f"acme/event_person/{7100 + i}",
                             identifiers__email=f"restart{i}@example.com", identifiers__organisation_uid="",
                             identifiers__last_name=f"Restart{i}"))


async def _until(done: Any, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def test_a_service_on_postgresql_survives_its_connections_being_dropped(emu, tmp_path, pg_url, monkeypatch):  # noqa: F811
    cfg = make_config(emu, tmp_path / "unused.db", state__url=pg_url, sqs__batch_window_seconds=0)
    wired = wire(cfg)
    store = wired.state
    assert isinstance(store, PostgresStateStore)
    q = MemoryQueue()
    runner = Runner(wired.engine, q, cfg.sqs, drain=False)
    runner.outage_pause_seconds = 0.05
    pauses: list[str] = []
    pause = runner._pause

    async def noted_pause(exc: StopRun) -> None:
        pauses.append(str(exc))
        await pause(exc)

    monkeypatch.setattr(runner, "_pause", noted_pause)
    cuts: list[int] = []
    put_members = store.put_members

    def restart_mid_commit(rows: dict[str, dict[str, Any]]) -> None:
        put_members(rows)
        if not cuts:                       # the server restarts once, inside a batch's transaction
            cuts.append(terminate(store))

    async def serve() -> None:
        task = asyncio.create_task(runner.run())
        q.send(json.dumps(sample("event")))
        for i in range(3):
            q.send(_person(i))
        await _until(lambda: len(q) == 0)
        terminate(store)                   # between batches: the next one meets dead connections
        for i in range(3, 6):
            q.send(_person(i))
        await _until(lambda: len(q) == 0)
        setattr(store, "put_members", restart_mid_commit)   # noqa: B010 - an instance's own writer, wrapped
        for i in range(6, 9):
            q.send(_person(i))
        await _until(lambda: len(q) == 0)
        assert not task.done()             # the service never ended
        runner.stop.set()
        q.interrupt()
        result = await asyncio.wait_for(task, 10)
        assert result.exit_code == 0

    asyncio.run(serve())
    assert cuts and cuts[0] >= 1
    # The one batch cut off paused the service once, saying what failed (not a lock it lost).
    [paused] = pauses
    assert paused.startswith(f"cannot write to the state store at {pg_url}: ") and paused.endswith(NOTHING_LOST)
    leads = [r for r in emu.org.records("Lead") if str(r.get("Email", "")).startswith("restart")]
    assert len(leads) == 9                                      # nothing lost, nothing twice
    assert len(emu.org.records("CampaignMember")) == 9
    people = store.people([f"acme/event_person/{7100 + i}" for i in range(9)])
    assert len(people) == 9
    assert store.outcome_counts() == {"synced": 10}
    attempts = [r["attempts"] for r in store._query("select attempts from messages")]
    assert attempts == [1] * 10                                 # the cut-off batch left no outcome behind
    store.close()
