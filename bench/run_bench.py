"""Throughput and API-call benchmark: the real pipeline against a naive one-call-per-write baseline.

    .venv/bin/python bench/run_bench.py [--scenario people|naive|rename|all] [--n 10000]
                                        [--naive-n 1500] [--latency-ms 20] [--seed 7]

Every scenario gets a fresh Salesforce emulator (HTTPS, `faults.latency_ms` added to every REST
call) and a fresh state store. The connector side is the real pipeline:
MemoryQueue → Runner → SyncEngine → SalesforceGateway → emulator. API calls are counted by the
emulator (the OAuth token request is not an API call). Results: a table on stdout and
bench/results/latest.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector import logs  # noqa: E402
from connector.config import Config, SqsConfig  # noqa: E402
from connector.queue import MemoryQueue  # noqa: E402
from connector.runner import Runner  # noqa: E402
from connector.wiring import wire  # noqa: E402
from connector_devkit.emulator import Emulator  # noqa: E402

SAMPLES = json.loads((ROOT / "tests" / "fixtures" / "jomablue-samples.json").read_text(encoding="utf-8"))
RESULTS = ROOT / "bench" / "results" / "latest.json"

# The limiter is deliberately out of the way: we measure call counts and pipeline cost, not the
# configured politeness towards Salesforce.
REQUESTS_PER_SECOND = 1000
MAX_IN_FLIGHT = 4

N_EVENTS = 5
REPEAT_SHARE = 0.30        # duplicates + stale re-sends, out of all person messages
CONTACT_SHARE = 0.10       # people whose organisation_uid is an existing Contact id
CHECKED_IN_SHARE = 0.35
BASE_TIME = datetime(2025, 9, 10, 8, 0, tzinfo=timezone.utc)

KOREAN = (["민준", "서연", "지훈", "하은", "도윤", "수아", "예준", "지우", "시우", "하윤"],
          ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"])
THAI = (["สมชาย", "ศรีสุดา", "ประยุทธ", "กมลชนก", "ธนพล", "วราภรณ์", "อนุชา", "นภัสสร"],
        ["ศรีสวัสดิ์", "วงศ์สุวรรณ", "แก้วมณี", "บุญมา", "ทองดี", "สุขสันต์", "จันทร์เพ็ญ"])
LATIN = (["José", "Zoë", "Łukasz", "Siobhán", "François", "Ingrid", "Mateo", "Aoife", "Chloé", "Jürgen",
          "Olivia", "Liam"],
         ["García", "Müller", "Nguyễn", "O'Brien", "Kowalski", "Dubois", "Smith", "Ólafsdóttir", "Rossi"])
COMPANIES = ["Acme Corp", "삼성전자", "บริษัท ไทยเบฟ", "Globex Pty Ltd", "Initech", "Société Générale", ""]
TITLES = ["Marketing Manager", "CTO", "엔지니어", "ผู้จัดการ", "Analyst", "", "Head of Sales"]
CATEGORIES = [("7", "Delegate"), ("9", "VIP"), ("11", "Speaker"), ("12", "Exhibitor")]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# -- traffic --------------------------------------------------------------------------------
@dataclass
class Traffic:
    events: list[dict[str, Any]]
    bodies: list[str]                       # person messages, in send order
    kinds: list[str]                        # primary | duplicate | stale, per body
    contacts: list[dict[str, Any]]          # Contacts to seed before the run (need "Id" filled)

    def repeats(self) -> list[str]:
        return [b for b, k in zip(self.bodies, self.kinds) if k != "primary"]

    def count(self, kind: str) -> int:
        return sum(1 for k in self.kinds if k == kind)


def event_payload(n: int, categories: list[tuple[str, str]], generated_at: datetime) -> dict[str, Any]:
    ev = copy.deepcopy(SAMPLES["event"])
    ev["generated_at"] = iso(generated_at)
    ev["identifiers"]["id"] = f"acme/event/{9000 + n}"
    ev["data"]["name"] = f"Bench Conference {n} 벤치 การประชุม"
    ev["data"]["metadata"] = {"region": "APAC", "fiscal-year": "FY26"}
    ev["data"]["categories"] = [{"id": f"acme/category/{cid}", "name": name} for cid, name in categories]
    return ev


def person_payload(ev: dict[str, Any], pid: int, first: str, last: str, email: str, uid: str,
                   checked_in: bool, cat_ids: list[str], generated_at: datetime, title: str,
                   company: str) -> dict[str, Any]:
    p = copy.deepcopy(SAMPLES["person"])
    p["generated_at"] = iso(generated_at)
    # context.event_metadata equals the event's metadata: a difference means "metadata drift"
    # to the engine and costs a Campaign update.
    p["context"] = {"event_id": ev["identifiers"]["id"], "event_name": ev["data"]["name"],
                    "event_metadata": copy.deepcopy(ev["data"]["metadata"])}
    p["identifiers"] = {"first_name": first, "last_name": last, "email": email, "phone": f"+6140{pid:07d}",
                        "company": company, "id": f"acme/event_person/{pid}", "organisation_uid": uid}
    p["data"].update({
        "job_title": title, "cancelled": False, "checked_in": checked_in,
        "first_check_in": iso(generated_at - timedelta(seconds=3)) if checked_in else None,
        "categories": [{"id": f"acme/category/{c}", "name": dict(CATEGORIES)[c]} for c in cat_ids],
        "custom_fields": {"dietary_requirements": "", "state": "NSW"},
        "updated_at": iso(generated_at - timedelta(seconds=1)),
    })
    return p


def make_people_traffic(n: int, seed: int) -> Traffic:
    rnd = random.Random(seed)
    events = [event_payload(i + 1, CATEGORIES, BASE_TIME - timedelta(days=30)) for i in range(N_EVENTS)]
    n_repeat = round(n * REPEAT_SHARE)
    n_primary = n - n_repeat
    primaries: list[tuple[float, str, str]] = []        # (order key, body, kind)
    contacts: list[dict[str, Any]] = []
    specs: list[tuple[dict[str, Any], dict[str, Any]]] = []   # (primary payload, stale variant)
    for k in range(n_primary):
        pid = 500_000 + k
        ev = events[k % N_EVENTS]
        firsts, lasts = rnd.choice([KOREAN, THAI, LATIN])
        first, last = rnd.choice(firsts), rnd.choice(lasts)
        email = f"bench.{pid}@example.com"
        uid = ""
        if rnd.random() < CONTACT_SHARE:
            contact = {"FirstName": first, "LastName": last, "Email": f"contact.{pid}@example.org"}
            contacts.append(contact)
            uid = f"contact:{len(contacts) - 1}"      # filled in once the Contact exists
            email = contact["Email"]
        checked = rnd.random() < CHECKED_IN_SHARE
        cats = [rnd.choice(["7", "7", "7", "9", "11", "12"])]
        gen = BASE_TIME + timedelta(seconds=k)
        title, company = rnd.choice(TITLES), rnd.choice(COMPANIES)
        p = person_payload(ev, pid, first, last, email, uid, checked, cats, gen, title, company)
        older = person_payload(ev, pid, first, last, email, uid, False, cats, gen - timedelta(hours=2),
                               "Previous title", company)
        specs.append((p, older))
        primaries.append((float(k), "", "primary"))
    # Repeats land after their primary: in the same batch or a few batches later.
    repeats: list[tuple[float, int, str]] = []
    for r in range(n_repeat):
        k = rnd.randrange(n_primary)
        kind = "duplicate" if r % 2 == 0 else "stale"
        repeats.append((k + rnd.uniform(0.5, 1500), k, kind))
    order: list[tuple[float, int, str]] = [(float(k), k, "primary") for k in range(n_primary)] + repeats
    order.sort(key=lambda t: t[0])
    bodies, kinds = [], []
    for _key, k, kind in order:
        p, older = specs[k]
        bodies.append(json.dumps(older if kind == "stale" else p, ensure_ascii=False))
        kinds.append(kind)
    return Traffic(events, bodies, kinds, contacts)


def seed_contacts(emu: Emulator, traffic: Traffic) -> Traffic:
    """Create the Contacts in the org and put their ids into organisation_uid."""
    ids = [emu.org.insert("Contact", c) for c in traffic.contacts]
    bodies = []
    for b in traffic.bodies:
        if '"organisation_uid": "contact:' in b:
            start = b.index('"organisation_uid": "contact:') + len('"organisation_uid": "contact:')
            end = b.index('"', start)
            b = b[: start - len("contact:")] + ids[int(b[start:end])] + b[end:]
        bodies.append(b)
    return Traffic(traffic.events, bodies, traffic.kinds, traffic.contacts)


# -- harness --------------------------------------------------------------------------------
def start_emulator(latency_ms: int) -> Emulator:
    emu = Emulator().start()
    emu.faults.latency_ms = latency_ms
    return emu


BATCH_MESSAGES: int | None = None      # --batch-messages; None keeps the connector's default


def pipeline_config(emu: Emulator, state_dir: str) -> Config:
    sqs: dict[str, Any] = {"queue_url": "mem://bench", "region": "us-east-1", "wait_seconds": 0}
    if BATCH_MESSAGES:
        sqs["batch_messages"] = BATCH_MESSAGES
    return Config.model_validate({
        "sqs": sqs,
        "salesforce": {
            "instance_url": emu.url, "ca_bundle": emu.ca_path,
            "auth": {"method": "client_credentials", "login_url": emu.url,
                     "client_id": emu.client_id, "client_secret": emu.client_secret},
            "requests_per_second": REQUESTS_PER_SECOND, "max_in_flight": MAX_IN_FLIGHT,
            "retry_base_seconds": 0.05,
        },
        "state": {"path": os.path.join(state_dir, "state.db")},
    })


@dataclass
class Drain:
    messages: int
    seconds: float
    calls: int
    by_kind: dict[str, int]
    counts: dict[str, int]
    exit_code: int
    reason: str | None
    notes: list[str] = field(default_factory=list)


def drain(wired: Any, emu: Emulator, bodies: list[str]) -> Drain:
    """Send bodies to a fresh MemoryQueue and run the real Runner until the queue is empty."""
    q = MemoryQueue()
    for b in bodies:
        q.send(b)
    emu.reset_counters()
    notes_before = len(wired.engine.notes)
    runner = Runner(wired.engine, q, wired.cfg.sqs, drain=True)
    t0 = time.perf_counter()
    res = asyncio.run(runner.run())
    seconds = time.perf_counter() - t0
    if len(q):
        res.notes = list(res.notes) + [f"{len(q)} messages still in the queue"]
    return Drain(len(bodies), seconds, emu.api_calls, dict(sorted(emu.calls_by_kind.items())),
                 dict(sorted(res.counts.items())), res.exit_code, res.reason,
                 list(wired.engine.notes[notes_before:]))


def per_k(calls: int, messages: int) -> float:
    return round(1000 * calls / messages, 2) if messages else 0.0


# -- scenario 1: people through the pipeline --------------------------------------------------
def scenario_people(n: int, latency_ms: int, seed: int) -> dict[str, Any]:
    emu = start_emulator(latency_ms)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as d:
        try:
            traffic = seed_contacts(emu, make_people_traffic(n, seed))
            wired = wire(pipeline_config(emu, d))
            events = [json.dumps(e, ensure_ascii=False) for e in traffic.events]
            first = drain(wired, emu, events + traffic.bodies)
            repeats = traffic.repeats()
            second = drain(wired, emu, repeats)
            org = {o: len(emu.org.records(o)) for o in ("Lead", "Contact", "Campaign", "CampaignMember")}
        finally:
            emu.stop()
    return {
        "scenario": "people",
        "person_messages": n, "event_messages": len(traffic.events),
        "primaries": traffic.count("primary"), "duplicates": traffic.count("duplicate"),
        "stale": traffic.count("stale"), "seeded_contacts": len(traffic.contacts),
        "seconds": round(first.seconds, 2),
        "messages_per_second": round(first.messages / first.seconds, 1),
        "api_calls": first.calls,
        "calls_per_1000_person_messages": per_k(first.calls, n),
        "calls_by_kind": first.by_kind, "outcomes": first.counts, "exit_code": first.exit_code,
        "reason": first.reason, "notes": first.notes,
        "target_calls_per_1000": 25, "meets_target": per_k(first.calls, n) <= 25,
        "repeat_drain": {"messages": second.messages, "seconds": round(second.seconds, 2),
                         "api_calls": second.calls, "calls_by_kind": second.by_kind,
                         "outcomes": second.counts, "target_calls": 0, "meets_target": second.calls == 0},
        "org_records": org,
    }


# -- scenario 2: the naive baseline ------------------------------------------------------------
class NaiveConnector:
    """What a first, obvious connector does: one single-record REST call per write, in order.

    Per person message: one SOQL lookup (the Contact by Id when organisation_uid is one, else the
    Lead by email), one single-record write of the person (PATCH sobjects/Contact/{Id}, or an
    upsert PATCH sobjects/Lead/Jomablue_Id__c/{id}), one single-record CampaignMember upsert.
    Per event: one Campaign upsert and one create per member status it needs. No state, no
    deduplication, no batching, sequential.
    """

    def __init__(self, emu: Emulator, api_version: str = "62.0") -> None:
        self.s = requests.Session()
        self.s.verify = emu.ca_path
        tok = self.s.post(f"{emu.url}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": emu.client_id,
            "client_secret": emu.client_secret}, timeout=30).json()
        self.s.headers["Authorization"] = f"Bearer {tok['access_token']}"
        self.base = f"{tok['instance_url']}/services/data/v{api_version}/"
        self.campaigns: dict[str, str] = {}   # within-run memory of the event → Campaign id
        self.errors = 0

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.s.request(method, self.base + path, timeout=30, **kw)
        if r.status_code >= 400:
            self.errors += 1
            return None
        return r.json() if r.content else None

    def _soql(self, q: str) -> list[dict[str, Any]]:
        res = self._call("GET", "query/", params={"q": q})
        return (res or {}).get("records", [])

    def event(self, ev: dict[str, Any]) -> None:
        d, eid = ev["data"], ev["identifiers"]["id"]
        res = self._call("PATCH", f"sobjects/Campaign/Jomablue_Id__c/{quote(eid, safe='')}",
                         json={"Name": d["name"][:80], "Type": "Conference", "IsActive": True})
        if res:
            self.campaigns[eid] = res["id"]
            for label, responded in (("Registered", False), ("Attended", True)):
                self._call("POST", "sobjects/CampaignMemberStatus",
                           json={"CampaignId": res["id"], "Label": label, "HasResponded": responded})

    def person(self, p: dict[str, Any]) -> None:
        i, d = p["identifiers"], p["data"]
        jid, uid = i["id"], i.get("organisation_uid") or ""
        fields = {"FirstName": i["first_name"][:40], "LastName": i["last_name"][:80] or "[not provided]",
                  "Email": i["email"] or None, "Phone": i["phone"] or None, "Title": d.get("job_title") or None}
        who: tuple[str, str] | None = None
        if uid.startswith("003"):
            found = self._soql(f"SELECT Id FROM Contact WHERE Id = '{uid}'")
            if found:
                self._call("PATCH", f"sobjects/Contact/{found[0]['Id']}", json=fields)
                who = ("ContactId", found[0]["Id"])
        if who is None:
            email = (i["email"] or "").replace("\\", "\\\\").replace("'", "\\'")
            self._soql(f"SELECT Id FROM Lead WHERE Email = '{email}'")
            res = self._call("PATCH", f"sobjects/Lead/Jomablue_Id__c/{quote(jid, safe='')}",
                             json={**fields, "Company": i["company"] or "[not provided]", "LeadSource": "Jomablue"})
            if not res:
                return
            who = ("LeadId", res["id"])
        cid = self.campaigns.get(p["context"]["event_id"])
        if not cid:
            return
        status = "Attended" if d.get("checked_in") else "Registered"
        self._call("PATCH", f"sobjects/CampaignMember/Jomablue_Id__c/{quote(jid, safe='')}",
                   json={"CampaignId": cid, who[0]: who[1], "Status": status,
                         "Jomablue_Category_Ids__c": ";".join(c["id"] for c in d.get("categories") or [])})


def scenario_naive(n: int, latency_ms: int, seed: int, extrapolate_to: int) -> dict[str, Any]:
    emu = start_emulator(latency_ms)
    try:
        traffic = seed_contacts(emu, make_people_traffic(n, seed))
        naive = NaiveConnector(emu)
        emu.reset_counters()
        t0 = time.perf_counter()
        for ev in traffic.events:
            naive.event(ev)
        for body in traffic.bodies:
            naive.person(json.loads(body))
        seconds = time.perf_counter() - t0
        calls, by_kind = emu.api_calls, dict(sorted(emu.calls_by_kind.items()))
        emu.reset_counters()
        t1 = time.perf_counter()
        for body in traffic.repeats():
            naive.person(json.loads(body))
        r_seconds, r_calls = time.perf_counter() - t1, emu.api_calls
    finally:
        emu.stop()
    k = per_k(calls, n)
    return {
        "scenario": "naive",
        "person_messages": n, "event_messages": len(traffic.events),
        "seconds": round(seconds, 2), "messages_per_second": round((n + len(traffic.events)) / seconds, 1),
        "api_calls": calls, "calls_per_1000_person_messages": k, "calls_by_kind": by_kind,
        "errors": naive.errors,
        "extrapolated_to": extrapolate_to,
        "extrapolated_api_calls": round(k * extrapolate_to / 1000),
        "extrapolated_seconds": round(seconds * extrapolate_to / n, 1),
        "repeat_drain": {"messages": len(traffic.repeats()), "seconds": round(r_seconds, 2), "api_calls": r_calls},
    }


# -- scenario 3: category rename fan-out ------------------------------------------------------
def scenario_rename(members: int, latency_ms: int, seed: int) -> dict[str, Any]:
    rnd = random.Random(seed)
    emu = start_emulator(latency_ms)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as d:
        try:
            wired = wire(pipeline_config(emu, d))
            cats = [("7", "Delegate"), ("9", "VIP")]
            ev = event_payload(77, cats, BASE_TIME - timedelta(days=30))
            people = []
            for k in range(members):
                firsts, lasts = rnd.choice([KOREAN, THAI, LATIN])
                people.append(json.dumps(person_payload(
                    ev, 800_000 + k, rnd.choice(firsts), rnd.choice(lasts), f"vip.{k}@example.com", "",
                    rnd.random() < CHECKED_IN_SHARE, ["9"] if k % 4 else ["7", "9"],
                    BASE_TIME + timedelta(seconds=k), "Guest", "Acme Corp"), ensure_ascii=False))
            setup = drain(wired, emu, [json.dumps(ev, ensure_ascii=False)] + people)
            renamed = event_payload(77, [("7", "Delegate"), ("9", "VIP Platinum")], BASE_TIME + timedelta(days=1))
            run = drain(wired, emu, [json.dumps(renamed, ensure_ascii=False)])
            shown = [r.get("Jomablue_Categories__c") for r in emu.org.records("CampaignMember")]
        finally:
            emu.stop()
    update_calls = run.by_kind.get("collections_update", 0)
    return {
        "scenario": "rename",
        "members": members,
        "setup": {"messages": setup.messages, "seconds": round(setup.seconds, 2), "api_calls": setup.calls,
                  "calls_by_kind": setup.by_kind, "outcomes": setup.counts},
        "rename_run": {"messages": run.messages, "seconds": round(run.seconds, 2), "api_calls": run.calls,
                       "calls_by_kind": run.by_kind, "outcomes": run.counts, "notes": run.notes},
        "update_calls": update_calls, "target_update_calls": 5, "meets_target": update_calls <= 5,
        "members_showing_new_name": sum(1 for s in shown if s and "VIP Platinum" in s),
        "members_still_showing_old_name": sum(1 for s in shown if s and "VIP" in s.split(";")),
    }


# -- output -----------------------------------------------------------------------------------
def kinds(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def print_people(r: dict[str, Any]) -> None:
    rd = r["repeat_drain"]
    print("\n== people: real pipeline (MemoryQueue → Runner → SyncEngine → gateway → emulator) ==")
    print(f"  traffic           {r['person_messages']:,} person messages over {r['event_messages']} events "
          f"(events published first): {r['primaries']:,} first sends ({r['seeded_contacts']:,} with "
          f"organisation_uid = a seeded Contact), {r['duplicates']:,} duplicates, {r['stale']:,} stale")
    print(f"  messages          {r['person_messages'] + r['event_messages']:,}")
    print(f"  seconds           {r['seconds']}")
    print(f"  messages/s        {r['messages_per_second']}")
    print(f"  API calls         {r['api_calls']:,}")
    print(f"  calls/1,000 msgs  {r['calls_per_1000_person_messages']}  (target ≤ {r['target_calls_per_1000']}: "
          f"{'met' if r['meets_target'] else 'MISSED'})")
    print(f"  calls by kind     {kinds(r['calls_by_kind'])}")
    print(f"  outcomes          {kinds(r['outcomes'])}  exit {r['exit_code']}"
          + (f" ({r['reason']})" if r['reason'] else ""))
    print(f"  dup/stale re-sent {rd['messages']:,} messages in a second drain: {rd['api_calls']} API calls "
          f"(target 0: {'met' if rd['meets_target'] else 'MISSED'}), {rd['seconds']} s; "
          f"calls by kind: {kinds(rd['calls_by_kind'])}; outcomes: {kinds(rd['outcomes'])}")
    print(f"  org afterwards    {kinds(r['org_records'])}")


def print_naive(r: dict[str, Any]) -> None:
    print("\n== naive baseline: one single-record call per write, sequential, requests ==")
    print(f"  traffic           the same generator, N = {r['person_messages']:,} person messages "
          f"+ {r['event_messages']} events")
    print(f"  seconds           {r['seconds']}")
    print(f"  messages/s        {r['messages_per_second']}")
    print(f"  API calls         {r['api_calls']:,}  (errors: {r['errors']})")
    print(f"  calls/1,000 msgs  {r['calls_per_1000_person_messages']}  (extrapolated to "
          f"{r['extrapolated_to']:,} messages: ~{r['extrapolated_api_calls']:,} calls, ~{r['extrapolated_seconds']} s)")
    print(f"  calls by kind     {kinds(r['calls_by_kind'])}")
    print(f"  dup/stale re-sent {r['repeat_drain']['messages']:,} messages: {r['repeat_drain']['api_calls']:,} API calls")


def print_rename(r: dict[str, Any]) -> None:
    s, run = r["setup"], r["rename_run"]
    print(f"\n== rename: event with category VIP and {r['members']:,} members, then VIP renamed ==")
    print(f"  setup             {s['messages']:,} messages, {s['seconds']} s, {s['api_calls']} calls "
          f"({kinds(s['calls_by_kind'])})")
    print(f"  rename run        1 event message, {run['seconds']} s, {run['api_calls']} API calls "
          f"({kinds(run['calls_by_kind'])})")
    print(f"  update calls      {r['update_calls']}  (target ≤ {r['target_update_calls']}: "
          f"{'met' if r['meets_target'] else 'MISSED'})")
    print(f"  members now       {r['members_showing_new_name']:,} show the new name, "
          f"{r['members_still_showing_old_name']:,} still show 'VIP'")
    for note in run["notes"]:
        print(f"  note              {note}")


def print_summary(results: dict[str, Any]) -> None:
    rows = []
    if "people" in results:
        r = results["people"]
        rows.append(("connector", f"{r['person_messages']:,}", r["seconds"], r["messages_per_second"],
                     f"{r['api_calls']:,}", r["calls_per_1000_person_messages"], r["repeat_drain"]["api_calls"]))
    if "naive" in results:
        r = results["naive"]
        rows.append(("naive", f"{r['person_messages']:,}", r["seconds"], r["messages_per_second"],
                     f"{r['api_calls']:,}", r["calls_per_1000_person_messages"], r["repeat_drain"]["api_calls"]))
    if not rows:
        return
    head = ("run", "person msgs", "seconds", "msgs/s", "API calls", "calls/1k", "repeat calls")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print("\n== summary ==")
    for row in (head, *rows):
        print("  " + "  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=["people", "naive", "rename", "all"], default="all")
    ap.add_argument("--n", type=int, default=10_000, help="person messages for the people scenario")
    ap.add_argument("--naive-n", type=int, default=1_500, help="person messages for the naive baseline")
    ap.add_argument("--members", type=int, default=1_000, help="members in the rename scenario")
    ap.add_argument("--latency-ms", type=int, default=20, help="latency the emulator adds to every API call")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch-messages", type=int, default=None,
                    help="sqs.batch_messages for the pipeline (default: the connector's default)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    global BATCH_MESSAGES
    BATCH_MESSAGES = args.batch_messages
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    os.environ.pop("CURL_CA_BUNDLE", None)
    logs.configure(json_logs=True, level=logging.ERROR)   # one log line per message would dominate

    print(f"bench: latency {args.latency_ms} ms per API call (emulator over HTTPS, fresh org per scenario); "
          f"connector limiter at {REQUESTS_PER_SECOND} req/s and max_in_flight {MAX_IN_FLIGHT}, "
          f"so the limiter is not what is measured; sqs.wait_seconds 0, "
          f"sqs.batch_messages {BATCH_MESSAGES or 'default (' + str(SqsConfig.model_fields['batch_messages'].default) + ')'}; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    want = {"people", "naive", "rename"} if args.scenario == "all" else {args.scenario}
    if "people" in want:
        results["people"] = scenario_people(args.n, args.latency_ms, args.seed)
        print_people(results["people"])
    if "naive" in want:
        results["naive"] = scenario_naive(args.naive_n, args.latency_ms, args.seed, args.n)
        print_naive(results["naive"])
    if "rename" in want:
        results["rename"] = scenario_rename(args.members, args.latency_ms, args.seed)
        print_rename(results["rename"])
    print_summary(results)
    total = time.perf_counter() - started
    print(f"\ntotal {total:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {"latency_ms": args.latency_ms, "batch_messages": BATCH_MESSAGES, "n": args.n, "naive_n": args.naive_n, "members": args.members,
                     "seed": args.seed, "requests_per_second": REQUESTS_PER_SECOND, "max_in_flight": MAX_IN_FLIGHT,
                     "cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results, "total_seconds": round(total, 1),
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
