"""Workload shapes of issue 13, each measured in API calls against its lower bound.

Every shape runs on a fresh emulator and a fresh state store; what a shape needs in place first
(known people, an event) is synced in an unmeasured setup drain. Only the measured drain's calls
count. The bound (harness.Bound) is what the shape must cost at least: every record it has to
write in full 200-record sObject Collections calls, every query it has to ask five to a
/composite call, nothing it can already know asked again (bench/README.md, "Lower bounds").
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from harness import (
    ISSUE_PEOPLE_PER_QUERY,
    Bound,
    Drain,
    default_batch_messages,
    drain,
    kinds,
    md_table,
    new_people_batch_calls,
    per_k,
    person_queries,
    pipeline_config,
    start_emulator,
)
from traffic import (
    BASE_TIME,
    CATEGORIES,
    dumps,
    event_payload,
    iso,
    make_people_traffic,
    registration,
    seed_contacts,
    session_checkin,
)

from connector.wiring import Wired, wire
from connector_devkit.emulator import Emulator


@dataclass
class ShapeResult:
    name: str
    run: Drain
    bound: Bound
    batch_messages: int

    def row(self) -> list[Any]:
        r, b = self.run, self.bound
        ratio = f"{r.calls / b.calls:.1f}×" if b.calls else ("0 = bound" if r.calls == 0 else f"+{r.calls}")
        return [self.name, r.messages, self.batch_messages, r.batches, r.calls, per_k(r.calls, r.messages),
                b.calls, per_k(b.calls, r.messages), ratio, b.packed_calls, per_k(b.packed_calls, r.messages),
                kinds(r.by_kind)]

    def as_dict(self) -> dict[str, Any]:
        r = self.run
        return {"shape": self.name, "messages": r.messages, "batch_messages": self.batch_messages,
                "batches": r.batches, "seconds": round(r.seconds, 2), "api_calls": r.calls,
                "calls_per_1000": per_k(r.calls, r.messages), "calls_by_kind": r.by_kind,
                "bound_calls": self.bound.calls, "bound_per_1000": per_k(self.bound.calls, r.messages),
                "bound_derivation": self.bound.derivation(), "composite_bound_calls": self.bound.packed_calls,
                "composite_bound_per_1000": per_k(self.bound.packed_calls, r.messages), "bound_why": self.bound.why,
                "issue_bound_calls": self.bound.issue_packed_calls,
                "issue_bound_per_1000": per_k(self.bound.issue_packed_calls, r.messages),
                "batch_floor_calls": self.bound.batch_floor,
                "batch_floor_per_1000": per_k(self.bound.batch_floor, r.messages) if self.bound.batch_floor else None,
                "outcomes": r.counts, "exit_code": r.exit_code, "reason": r.reason, "notes": r.notes}


@contextmanager
def fresh(latency_ms: int, batch_messages: int | None = None) -> Iterator[tuple[Emulator, Wired]]:
    emu = start_emulator(latency_ms)
    with tempfile.TemporaryDirectory(prefix="bench-shape-") as d:
        wired = wire(pipeline_config(emu, d, batch_messages=batch_messages))
        try:
            yield emu, wired
        finally:
            wired.state.close()
            emu.stop()


def _statuses(wired: Wired, campaigns: int) -> int:
    """Member status records `campaigns` new Campaigns need (the mapping's statuses on each)."""
    return campaigns * len(wired.mappings.statuses)


def _event(n: int, days: int = -30) -> dict[str, Any]:
    return event_payload(n, CATEGORIES, BASE_TIME + timedelta(days=days))


def _people(ev: dict[str, Any], first_pid: int, n: int, minute: int = 0, **kw: Any) -> list[dict[str, Any]]:
    return [registration(ev, first_pid + k, BASE_TIME + timedelta(minutes=minute, seconds=k), **kw)
            for k in range(n)]


def _republished(msg: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The same message published again later, only Jomablue's own timestamps moved (generated_at,
    data.updated_at): nothing the mapping writes (its check-in time stays the one already sent)."""
    again = copy.deepcopy(msg)
    again["generated_at"] = iso(at)
    again["data"]["updated_at"] = again["generated_at"]
    return again


def new_people_batch_floor(n: int, batch_messages: int) -> int:
    """The fewest calls n new people at one event cost with the batches as a drain makes them (the
    event message first, then batch_messages a batch): each batch's lookup must come back before
    its people's writes (one call for up to five queries, with the Campaign and its statuses in
    the first), then its Lead and member collections five a call."""
    sizes = [batch_messages - 1] + [batch_messages] * ((n - (batch_messages - 1)) // batch_messages)
    if sum(sizes) < n:
        sizes.append(n - sum(sizes))
    # The Campaign and its statuses ride in the first batch's lookup call.
    return sum(new_people_batch_calls(k, riders=2 if i == 0 else 0) for i, k in enumerate(sizes))


# -- the shapes -----------------------------------------------------------------------------------
def events_after_people(latency_ms: int, events: int = 200, per_event: int = 5) -> ShapeResult:
    """(a) every event's people arrive before the event messages (placeholder Campaigns first)."""
    with fresh(latency_ms) as (_emu, wired):
        people = [dumps(p) for e in range(1, events + 1) for p in _people(_event(e), 1_000_000 + 100 * e, per_event)]
        run = drain(wired, people + [dumps(_event(e, days=0)) for e in range(1, events + 1)])
        n = events * per_event
        bound = Bound({"placeholder Campaign upsert": events, "CampaignMemberStatus create": _statuses(wired, events),
                       "Lead upsert": n, "CampaignMember upsert": n, "event Campaign update": events,
                       "CampaignMember category update": n}, person_queries(n),
                      "members are written when their people arrive; the events then fill in their "
                      "Campaigns and the category names of their members, all events in the same calls",
                      issue_queries=person_queries(n, per_query=ISSUE_PEOPLE_PER_QUERY))
    return ShapeResult(f"a. {events} events, their {events * per_event:,} people arriving first", run, bound,
                       default_batch_messages())


