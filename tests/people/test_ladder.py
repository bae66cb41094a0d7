"""The identity ladder (issue #3), one row per rule, through the real engine against the emulator.

Each row seeds the org, sends one person message, and says which record the person must land on,
by which rung. Every decision must be recorded: the outcome's `match` detail (the message log
line) and the state store's `people` row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from .helpers import EVENT_ID, mapping_with, members, person

JID = "acme/event_person/9001"
EMAIL = "jane.doe@example.com"


def contact(org, email=EMAIL, **kw) -> str:
    return org.insert("Contact", {"LastName": "Doe", "FirstName": "Jane", "Email": email, **kw})


def lead(org, email=EMAIL, **kw) -> str:
    return org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": email, **kw})


def converted(org, email=EMAIL) -> tuple[str, str]:
    lid = lead(org, email)
    return lid, org.convert_lead(lid)


@dataclass
class Row:
    name: str
    seed: Callable[[Any], dict[str, str]]          # org → named ids
    uid: Callable[[dict[str, str]], str] = lambda ids: ""
    email: str | None = EMAIL
    expect: str = "new"                            # a name from seed, or "new" (a created Lead)
    sobject: str = "Lead"
    rung: str = "create"
    matching: dict[str, Any] = field(default_factory=dict)


ROWS = [
    # 1. organisation_uid is a Lead/Contact id
    Row("uid: Contact id, 18 chars", lambda o: {"c": contact(o, "other@example.com"), "e": contact(o)},
        lambda i: i["c"], expect="c", sobject="Contact", rung="organisation_uid"),
    Row("uid: Contact id, 15 chars", lambda o: {"c": contact(o, "other@example.com"), "e": contact(o)},
        lambda i: i["c"][:15], expect="c", sobject="Contact", rung="organisation_uid"),
    Row("uid: Lead id, 18 chars", lambda o: {"l": lead(o, "other@example.com"), "e": contact(o)},
        lambda i: i["l"], expect="l", sobject="Lead", rung="organisation_uid"),
    Row("uid: Lead id, 15 chars", lambda o: {"l": lead(o, "other@example.com"), "e": contact(o)},
        lambda i: i["l"][:15], expect="l", sobject="Lead", rung="organisation_uid"),
    Row("uid: converted Lead → its Contact",
        lambda o: dict(zip(("l", "c"), converted(o, "other@example.com"), strict=True)) | {"e": contact(o)},
        # no lookup for a Lead's id (issue #18): the write finds the conversion and follows it
        lambda i: i["l"][:15], expect="c", sobject="Contact", rung="converted"),
    Row("uid: deleted Contact → email rung",
        lambda o: {"d": (d := contact(o, "gone@example.com")), "e": contact(o), "_": o.delete(d)},
        lambda i: i["d"], expect="e", sobject="Contact", rung="email"),
    Row("uid: deleted Lead, no email match → create",
        lambda o: {"d": (d := lead(o, "gone@example.com")), "_": o.delete(d)},
        lambda i: i["d"]),
    Row("uid: well-formed Contact id that does not exist → email rung",
        lambda o: {"e": contact(o)}, lambda i: "0035g00000XyZ12AAB", expect="e", sobject="Contact", rung="email"),
    Row("uid: Account id is not this rung → email rung",
        lambda o: {"a": o.insert("Account", {"Name": "Acme"}), "e": contact(o)},
        lambda i: i["a"], expect="e", sobject="Contact", rung="email"),
    Row("uid: Account id (15) and no email match → create",
        lambda o: {"a": o.insert("Account", {"Name": "Acme"})}, lambda i: i["a"][:15]),
    Row("uid: a 15-char id in another casing is another record → email rung",
        lambda o: {"c": contact(o, "other@example.com"), "e": contact(o)},
        lambda i: i["c"][:3] + i["c"][3:15].swapcase(), expect="e", sobject="Contact", rung="email"),
    # 2. organisation_uid is another system's id
    Row("uid field: configured → that field",
        lambda o: {"c": contact(o, "other@example.com", External_Person_Id__c="CRM-42"), "e": contact(o)},
        lambda i: "CRM-42", expect="c", sobject="Contact", rung="organisation_uid_field",
        matching={"organisation_uid_field": "External_Person_Id__c"}),
    Row("uid field: configured, on a Lead",
        lambda o: {"l": lead(o, "other@example.com", External_Person_Id__c="CRM-42"), "e": contact(o)},
        lambda i: "CRM-42", expect="l", sobject="Lead", rung="organisation_uid_field",
        matching={"organisation_uid_field": "External_Person_Id__c"}),
    Row("uid field: configured, no record carries it → email rung",
        lambda o: {"e": contact(o)}, lambda i: "CRM-42", expect="e", sobject="Contact", rung="email",
        matching={"organisation_uid_field": "External_Person_Id__c"}),
    Row("uid field: not configured → falls through to email",
        lambda o: {"c": contact(o, "other@example.com", External_Person_Id__c="CRM-42"), "e": contact(o)},
        lambda i: "CRM-42", expect="e", sobject="Contact", rung="email"),
    # 3. a record carrying the registration id
    Row("Jomablue_Id__c on a Contact beats email",
        lambda o: {"c": contact(o, "other@example.com", Jomablue_Id__c=JID), "e": contact(o)},
        expect="c", sobject="Contact", rung="jomablue_id"),
    # 4. email
    Row("email: one Contact", lambda o: {"e": contact(o)}, expect="e", sobject="Contact", rung="email"),
    Row("email: different case matches", lambda o: {"e": contact(o, "Jane.DOE@Example.com")},
        email="jane.doe@EXAMPLE.com", expect="e", sobject="Contact", rung="email"),
    Row("email: surrounding spaces", lambda o: {"e": contact(o)},
        email="  jane.doe@example.com ", expect="e", sobject="Contact", rung="email"),
    Row("email: Contact preferred over Lead", lambda o: {"l": lead(o), "e": contact(o)},
        expect="e", sobject="Contact", rung="email"),
    Row("email: one unconverted Lead", lambda o: {"l": lead(o)}, expect="l", sobject="Lead", rung="email"),
    Row("email: a converted Lead's Contact, not the Lead",
        lambda o: dict(zip(("l", "c"), converted(o), strict=True)), expect="c", sobject="Contact", rung="email"),
    Row("email: off → create", lambda o: {"e": contact(o)}, matching={"email": False}),
    # 5. create
    Row("nothing matches → create a Lead", lambda o: {"x": contact(o, "someone.else@example.com")}),
    Row("no email, no uid → create a Lead", lambda o: {"e": contact(o)}, email=None),
    Row("create_as Contact", lambda o: {}, sobject="Contact", matching={"create_as": "Contact"}),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_ladder(row: Row, emu, connector, tmp_path):
    ids = row.seed(emu.org)
    mapping = mapping_with(tmp_path, **row.matching) if row.matching else None
    c = connector(mapping=mapping)
    before = {o: {r["Id"] for r in emu.org.records(o)} for o in ("Lead", "Contact")}
    [out] = c.run(person(JID, email=row.email, uid=row.uid(ids)))
    assert out.status == "synced", out.reason
    new = {o: [r for r in emu.org.records(o) if r["Id"] not in before[o]] for o in ("Lead", "Contact")}
    if row.expect == "new":
        assert [r["Jomablue_Id__c"] for r in new[row.sobject]] == [JID]
        target = new[row.sobject][0]["Id"]
        assert not new["Lead" if row.sobject == "Contact" else "Contact"]
    else:
        target = ids[row.expect]
        assert new == {"Lead": [], "Contact": []}, "matched, so nothing may be created"
        assert emu.org.get(target)["Title"] == "Marketing Manager"   # the write went to that record
    # the decision is recorded: message log detail and the state store
    assert out.detail["match"]["rung"] == row.rung
    assert out.detail["match"]["sobject"] == row.sobject
    assert out.detail["match"]["id"] == target
    stored = c.person_row(JID)
    assert (stored["sobject"], stored["sf_id"], stored["rung"]) == (row.sobject, target, row.rung)
    # and the person is in the event's campaign, on that record
    [cm] = members(emu)
    who = "ContactId" if row.sobject == "Contact" else "LeadId"
    assert cm[who] == target and cm["Jomablue_Id__c"] == JID
    [campaign] = emu.org.records("Campaign")
    assert cm["CampaignId"] == campaign["Id"] and campaign["Jomablue_Id__c"] == EVENT_ID


AMBIGUOUS = [
    ("two Contacts", lambda o: [contact(o), contact(o, "JANE.doe@example.com")], {}),
    ("two Leads, no Contact", lambda o: [lead(o), lead(o)], {}),
    ("uid field on two Contacts",
     lambda o: [contact(o, "a@example.com", External_Person_Id__c="CRM-42"),
                contact(o, "b@example.com", External_Person_Id__c="CRM-42")],
     {"organisation_uid_field": "External_Person_Id__c"}),
]


@pytest.mark.parametrize("name, seed, matching", AMBIGUOUS, ids=[a[0] for a in AMBIGUOUS])
def test_ambiguous_is_quarantined_with_every_candidate(name, seed, matching, emu, connector, tmp_path):
    candidates = seed(emu.org)
    c = connector(mapping=mapping_with(tmp_path, **matching) if matching else None)
    before = {o: len(emu.org.records(o)) for o in ("Lead", "Contact")}
    [out] = c.run(person(JID, uid="CRM-42" if matching else ""))
    assert out.status == "quarantined"
    for cid in candidates:
        assert cid in out.reason
    assert sorted(out.detail["candidates"]) == sorted(candidates)
    # never a silent pick: nothing written, no membership
    assert {o: len(emu.org.records(o)) for o in ("Lead", "Contact")} == before
    assert members(emu) == []
    assert all(emu.org.get(cid)["Title"] is None for cid in candidates)
    assert c.person_row(JID) is None
