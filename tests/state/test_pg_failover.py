"""Issue 19: a PostgreSQL restart or failover (`pg_terminate_backend` of the store's connections)
must not end a service. The next operations recover on fresh connections; a batch cut off in its
transaction fails as one StateUnavailable (a StopRun: the service pauses and retries) and leaves
nothing half-written; applied again, it lands once."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from pgtest import base_url, pg_url  # noqa: F401  (fixture)

from connector.errors import StateUnavailable, StopRun
from connector.state.postgres import PostgresStateStore
from connector.state.sql import NOTHING_LOST
from connector.sync.changes import ChangeSet


def terminate(store: PostgresStateStore) -> int:
    """What a restart does to this store: every one of its server sessions ends (its
    application_name names its schema, so other stores on the server are left alone)."""
    with psycopg.connect(base_url(), autocommit=True) as admin:
        rows = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database()"
            " and pid <> pg_backend_pid() and application_name = %s", [store.application_name]).fetchall()
    return len(rows)


def _batch(n: int, key: str) -> ChangeSet:
    return ChangeSet(people={f"{key}{i}": {"sobject": "Lead", "sf_id": f"00Q{i:015d}"} for i in range(n)},
                     resources=[(f"person:{key}{i}", "h", "2025-01-01T00:00:00+00:00") for i in range(n)],
                     outcomes=[{"message_key": f"m-{key}{i}", "outcome": "synced"} for i in range(n)])


def test_reads_writes_and_locks_work_again_after_the_servers_sessions_end(pg_url):  # noqa: F811
    store = PostgresStateStore(pg_url, pool_size=4)
    store.apply(_batch(3, "a"))
    assert store.hold(["person:a0"]) == {"person:a0"}
    assert terminate(store) >= 2                      # the pool's connection and the lock connection
    store.ping()                                      # readiness: answers again at once
    assert set(store.people(["a0", "a1", "a2"])) == {"a0", "a1", "a2"}
    store.apply(_batch(3, "b"))
    assert store.outcome_counts() == {"synced": 6}
    assert store.hold(["person:a0"]) == {"person:a0"}  # the lost lock connection is opened again

    async def lock() -> None:
        async with store.campaign_lock("701A"):
            pass

    terminate(store)
    asyncio.run(asyncio.wait_for(lock(), 10))
    store.release_held()
    store.close()


class _CutOff(PostgresStateStore):
    """A store whose server restarts in the middle of a batch's transaction (after its people
    and before its outcomes are written): the fault is the server's, the store is the real one."""

    cut = False

    def put_members(self, rows: dict[str, dict[str, Any]]) -> None:
        super().put_members(rows)
        if self.cut:
            self.cut = False
            terminate(self)


def test_a_batch_cut_off_fails_as_state_unavailable_and_leaves_nothing_half_written(pg_url):  # noqa: F811
    store = _CutOff(pg_url, pool_size=4)
    store.cut = True
    with pytest.raises(StateUnavailable) as err:
        store.apply(_batch(5, "p"))
    assert isinstance(err.value, StopRun) and str(err.value).endswith(NOTHING_LOST)
    assert err.value.location == pg_url                  # no password in the test URL: shown as configured
    assert store.people([f"p{i}" for i in range(5)]) == {} and store.outcome_counts() == {}
    assert store.resources(["person:p0"]) == {}
    store.apply(_batch(5, "p"))                            # the batch again, as the service retries it
    assert len(store.people([f"p{i}" for i in range(5)])) == 5
    assert [r["attempts"] for r in store._query("select attempts from messages")] == [1] * 5   # once
    store.close()