def known_people_updates(latency_ms: int, n: int = 5_000) -> list[ShapeResult]:
    """(b) updates of people already synced: a changed title, then a re-publish changing nothing mapped."""
    with fresh(latency_ms) as (_emu, wired):
        ev = _event(1)
        drain(wired, [dumps(ev)] + [dumps(p) for p in _people(ev, 2_000_000, n)])
        changed = drain(wired, [dumps(p) for p in _people(ev, 2_000_000, n, minute=60, title="Chief Bench Officer")])
        later = BASE_TIME + timedelta(hours=3)
        same = drain(wired, [dumps(p) for p in _people(ev, 2_000_000, n, minute=120, title="Chief Bench Officer",
                                                             updated_at=later)])
    b = default_batch_messages()
    return [
        ShapeResult(f"b. {n:,} updates of known people (job title changed)", changed,
                    Bound({"Lead update": n}, 0, "Ids known from the state store: no lookup; members unchanged"), b),
        ShapeResult(f"b'. {n:,} re-publishes of known people (only data.updated_at changed)", same,
                    Bound({}, 0, "nothing any write would send has changed"), b),
    ]


def sessions_then_people(latency_ms: int, n: int = 1_000, sessions: int = 5) -> list[ShapeResult]:
    """(c) session check-ins of known people, then their person messages, then an unchanged re-publish."""
    with fresh(latency_ms) as (_emu, wired):
        ev = _event(1)
        people = _people(ev, 3_000_000, n)
        drain(wired, [dumps(ev)] + [dumps(p) for p in people])
        checkins = drain(wired, [dumps(session_checkin(ev, p, 1 + k % sessions, BASE_TIME + timedelta(hours=1, seconds=k)))
                                       for k, p in enumerate(people)])
        checked = _people(ev, 3_000_000, n, minute=120, checked_in=True)
        person_run = drain(wired, [dumps(p) for p in checked])
        republish = drain(wired, [dumps(_republished(p, BASE_TIME + timedelta(hours=4))) for p in checked])
        st = _statuses(wired, sessions)
    b = default_batch_messages()
    return [
        ShapeResult(f"c1. {n:,} session check-ins of known people ({sessions} sessions)", checkins,
                    Bound({"session Campaign upsert": sessions, "CampaignMemberStatus create": st,
                           "session CampaignMember upsert": n}, 0,
                          "the person fields in the session context are unchanged: no Lead write, no lookup"), b),
        ShapeResult(f"c2. then {n:,} person messages (checked in)", person_run,
                    Bound({"CampaignMember update": n}, 0, "only the event member's status changes"), b),
        ShapeResult(f"c3. then the same {n:,} re-published unchanged", republish,
                    Bound({}, 0, "nothing any write would send has changed"), b),
    ]


