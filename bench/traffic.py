"""Jomablue traffic for the benchmark: event, person and session payloads built from the samples.

Names in Korean, Thai and accented Latin scripts; every generator is deterministic (seeded).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from connector_devkit.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = json.loads((ROOT / "tests" / "fixtures" / "jomablue-samples.json").read_text(encoding="utf-8"))

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



# -- lean generators for the workload shapes, the live producer and the long run -----------------
def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def registration(ev: dict[str, Any], pid: int, generated_at: datetime, *, checked_in: bool = False,
                 title: str | None = None, updated_at: datetime | None = None) -> dict[str, Any]:
    """A new person at `ev`, everything derived from `pid` (so a later message can repeat it)."""
    rnd = random.Random(pid)
    firsts, lasts = rnd.choice([KOREAN, THAI, LATIN])
    first, last = rnd.choice(firsts), rnd.choice(lasts)
    p = person_payload(ev, pid, first, last, f"bench.{pid}@example.com", "", checked_in,
                       [rnd.choice(["7", "7", "7", "9", "11", "12"])], generated_at,
                       title if title is not None else rnd.choice(TITLES), rnd.choice(COMPANIES))
    if updated_at is not None:
        # A re-publish whose only difference is Jomablue's own timestamp: nothing the mapping writes.
        p["data"]["updated_at"] = iso(updated_at)
    return p


def session_checkin(ev: dict[str, Any], person: dict[str, Any], session: int, generated_at: datetime) -> dict[str, Any]:
    """`person` attended session `session` of `ev`: the person's fields travel in the context."""
    s = copy.deepcopy(SAMPLES["session_participation"])
    i = person["identifiers"]
    pid = i["id"].rsplit("/", 1)[-1]
    s["generated_at"] = iso(generated_at)
    s["context"] = {**copy.deepcopy(person["context"]),
                    "person_first_name": i["first_name"], "person_last_name": i["last_name"],
                    "person_email": i["email"], "person_phone": i["phone"], "person_company": i["company"],
                    "person_id": i["id"], "person_organisation_uid": i["organisation_uid"]}
    # No session_organisation_uid: the connector creates one child Campaign per session.
    s["identifiers"] = {"id": f"acme/session_participation/{session}-{pid}",
                        "session_id": f"acme/session/{9000 + session}", "session_organisation_uid": ""}
    s["data"].update({"session_name": f"Session {session} 세션", "session_code": f"S{session:02d}",
                      "attended": True, "check_in": iso(generated_at - timedelta(seconds=5))})
    return s
