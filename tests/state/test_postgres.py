"""What only the PostgreSQL store does: replicas migrating together, per-resource holds across
processes, per-Campaign locks, the shared call budget, and clear errors when the server is away."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from pgtest import pg_url  # noqa: F401  (fixture)

from connector.config import StateConfig
from connector.errors import StateUnavailable, StopRun
from connector.state import open_state
from connector.state.pg_migrations import MIGRATIONS
from connector.state.postgres import PostgresStateStore, redact
from connector.state.shared_limit import SharedCallLimit


def test_replicas_starting_together_migrate_once(pg_url):  # noqa: F811
    barrier = threading.Barrier(4)

    def start() -> PostgresStateStore:
        barrier.wait()
        return PostgresStateStore(pg_url)

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: start(), range(4)))
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("select name from _migrations order by name")]
    assert names == [name for name, _ in MIGRATIONS]
    stores[0].put_people({"p": {"sobject": "Lead", "sf_id": "00Q"}})
    assert stores[3].people(["p"])["p"]["sf_id"] == "00Q"
    for s in stores:
        s.close()


def test_a_resource_held_by_one_replica_is_refused_to_another_until_released(pg_url):  # noqa: F811
    a, b = open_state(pg_url), open_state(pg_url)
    assert a.hold(["person:1", "person:2"]) == {"person:1", "person:2"}
    assert b.hold(["person:2", "person:3"]) == {"person:3"}
    assert a.hold(["person:1"]) == {"person:1"}        # a holder may ask again
    a.release_held()
    assert b.hold(["person:1", "person:2"]) == {"person:1", "person:2"}
    assert b.lock_stats["refused"] == 1
    a.close()
    b.release_held()
    b.close()


def test_holds_end_with_the_process_that_took_them(pg_url):  # noqa: F811
    a, b = open_state(pg_url), open_state(pg_url)
    a.hold(["person:1"])
    assert b.hold(["person:1"]) == set()
    a.close()                                           # a crashed replica's connection goes away
    # The server ends the session a moment after the client hangs up: ask until it has.
    deadline = time.monotonic() + 10
    while not b.hold(["person:1"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.hold(["person:1"]) == {"person:1"}
    b.close()


def test_stores_in_different_schemas_do_not_share_locks(pg_url):  # noqa: F811
    import uuid

    from pgtest import drop_schema, schema_url

    other = "jbtest_" + uuid.uuid4().hex[:12]
    a, b = open_state(pg_url), open_state(schema_url(other))
    try:
        assert a.hold(["person:1"]) == {"person:1"}
        assert b.hold(["person:1"]) == {"person:1"}

        async def both() -> None:
            async with a.campaign_lock("701A"), b.campaign_lock("701A"):
                pass

        asyncio.run(asyncio.wait_for(both(), 10))
    finally:
        a.close()
        b.close()
        drop_schema(other)


def test_campaign_lock_serialises_one_campaigns_member_writes_across_replicas(pg_url):  # noqa: F811
    a, b = open_state(pg_url), open_state(pg_url)
    order: list[str] = []

    async def go() -> None:
        entered = asyncio.Event()

        async def second() -> None:
            async with b.campaign_lock("701A"):
                order.append("b-in")
                entered.set()

        async with a.campaign_lock("701A"):
            order.append("a-in")
            task = asyncio.create_task(second())
            # b must wait while a holds the lock; another Campaign is not blocked meanwhile.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(entered.wait()), 0.5)
            async with b.campaign_lock("701B"):
                order.append("b-other")
            order.append("a-out")
        await asyncio.wait_for(task, 10)

    asyncio.run(go())
    assert order == ["a-in", "b-other", "a-out", "b-in"]
    assert b.lock_stats["campaign_waits"] == 1
    a.close()
    b.close()


def test_campaign_lock_is_released_when_the_block_fails(pg_url):  # noqa: F811
    a, b = open_state(pg_url), open_state(pg_url)

    async def fail() -> None:
        async with a.campaign_lock("701A"):
            raise RuntimeError("member write failed")

    with pytest.raises(RuntimeError):
        asyncio.run(fail())

    async def take() -> str:
        async with b.campaign_lock("701A"):
            return "got it"

    assert asyncio.run(asyncio.wait_for(take(), 10)) == "got it"
    a.close()
    b.close()


def test_shared_rate_reserves_the_next_free_instant_for_every_replica(pg_url):  # noqa: F811
    stores = [open_state(pg_url) for _ in range(3)]
    limits = [SharedCallLimit(s.pool, requests_per_second=1, max_in_flight=5) for s in stores]
    waits = []
    for i in range(6):                      # three replicas taking turns, faster than 1 a second
        lim = limits[i % 3]
        conn = lim.pool.getconn()
        try:
            waits.append(lim._reserve(conn))
        finally:
            lim.pool.putconn(conn)
    # One bucket for all: each call is booked one second after the previous one.
    assert waits[0] == 0
    assert all(later > earlier + 0.5 for earlier, later in zip(waits, waits[1:])), waits
    assert waits[-1] > 4
    for s in stores:
        s.close()


def test_shared_in_flight_cap_holds_across_replicas(pg_url):  # noqa: F811
    stores = [open_state(pg_url, pool_size=6) for _ in range(3)]
    limits = [SharedCallLimit(s.pool, requests_per_second=10_000, max_in_flight=2) for s in stores]
    now = peak = 0

    async def call(lim: SharedCallLimit) -> None:
        nonlocal now, peak
        async with lim.slot():
            now += 1
            peak = max(peak, now)
            await asyncio.sleep(0.05)
            now -= 1

    async def go() -> None:
        await asyncio.gather(*(call(limits[i % 3]) for i in range(18)))

    asyncio.run(go())
    assert peak == 2
    assert sum(lim.stats["slot_waits"] for lim in limits) > 0
    for s in stores:
        s.close()


def test_an_unreachable_server_is_a_clear_error_without_the_password():
    url = "postgresql://connector:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(StateUnavailable) as err:
        PostgresStateStore(url, connect_timeout=2)
    assert "s3cret" not in str(err.value) and "connector:***@127.0.0.1:1/nowhere" in str(err.value)
    assert isinstance(err.value, StopRun) and str(err.value).startswith("cannot open the state store at ")
    assert err.value.location == "postgresql://connector:***@127.0.0.1:1/nowhere" and err.value.cause
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_state_url_must_be_postgresql_and_wins_over_path():
    cfg = StateConfig(url="postgresql://u@h/db?options=-csearch_path%3Dconnector")
    assert cfg.location == "postgresql://u@h/db?options=-csearch_path%3Dconnector"
    assert StateConfig().location == StateConfig().path and StateConfig().keep_days == 30
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        StateConfig(url="mysql://u@h/db")
    with pytest.raises(ValueError):
        StateConfig(keep_days=0)


def test_shared_holds_exclude_only_an_exclusive_holder(pg_url):  # noqa: F811
    a, b, c = open_state(pg_url), open_state(pg_url), open_state(pg_url)
    # Two person batches of one event read its category table together...
    assert a.hold(["person:1"], shared=["event:e"]) == {"person:1", "event:e"}
    assert b.hold(["person:2"], shared=["event:e"]) == {"person:2", "event:e"}
    # ...while the event's own message (a rename) waits until neither does.
    assert c.hold(["event:e"]) == set()
    a.release_held()
    b.release_held()
    assert c.hold(["event:e"], shared=["event:e"]) == {"event:e"}     # in both: exclusive
    assert a.hold(["person:1"], shared=["event:e"]) == {"person:1"}
    for s in (a, b, c):
        s.release_held()
        s.close()


def test_hold_can_wait_for_another_replicas_batch_to_commit(pg_url):  # noqa: F811
    a, b = open_state(pg_url), open_state(pg_url)
    a.hold(["person:1"])
    threading.Timer(0.3, a.release_held).start()       # a's batch commits a moment later
    assert b.hold(["person:1", "person:2"], wait_seconds=20) == {"person:1", "person:2"}
    assert b.lock_stats["hold_waits"] == 1 and b.lock_stats["refused"] == 0
    b.release_held()
    b.hold(["person:1"])
    assert a.hold(["person:1", "person:3"], wait_seconds=0.2) == {"person:3"}   # gives up in time
    for s in (a, b):
        s.release_held()
        s.close()


def test_two_waiting_batches_never_sit_on_each_others_keys(pg_url):  # noqa: F811
    # An event batch (exclusive) and a person batch (shared on the event) start together: neither
    # keeps a part of its keys while waiting for the rest, so one gets everything, then the other.
    from concurrent.futures import FIRST_COMPLETED, wait

    a, b = open_state(pg_url), open_state(pg_url)
    want = {a: {"event:1", "event:2", "person:a"}, b: {"person:b", "event:1", "event:2"}}
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(a.hold, ["event:1", "event:2", "person:a"], (), 10)
        fb = pool.submit(b.hold, ["person:b"], ["event:2", "event:1"], 10)
        done, _ = wait([fa, fb], timeout=30, return_when=FIRST_COMPLETED)
        first = done.pop()
        winner, loser, later = (a, b, fb) if first is fa else (b, a, fa)
        assert first.result() == want[winner]
        winner.release_held()
        assert later.result(timeout=30) == want[loser]
    assert a.lock_stats["refused"] == 0 and b.lock_stats["refused"] == 0
    for s in (a, b):
        s.release_held()
        s.close()
