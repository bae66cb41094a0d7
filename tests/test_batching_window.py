"""Service mode gathers live traffic into fuller batches within `sqs.batch_window_seconds`, and an
empty queue is long-polled, never spun. On the in-memory queue with virtual time (ManualClock):
receive calls are counted, nothing is timed."""

from __future__ import annotations

import asyncio

from pgtest import pg_url  # noqa: F401  (fixture)

from connector.collector import LocalLease
from connector.config import SqsConfig
from connector.gather import LIVE_BATCH_MESSAGES, MIN_SERVICE_WAIT_SECONDS, Gatherer, Held, quiet_seconds
from connector.queue import ManualClock, MemoryQueue
from connector.state import open_state
from connector.state.lease import PgLease


def _gatherer(q: MemoryQueue, clock: ManualClock, *, drain: bool = False, **sqs) -> Gatherer:
    cfg = SqsConfig(queue_url="mem://q", region="us-east-1", **{"wait_seconds": 0, **sqs})
    return Gatherer(q, cfg, Held(q, cfg.visibility_timeout), asyncio.Event(), drain=drain, dry_run=False, clock=clock)


def _trickle(q: MemoryQueue, delays: list[float]) -> list[str]:
    return [q.send(f'{{"n": {i}}}', delay_seconds=d) for i, d in enumerate(delays)]


def test_messages_trickling_in_are_gathered_into_one_batch_within_the_window():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    ids = _trickle(q, [0, 0.5, 1.2, 2.0, 2.6, 4.5])       # the last one comes after a 3 s window
    g = _gatherer(q, clock, batch_window_seconds=3)
    start = clock()
    first = asyncio.run(g.gather(500))
    assert [m.sqs_message_id for m in first] == ids[:5]
    assert clock() - start <= 3                          # the oldest waited no longer than the window
    later = asyncio.run(g.gather(500)) or asyncio.run(g.gather(500))    # a 1 s poll may come back empty
    assert [m.sqs_message_id for m in later] == ids[5:]


def test_the_window_closes_early_when_the_batch_is_full():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0.1 * i for i in range(30)])
    g = _gatherer(q, clock, batch_window_seconds=10, batch_messages=20)
    start = clock()
    assert len(asyncio.run(g.gather(20))) == 20
    assert clock() - start < 10


def test_live_traffic_closes_the_window_once_a_batch_fills_one_combined_call():
    # 100 a second for 10 s: a 5 s window would hold 500, but 400 is what one /composite carries
    # (people, members, statuses: five collections), so the window closes at about 4 s.
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0.01 * i for i in range(1000)])
    g = _gatherer(q, clock, batch_window_seconds=5, batch_messages=1000)
    start = clock()
    batch = asyncio.run(g.gather(1000))
    assert len(batch) == LIVE_BATCH_MESSAGES     # never past it: a 401st person needs a third collection
    assert clock() - start < 5


def test_a_burst_that_ends_is_not_held_for_the_rest_of_the_window():
    # 100 a second for 2.5 s, then nothing: the window closes about 1 s after the last message
    # (ten mean gaps, at least a second), not 5 s after the first.
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    ids = _trickle(q, [0.01 * i for i in range(250)] + [30.0])
    g = _gatherer(q, clock, batch_window_seconds=5, batch_messages=1000)
    start = clock()
    batch = asyncio.run(g.gather(1000))
    assert [m.sqs_message_id for m in batch] == ids[:250]
    assert 2.5 <= clock() - start <= 4
    # The last few of a stream (ten at 20 a second): judged by their own pace, not by the time
    # the window has waited since (which would make a quiet stream look ever slower).
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    ids = _trickle(q, [0.05 * i for i in range(10)] + [30.0])
    g = _gatherer(q, clock, batch_window_seconds=5, batch_messages=1000, wait_seconds=20)
    start = clock()
    assert [m.sqs_message_id for m in asyncio.run(g.gather(1000))] == ids[:10]
    assert clock() - start <= 3


def test_a_burst_at_the_end_of_the_window_is_taken_without_waiting_past_it():
    # Ten messages at once just before a 3 s window ends: the receive that takes them comes back
    # full (a burst), and the receives that follow find nothing; they must not wait a second more.
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    ids = _trickle(q, [0, 0.4, 0.9, 1.4, 1.9] + [2.2] * 10)
    g = _gatherer(q, clock, batch_window_seconds=3, batch_messages=1000, parallel_receives=3, wait_seconds=20)
    start = clock()
    batch = asyncio.run(g.gather(1000))
    assert [m.sqs_message_id for m in batch] == ids
    assert clock() - start <= 3


def test_a_steady_stream_is_not_called_quiet():
    assert quiet_seconds(400, 4.0) == 1          # 100 a second: a second without one is the end
    assert quiet_seconds(25, 5.0) == 2           # 5 a second: two seconds
    assert quiet_seconds(5, 5.0) == 10           # 1 a second: longer than the window, never early
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0.2 * i for i in range(40)])            # 5 a second for 8 s, evenly
    g = _gatherer(q, clock, batch_window_seconds=5, batch_messages=1000)
    assert len(asyncio.run(g.gather(1000))) >= 24       # the whole 5 s window (~25 messages)


def test_a_backlog_in_service_mode_still_fills_the_budget():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0] * 900)
    g = _gatherer(q, clock, batch_window_seconds=5, batch_messages=1000)
    assert len(asyncio.run(g.gather(800))) == 800       # receives came back full: a backlog, not a trickle


