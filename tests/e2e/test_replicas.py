"""Three replicas on one queue with the PostgreSQL state store (`state.url`).

Three `connector run --drain` processes consume one moto queue holding a mixed stream:
registrations, check-ins and cancellations of the same people close together (so the versions
of one person are in different replicas' batches at the same time), stale re-sends, and a
category rename in the middle. Afterwards every person is one Lead and one CampaignMember, no
status went backwards (Cancelled > Attended > Registered, by the newest message), every member
shows the renamed category, and the replicas earned no UNABLE_TO_LOCK_ROW from each other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from jbtest import AWS_ENV, Aws, log_lines, sample, write_config
from pgtest import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def _engine_holds_resources() -> bool:
    """Whether the engine takes the store's per-resource holds (the lead wires StateStore.hold)."""
    import inspect

    import connector.sync.engine

    return "state.hold" in inspect.getsource(connector.sync.engine)


# Without per-resource holds two replicas apply one person's registration and check-in at once
# and the older status can land last (measured: 3 of 45 members; a race, so not strict). Once the
# engine holds, the condition is false and this is an ordinary test.
needs_engine_holds = pytest.mark.xfail(not _engine_holds_resources(), strict=False,
                                       reason="the engine does not take StateStore.hold() per batch yet")

N_PEOPLE = 45
T0 = datetime(2025, 9, 1, 0, 0, tzinfo=timezone.utc)


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(vip_name: str, at: float) -> dict:
    ev = sample("event", generated_at=_at(at))
    ev["data"]["categories"] = [{"id": "acme/category/7", "name": "Delegate"},
                                {"id": "acme/category/9", "name": vip_name}]
    return ev


def _person(i: int, at: float, *, checked_in: bool = False, cancelled: bool = False) -> dict:
    cat = {"id": "acme/category/9", "name": "VIP"} if i % 2 else {"id": "acme/category/7", "name": "Delegate"}
    p = sample("person", generated_at=_at(at), identifiers__id=f"acme/event_person/{2000 + i}",
               identifiers__email=f"replica{i}@example.com", identifiers__organisation_uid="",
               identifiers__last_name=f"Replica{i}", data__checked_in=checked_in, data__cancelled=cancelled,
               data__first_check_in=_at(at - 1) if checked_in else None, data__categories=[cat])
    return p


def expected_status(i: int) -> str:
    if i % 5 == 1:
        return "Cancelled"
    if i % 3 == 0:
        return "Attended"
    return "Registered"


def publish_mixed_queue(aws: Aws) -> set[str]:
    """The stream, in publish order; returns the Jomablue person ids."""
    aws.publish(_event("VIP", 0))
    later: list[tuple[int, dict]] = []
    for i in range(N_PEOPLE):
        aws.publish(_person(i, 100 + i))
        if i % 3 == 0:
            later.append((i + 4, _person(i, 1000 + i, checked_in=True)))
        if i % 5 == 1:
            later.append((i + 6, _person(i, 2000 + i, cancelled=True)))
        if i % 7 == 0:
            later.append((i + 9, _person(i, 50 + i)))           # a stale re-send of an older version
        if i == N_PEOPLE // 2:
            aws.publish(_event("VIP Gold", 500))                # the rename, mid-stream
        # Each person's later versions follow a few messages behind their registration, so they
        # land in other replicas' batches while the registration is still being worked on.
        for due, msg in [x for x in later if x[0] <= i]:
            aws.publish(msg)
            later.remove((due, msg))
    for _, msg in later:
        aws.publish(msg)
    return {f"acme/event_person/{2000 + i}" for i in range(N_PEOPLE)}


def _popen(cfg, *, drain: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, **AWS_ENV, "SF_CLIENT_SECRET": "emulator-secret", "PYTHONIOENCODING": "utf-8"}
    return subprocess.Popen([sys.executable, "-m", "connector", "run", "--config", str(cfg),
                             *(["--drain"] if drain else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, encoding="utf-8")


@needs_engine_holds
def test_three_replicas_drain_a_mixed_queue_exactly_once_and_never_backwards(tmp_path, emu, aws, pg_url):  # noqa: F811
    ids = publish_mixed_queue(aws)
    cfg = write_config(tmp_path, emu, aws, state__url=pg_url, sqs__batch_messages=10, sqs__visibility_timeout=30)
    emu.faults.latency_ms = 20
    procs = [_popen(cfg) for _ in range(3)]
    results = [p.communicate(timeout=240) for p in procs]
    logs = [log_lines(err) for _, err in results]
    for p, (_, err) in zip(procs, results):
        assert p.returncode in (0, 75), err[-3000:]
    # Messages a replica could not take (another held that person) or left to retry: one more
    # drain finishes them, as the next scheduled run would.
    if aws.depth():
        last = _popen(cfg)
        _, err = last.communicate(timeout=120)
        assert last.returncode == 0, err[-3000:]
        logs.append(log_lines(err))
    assert aws.depth() == 0

    leads = Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))
    assert set(leads) == ids and max(leads.values()) == 1, [k for k, v in leads.items() if v > 1]
    members = {r["Jomablue_Id__c"]: r for r in emu.org.records("CampaignMember")}
    assert Counter(r["Jomablue_Id__c"] for r in emu.org.records("CampaignMember")) == Counter(ids)
    assert len(emu.org.records("Campaign")) == 1
    backwards = {k: (m["Status"], expected_status(int(k.rsplit("/", 1)[1]) - 2000))
                 for k, m in members.items() if m["Status"] != expected_status(int(k.rsplit("/", 1)[1]) - 2000)}
    assert not backwards, f"{len(backwards)} members with an older status: {backwards}"
    stale_names = {k: m.get("Jomablue_Categories__c") for k, m in members.items()
                   if (int(k.rsplit("/", 1)[1]) - 2000) % 2 and m.get("Jomablue_Categories__c") != "VIP Gold"}
    assert not stale_names, f"{len(stale_names)} members with the old category name: {stale_names}"
    lines = [line for log in logs for line in log]
    locked = [line for line in lines if "UNABLE_TO_LOCK_ROW" in str(line)]
    assert not locked, locked[:5]
    synced = Counter(line.get("outcome") for line in lines if line.get("event") == "message")
    assert synced["quarantined"] == 0, synced


