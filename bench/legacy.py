"""The original scenarios: people backlog (with a repeat drain), the naive baseline, category rename.

    run_bench.py --scenario people|naive|rename|all
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from harness import drain, per_k, pipeline_config, start_emulator
from traffic import (
    BASE_TIME,
    CHECKED_IN_SHARE,
    KOREAN,
    LATIN,
    THAI,
    event_payload,
    make_people_traffic,
    person_payload,
    seed_contacts,
)

from connector.wiring import wire
from connector_devkit.emulator import Emulator

BATCH_MESSAGES: int | None = None      # --batch-messages; None keeps the connector's default


# -- scenario 1: people through the pipeline --------------------------------------------------
def scenario_people(n: int, latency_ms: int, seed: int) -> dict[str, Any]:
    emu = start_emulator(latency_ms)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as d:
        try:
            traffic = seed_contacts(emu, make_people_traffic(n, seed))
            wired = wire(pipeline_config(emu, d, batch_messages=BATCH_MESSAGES))
            events = [json.dumps(e, ensure_ascii=False) for e in traffic.events]
            first = drain(wired, events + traffic.bodies)
            repeats = traffic.repeats()
            second = drain(wired, repeats)
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
            wired = wire(pipeline_config(emu, d, batch_messages=BATCH_MESSAGES))
            cats = [("7", "Delegate"), ("9", "VIP")]
            ev = event_payload(77, cats, BASE_TIME - timedelta(days=30))
            people = []
            for k in range(members):
                firsts, lasts = rnd.choice([KOREAN, THAI, LATIN])
                people.append(json.dumps(person_payload(
                    ev, 800_000 + k, rnd.choice(firsts), rnd.choice(lasts), f"vip.{k}@example.com", "",
                    rnd.random() < CHECKED_IN_SHARE, ["9"] if k % 4 else ["7", "9"],
                    BASE_TIME + timedelta(seconds=k), "Guest", "Acme Corp"), ensure_ascii=False))
            setup = drain(wired, [json.dumps(ev, ensure_ascii=False)] + people)
            renamed = event_payload(77, [("7", "Delegate"), ("9", "VIP Platinum")], BASE_TIME + timedelta(days=1))
            run = drain(wired, [json.dumps(renamed, ensure_ascii=False)])
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




def run_legacy(args: Any) -> dict[str, Any]:
    """`--scenario people|naive|rename|all`: the original report, as before."""
    global BATCH_MESSAGES
    BATCH_MESSAGES = args.batch_messages
    results: dict[str, Any] = {}
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
    return results
