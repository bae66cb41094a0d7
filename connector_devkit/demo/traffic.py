"""Realistic Jomablue traffic for the demo: several events, mixed scripts, duplicates, a
check-in that arrives after the registration, a cancellation, a session, a lead capture, a
category rename, and a few messages that must be quarantined or skipped."""

from __future__ import annotations

import copy
import random
from typing import Any

EVENTS = [
    ("acme/event/1", "서울 고객 서밋 2026", "Asia/Seoul", "2026-03-10T15:30:00.000Z", "2026-03-11T09:00:00.000Z",
     {"region": "apac", "cost_centre": "1200", "owner": "kim.minjun", "source": "jomablue"}),
    ("acme/event/2", "งานแสดงสินค้ากรุงเทพ Bangkok Expo", "Asia/Bangkok", "2026-04-02T02:00:00.000Z",
     "2026-04-03T10:00:00.000Z", {"region": "apac", "cost_centre": "1500", "owner": "somchai", "source": "jomablue"}),
    ("acme/event/3", "Sonic Conference 2026 🎧", "Australia/Sydney", "2026-09-10T22:00:00.000Z",
     "2026-09-11T08:00:00.000Z", {"region": "uk", "cost_centre": "1201", "owner": "jane.doe", "source": "jomablue",
                                  "fiscal-year": "FY27"}),
]
CATEGORIES = [("delegate", "Delegate"), ("vip", "VIP"), ("speaker", "Speaker")]
FIRST = ["민준", "서연", "สมชาย", "สุดา", "Jane", "Liam", "Aroha", "Priya", "Mateo", "Yuki", "Zoë", "Oliver"]
LAST = ["김", "이", "ใจดี", "ศรีสุข", "Doe", "O'Brien", "Ngata", "Sharma", "García", "Tanaka", "Müller", "Smith"]
COMPANIES = ["삼성", "ปตท.", "Acme Corp", "Globex", "", "Initech", "Umbrella 🌂"]


def _ts(minute: int) -> str:
    return f"2026-02-01T{(minute // 60) % 24:02d}:{minute % 60:02d}:00.000Z"


def event_message(i: int, minute: int, rename_vip: bool = False) -> dict[str, Any]:
    eid, name, tz, start, end, meta = EVENTS[i]
    inst = eid.split("/")[0]
    cats = [{"id": f"{inst}/category/{i * 10 + n}", "name": ("VIP Guest" if rename_vip and c == "vip" else label)}
            for n, (c, label) in enumerate(CATEGORIES)]
    return {
        "resource_type": "event", "generated_at": _ts(minute),
        "identifiers": {"id": eid},
        "data": {"name": name, "start_time": start, "end_time": end, "short_description": f"{name} — demo",
                 "description": "", "person_count_goal": 500, "venue_name": "Venue", "venue_address": "",
                 "timezone": tz, "metadata": meta, "categories": cats,
                 "created_at": _ts(0), "updated_at": _ts(minute)},
    }


def person_message(n: int, event: int, minute: int, *, checked_in: bool = False, cancelled: bool = False,
                   organisation_uid: str = "", email: str | None = None) -> dict[str, Any]:
    eid, name, _tz, _s, _e, meta = EVENTS[event]
    rnd = random.Random(n)
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    cat = CATEGORIES[(n // 3) % len(CATEGORIES)]
    return {
        "resource_type": "person", "generated_at": _ts(minute),
        "context": {"event_id": eid, "event_name": name, "event_metadata": meta},
        "identifiers": {"first_name": first, "last_name": last,
                        "email": email if email is not None else f"person{n}@example.com",
                        "phone": f"+6140000{n:04d}", "company": rnd.choice(COMPANIES),
                        "id": f"acme/event_person/{event * 1000 + n}", "organisation_uid": organisation_uid},
        "data": {"job_title": rnd.choice(["CTO", "마케팅 매니저", "ผู้จัดการ", ""]), "cancelled": cancelled,
                 "checked_in": checked_in, "first_check_in": _ts(minute) if checked_in else "",
                 "categories": [{"id": f"acme/category/{event * 10 + CATEGORIES.index(cat)}", "name": cat[1]}]},
    }


def build(contact_id: str, lead_email: str, people: int = 36) -> list[dict[str, Any] | str]:
    """The demo's message stream, in publish order."""
    out: list[dict[str, Any] | str] = []
    # People often arrive before their event: the connector creates a placeholder Campaign.
    for n in range(people):
        out.append(person_message(n, n % 3, 10 + n))
    for i in range(3):
        out.append(event_message(i, 5))
    # An email campaign re-publishes unchanged people (duplicates), and SNS redelivers one.
    for n in range(0, people, 4):
        out.append(person_message(n, n % 3, 10 + n))
    # A check-in, then a late, older registration for the same person (stale: skipped).
    out.append(person_message(1, 1, 300, checked_in=True))
    out.append(person_message(1, 1, 200))
    out.append(person_message(2, 2, 310, cancelled=True))
    # Someone Salesforce already knows: by Contact id, and by email.
    out.append(person_message(900, 0, 320, organisation_uid=contact_id, checked_in=True))
    out.append(person_message(901, 2, 321, email=lead_email.upper()))
    # A session attendance and a booth lead capture for person 0 at event 1.
    p = person_message(0, 0, 10)
    ctx = {**p["context"], "person_first_name": p["identifiers"]["first_name"],
           "person_last_name": p["identifiers"]["last_name"], "person_email": p["identifiers"]["email"],
           "person_phone": "", "person_company": p["identifiers"]["company"], "person_id": p["identifiers"]["id"],
           "person_organisation_uid": ""}
    out.append({"resource_type": "session_participation", "generated_at": _ts(400), "context": ctx,
                "identifiers": {"id": "acme/session_participation/1", "session_id": "acme/session/1"},
                "data": {"session_name": "기조연설 Keynote", "session_code": "KN01", "attended": True,
                         "session_start_time": "2026-03-10T23:30:00.000Z",
                         "session_end_time": "2026-03-11T00:30:00.000Z"}})
    out.append({"resource_type": "lead", "generated_at": _ts(401), "context": copy.deepcopy(ctx),
                "identifiers": {"id": "acme/lead/1", "vendor_id": "acme/vendor/7"},
                "data": {"vendor_name": "Globex", "captured_at": "2026-03-11T01:00:00.000Z",
                         "notes": "관심 있음 — follow up", "tags": ["Hot", "Demo"]}})
    # The organiser renames a category: only the event is re-published.
    out.append(event_message(2, 500, rename_vip=True))
    # Things a real topic also carries.
    out.append({"resource_type": "vendor", "generated_at": _ts(1), "identifiers": {"id": "acme/vendor/7"}})
    out.append("this is not JSON")
    out.append({"resource_type": "person", "generated_at": _ts(2), "context": {}, "identifiers": {}, "data": {}})
    return out