def new_people(latency_ms: int, n: int = 10_000, batch_messages: int = 500) -> ShapeResult:
    """(d) a backlog of new registrations at one event, in batches of `batch_messages`."""
    with fresh(latency_ms, batch_messages) as (_emu, wired):
        ev = _event(1)
        run = drain(wired, [dumps(ev)] + [dumps(p) for p in _people(ev, 4_000_000, n)])
        floor = new_people_batch_floor(n, batch_messages)
        bound = Bound({"Campaign upsert": 1, "CampaignMemberStatus create": _statuses(wired, 1),
                       "Lead upsert": n, "CampaignMember upsert": n}, person_queries(n),
                      "the same for any batch size: the bound does not depend on how batches fall; with "
                      f"the batches as they fall (each batch's lookup before its writes) at least {floor}",
                      issue_queries=person_queries(n, per_query=ISSUE_PEOPLE_PER_QUERY), batch_floor=floor)
    return ShapeResult(f"d. {n:,} new people, batches of {batch_messages:,}", run, bound, batch_messages)


def backlog_mix(latency_ms: int, n: int = 10_000, seed: int = 7) -> list[ShapeResult]:
    """The benchmark's mix: n person messages over 5 events, 30 % duplicates/stale, 10 % Contacts."""
    with fresh(latency_ms) as (emu, wired):
        traffic = seed_contacts(emu, make_people_traffic(n, seed))
        run = drain(wired, [json.dumps(e, ensure_ascii=False) for e in traffic.events] + traffic.bodies)
        repeats = drain(wired, traffic.repeats())
        primaries, contacts = traffic.count("primary"), len(traffic.contacts)
        bound = Bound({"Campaign upsert": len(traffic.events),
                       "CampaignMemberStatus create": _statuses(wired, len(traffic.events)),
                       "Lead upsert": primaries - contacts, "Contact update": contacts,
                       "CampaignMember upsert": primaries}, person_queries(primaries),
                      "each first send written once; duplicates and stale messages cost nothing",
                      issue_queries=person_queries(primaries, per_query=ISSUE_PEOPLE_PER_QUERY))
    b = default_batch_messages()
    return [ShapeResult(f"backlog mix: {n:,} person messages over {len(traffic.events)} events, 30 % repeats",
                        run, bound, b),
            ShapeResult(f"backlog repeats re-sent ({repeats.messages:,} duplicates/stale)", repeats,
                        Bound({}, 0, "already applied"), b)]


def two_event_queue(latency_ms: int, per_event: int = 300) -> ShapeResult:
    """A 602-message queue: two events, then 300 new people each."""
    with fresh(latency_ms) as (_emu, wired):
        evs = [_event(1), _event(2)]
        people = [p for i, ev in enumerate(evs) for p in _people(ev, 5_000_000 + 10_000 * i, per_event)]
        run = drain(wired, [dumps(e) for e in evs] + [dumps(p) for p in people])
        bound = Bound({"Campaign upsert": 2, "CampaignMemberStatus create": _statuses(wired, 2),
                       "Lead upsert": len(people), "CampaignMember upsert": len(people)},
                      person_queries(len(people)), "",
                      issue_queries=person_queries(len(people), per_query=ISSUE_PEOPLE_PER_QUERY))
    return ShapeResult(f"{2 + len(people)}-message queue, two events", run, bound, default_batch_messages())


# -- the report -------------------------------------------------------------------------------------
def run_shapes(latency_ms: int, seed: int) -> tuple[str, dict[str, Any]]:
    results: list[ShapeResult] = []
    steps = [
        lambda: [events_after_people(latency_ms)],
        lambda: known_people_updates(latency_ms),
        lambda: sessions_then_people(latency_ms),
        lambda: [new_people(latency_ms, batch_messages=500)],
        lambda: [new_people(latency_ms, batch_messages=1000)],
        lambda: backlog_mix(latency_ms, seed=seed),
        lambda: [two_event_queue(latency_ms)],
    ]
    for step in steps:
        for r in step():
            results.append(r)
            print(f"  {r.name}: {r.run.calls} calls (bound {r.bound.calls}), {r.run.seconds:.1f} s", flush=True)
    head = ["shape", "messages", "batch", "batches", "API calls", "calls/1k", "bound", "bound/1k",
            "vs bound", "composite bound", "composite bound/1k", "calls by kind"]
    table = md_table(head, [r.row() for r in results])
    derivations = md_table(["shape", "bound", "derivation", "composite bound", "why"],
                           [[r.name, r.bound.calls, r.bound.derivation(), r.bound.packed_calls, r.bound.why or "-"]
                            for r in results])
    md = ("## Workload shapes vs their lower bound\n\n"
          f"Emulator latency {latency_ms} ms a call; drain mode; calls per 1,000 of the measured messages. "
          "bound: writes 200 records a Collections call, queries 5 a /composite call; composite bound: "
          "also the writes' Collections subrequests five to a /composite call (bench/README.md).\n\n"
          f"{table}\n\n### How each bound is derived\n\n{derivations}\n")
    return md, {"latency_ms": latency_ms, "shapes": [r.as_dict() for r in results]}