def test_overlapping_scheduled_runs_on_one_sqlite_file_never_move_a_status_backwards(tmp_path, emu, aws):
    """A cron schedule that overlaps a slow run (issue #11): three `connector run --drain` on one
    SQLite state file and one queue. The run lock makes them take turns (each waits for the one
    before), so no run acts on what another has not committed: no status ever goes backwards."""
    ids = publish_mixed_queue(aws)
    cfg = write_config(tmp_path, emu, aws, sqs__batch_messages=10, sqs__visibility_timeout=30,
                       state__lock_wait_seconds=120)
    emu.faults.latency_ms = 20
    procs = [_popen(cfg) for _ in range(3)]
    results = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert aws.depth() == 0
    leads = Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))
    assert set(leads) == ids and max(leads.values()) == 1
    members = {r["Jomablue_Id__c"]: r["Status"] for r in emu.org.records("CampaignMember")}
    wrong = {k: s for k, s in members.items() if s != expected_status(int(k.rsplit("/", 1)[1]) - 2000)}
    assert not wrong, f"{len(wrong)} members with an older status: {wrong}"


def test_three_service_replicas_on_a_trickle_take_turns_collecting_and_sync_each_message_once(
        tmp_path, emu, aws, pg_url):  # noqa: F811
    """Live traffic (issue 18): three `connector run` services on one queue with the PostgreSQL
    store. While the queue is short one replica at a time holds the collector lease and gathers
    with the batching window; the others do not receive. Every person is synced once, the turns
    (logged per batch, `ended` read before the lease is handed on) never overlap, and more than
    one replica collected."""
    cfg = write_config(tmp_path, emu, aws, state__url=pg_url, sqs__batch_window_seconds=1, sqs__wait_seconds=1)
    procs = [_popen(cfg, drain=False) for _ in range(3)]
    n = 30
    try:
        _wait_for_lease_queue(pg_url, aws.queue_url, 3, procs)     # all three started: now the trickle
        aws.publish(_event("VIP", 0))
        for i in range(n):                      # a trickle: about ten a second
            aws.publish(_person(i, 100 + i))
            time.sleep(0.1)
        deadline = time.monotonic() + 120
        while len(emu.org.records("CampaignMember")) < n and time.monotonic() < deadline:
            time.sleep(0.5)
        while aws.depth() and time.monotonic() < deadline:      # the deletes follow the commit
            time.sleep(0.2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        results = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert aws.depth() == 0
    ids = {f"acme/event_person/{2000 + i}" for i in range(n)}
    assert Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead")) == Counter(ids)
    assert Counter(r["Jomablue_Id__c"] for r in emu.org.records("CampaignMember")) == Counter(ids)

    logs = [log_lines(err) for _, err in results]
    synced = Counter(line.get("resource_id") for log in logs for line in log
                     if line.get("event") == "message" and line.get("outcome") == "synced"
                     and line.get("resource_type") == "person")
    assert synced == Counter(ids), synced                    # each person synced once, by one replica
    turns = sorted((line["started"], line["ended"], k) for k, log in enumerate(logs) for line in log
                   if line.get("event") == "collector_turn")
    overlapping = [(a, b) for a, b in zip(turns, turns[1:]) if b[0] < a[1]]
    assert not overlapping, overlapping
    collectors = {k for k, log in enumerate(logs) for line in log
                  if line.get("event") == "message" and line.get("outcome") == "synced"}
    assert len(collectors) >= 2, "the lease never went round"


def _wait_for_lease_queue(url: str, queue_url: str, replicas: int, procs: list[subprocess.Popen[str]]) -> None:
    """Until `replicas` sessions hold or wait for the queue's collector lease (pg_locks shows an
    advisory lock on a bigint key as classid = its high half, objid = its low half, objsubid 1)."""
    import psycopg

    key = "hashtextextended(coalesce(current_schema(), '') || ':collector:' || %s, 0)"
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline and all(p.poll() is None for p in procs):
            (n,) = conn.execute(
                f"select count(*) from pg_locks, (select {key} as k) lease where locktype = 'advisory' and "
                "objsubid = 1 and classid = ((k >> 32) & 4294967295)::oid and objid = (k & 4294967295)::oid",
                (queue_url,)).fetchone()
            if n >= replicas:
                return
            time.sleep(0.05)
    raise AssertionError("the replicas never all waited for the collector lease")