def test_drain_gathers_as_fast_as_possible():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    ids = _trickle(q, [0, 0.5, 1.2])
    g = _gatherer(q, clock, drain=True, batch_window_seconds=3)
    assert [m.sqs_message_id for m in asyncio.run(g.gather(500))] == ids[:1]


def test_an_empty_queue_is_long_polled_even_with_wait_seconds_0():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    g = _gatherer(q, clock, batch_window_seconds=3)

    async def poll_for(span: float) -> None:
        end = clock() + span
        while clock() < end:
            assert await g.gather(500) == []

    # A safety net against a spin (virtual time would never move): not a timing assertion.
    asyncio.run(asyncio.wait_for(poll_for(60), timeout=30))
    assert q.receive_calls <= 60 / MIN_SERVICE_WAIT_SECONDS + 1


def test_held_messages_are_released_at_once_on_stop():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0, 0, 0])
    g = _gatherer(q, clock, batch_window_seconds=3)
    batch = asyncio.run(g.gather(500))
    assert len(batch) == 3 and q.receive(10, 0, 30) == []
    asyncio.run(g.held.release())
    assert len(q.receive(10, 0, 30)) == 3


# -- replicas: one collector while the queue is short (connector.collector) --------------------
def _replicas(q: MemoryQueue, clock: ManualClock, lease: LocalLease, n: int = 3, **sqs) -> list[Gatherer]:
    cfg = SqsConfig(queue_url="mem://q", region="us-east-1", **{"wait_seconds": 0, **sqs})
    return [Gatherer(q, cfg, Held(q, cfg.visibility_timeout), asyncio.Event(), drain=False, dry_run=False,
                     clock=clock, lease=lease.handle()) for _ in range(n)]


def test_replicas_on_a_trickle_take_turns_and_only_the_collector_receives():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    ids = _trickle(q, [0.4 * i for i in range(60)])          # 2.5 a second for 24 s
    lease = LocalLease(blocking=False)
    replicas = _replicas(q, clock, lease, batch_window_seconds=3)
    got: dict[str, int] = {}
    batches: list[tuple[int, int]] = []
    for _ in range(40):
        for k, g in enumerate(replicas):
            calls = q.receive_calls
            batch = asyncio.run(g.gather(500))
            if g.turns is not None and not g.turns.holding:
                assert q.receive_calls == calls and batch == []    # a waiting replica does not receive
            for m in batch:
                got[m.sqs_message_id] = got.get(m.sqs_message_id, 0) + 1
            if batch:
                batches.append((k, len(batch)))
                q.delete([m.handle for m in batch])
    assert got == {i: 1 for i in ids}
    assert {k for k, _ in batches} == {0, 1, 2}                      # the lease went round
    assert lease.turns[:6] == [0, 1, 2, 0, 1, 2]                     # in turn, as PostgreSQL grants it
    # One collector at a time makes the batches one replica would: about one per window.
    assert len(batches) <= 24 / 3 + 2


def test_a_deep_queue_is_received_by_every_replica():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0] * 1800)
    lease = LocalLease(blocking=False)
    replicas = _replicas(q, clock, lease, batch_window_seconds=3, batch_messages=500)
    sizes = [len(asyncio.run(g.gather(500))) for g in replicas]
    assert sizes == [500, 500, 500]         # the holder's batch came back full; the others saw the depth
    assert all(g.turns is not None and g.turns.deep for g in replicas)
    rest = [len(asyncio.run(g.gather(500))) for g in replicas]
    assert rest == [300, 0, 0]              # the backlog is worked off: short batches end it
    assert not any(g.turns is not None and g.turns.deep for g in replicas)


def test_without_a_lease_service_mode_is_unchanged():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0, 0, 0])
    a, b = (_gatherer(q, clock, batch_window_seconds=1) for _ in range(2))
    assert a.turns is None and len(asyncio.run(a.gather(500))) == 3


def test_the_postgres_lease_goes_to_the_waiter_and_dies_with_its_connection(pg_url):  # noqa: F811
    # The store makes its schema first, as a service does: the lease's key names that schema, so
    # this test's lease is not another test's (or another suite's, on the same server).
    store = open_state(pg_url)
    a, b = PgLease(pg_url, "mem://q"), PgLease(pg_url, "mem://q")
    other_queue = PgLease(pg_url, "mem://other")
    try:
        assert a.acquire(1) and other_queue.acquire(0.1)     # another queue's lease is another lock
        assert not b.acquire(0.1)
        a.release()
        assert b.acquire(0.1) and not a.acquire(0.1)
        b._conn.close()                                      # a replica that dies loses its lease
        assert a.acquire(1)
    finally:
        for lease in (a, b, other_queue):
            lease.close()
        store.close()


def test_max_lag_sizes_the_window_from_the_recent_batch_time():
    clock = ManualClock()
    q = MemoryQueue(clock=clock)
    _trickle(q, [0.25 * i for i in range(200)])
    g = _gatherer(q, clock, batch_window_seconds=10, max_lag_seconds=5)
    assert g.window_seconds() == 4.5                    # no batch yet: the target less the last receive's pace
    g.note_batch_seconds(1.0)
    assert g.window_seconds() == 2.5                    # the previous batch's time and its own come off
    start = clock()
    assert asyncio.run(g.gather(500))
    assert clock() - start <= 2.5                       # not the 10 s batch_window_seconds
    for _ in range(20):
        g.note_batch_seconds(3.0)                       # Salesforce got slow: no window at all
    assert g.window_seconds() == 0
    assert _gatherer(q, clock, batch_window_seconds=3).window_seconds() == 3    # without the key: the window
