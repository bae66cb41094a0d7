"""People and memberships over several messages and runs: conversions, re-matches, races, statuses,
exactly-once and API-call cost. The real engine against the emulator; no mocks."""

from __future__ import annotations

import pytest

from .helpers import at, members, person

JID = "acme/event_person/9001"
EMAIL = "jane.doe@example.com"


def one_lead(emu):
    leads = emu.org.records("Lead")
    assert len(leads) == 1, leads
    return leads[0]


# -- conversions and re-matches: the membership follows the person -----------------------------

def test_lead_converted_after_we_linked_it(emu, connector):
    c = connector()
    [o1] = c.run(person(JID, at=at(1)))
    assert o1.status == "synced"
    lead_id = one_lead(emu)["Id"]
    contact_id = emu.org.convert_lead(lead_id)        # a sales rep converts it (member moves too)
    # the person message changed (new title, checked in): the writes go to the Contact
    [o3] = c.run(person(JID, at=at(3), job_title="CTO", checked_in=True))
    assert o3.status == "synced", o3.reason
    assert emu.org.get(contact_id)["Title"] == "CTO"
    assert o3.detail["match"]["sobject"] == "Contact" and o3.detail["match"]["id"] == contact_id
    row = c.person_row(JID)
    assert (row["sobject"], row["sf_id"]) == ("Contact", contact_id)
    [cm] = members(emu)
    assert cm["ContactId"] == contact_id and cm["LeadId"] is None
    assert cm["Status"] == "Attended" and cm["Jomablue_Id__c"] == JID
    assert len(emu.org.records("Lead")) == 1 and emu.org.get(lead_id)["IsConverted"]


def test_lead_converted_since_it_was_linked(emu, connector):
    """A linked person is written without a lookup (issue #18): the Lead converted since answers
    CANNOT_UPDATE_CONVERTED_LEAD, and the write follows it to its Contact in the same batch."""
    c = connector()
    c.run(person(JID, at=at(1)))
    lead_id = one_lead(emu)["Id"]
    contact_id = emu.org.convert_lead(lead_id)            # Salesforce changes under us
    emu.reset_counters()
    [out] = c.run(person(JID, at=at(2), job_title="CTO"))
    assert out.status == "synced", out.reason
    assert out.detail["match"] == {"rung": "converted", "sobject": "Contact", "id": contact_id, "lead": lead_id}
    assert emu.org.get(contact_id)["Title"] == "CTO"
    assert c.person_row(JID)["sf_id"] == contact_id
    [cm] = members(emu)
    assert cm["ContactId"] == contact_id and cm["Jomablue_Id__c"] == JID
    # and later messages go straight to the Contact
    [o2] = c.run(person(JID, at=at(3), job_title="CEO"))
    assert o2.status == "synced" and emu.org.get(contact_id)["Title"] == "CEO"
    assert len(members(emu)) == 1


def test_organisation_uid_change_rematches_and_membership_follows(emu, connector):
    c = connector()
    c.run(person(JID, at=at(1)))                       # no uid: a new Lead
    lead_id = one_lead(emu)["Id"]
    assert members(emu)[0]["LeadId"] == lead_id
    contact_id = emu.org.insert("Contact", {"LastName": "Doe", "Email": "jd@corp.example"})
    [out] = c.run(person(JID, at=at(2), uid=contact_id[:15]))   # Jomablue now knows her Contact
    assert out.status == "synced", out.reason
    assert out.detail["match"] == {"rung": "organisation_uid", "sobject": "Contact", "id": contact_id}
    row = c.person_row(JID)
    assert (row["sobject"], row["sf_id"], row["rung"]) == ("Contact", contact_id, "organisation_uid")
    [cm] = members(emu)                                # the membership moved, one per registration
    assert cm["ContactId"] == contact_id and cm["Jomablue_Id__c"] == JID
    # corrected again, to another Contact
    other = emu.org.insert("Contact", {"LastName": "Doe", "Email": "jane@else.example"})
    [out] = c.run(person(JID, at=at(3), uid=other))
    assert out.status == "synced", out.reason
    [cm] = members(emu)
    assert cm["ContactId"] == other
    # the uid removed again: the stored link is not used (it was for another uid) → Jomablue_Id__c/email
    [out] = c.run(person(JID, at=at(4), uid=""))
    assert out.status == "synced", out.reason
    assert len(members(emu)) == 1


# -- one human, several registrations -------------------------------------------------------------

@pytest.mark.parametrize("one_batch", [True, False], ids=["one batch", "two runs"])
def test_person_in_two_events_is_one_lead_two_members(one_batch, emu, connector):
    c = connector()
    a = person("acme/event_person/1", at=at(1), event_id="acme/event/521")
    b = person("acme/event_person/2", at=at(2), event_id="acme/event/522", email="JANE.DOE@example.com")
    outs = c.run(a, b) if one_batch else c.run(a) + c.run(b)
    assert [o.status for o in outs] == ["synced", "synced"], [o.reason for o in outs]
    lead = one_lead(emu)
    cms = members(emu)
    assert sorted(cm["Jomablue_Id__c"] for cm in cms) == ["acme/event_person/1", "acme/event_person/2"]
    assert {cm["LeadId"] for cm in cms} == {lead["Id"]}
    assert len({cm["CampaignId"] for cm in cms}) == 2 and len(emu.org.records("Campaign")) == 2


def test_two_people_one_batch_same_new_email_make_one_lead(emu, connector):
    c = connector()
    outs = c.run(person("acme/event_person/1", at=at(1), event_id="acme/event/521"),
                 person("acme/event_person/2", at=at(1), event_id="acme/event/522"),
                 person("acme/event_person/3", at=at(1), event_id="acme/event/523", email="Jane.Doe@Example.com"))
    assert all(o.status == "synced" for o in outs), [o.reason for o in outs]
    lead = one_lead(emu)
    assert len(members(emu)) == 3 and {cm["LeadId"] for cm in members(emu)} == {lead["Id"]}
    assert {c.person_row(f"acme/event_person/{n}")["sf_id"] for n in (1, 2, 3)} == {lead["Id"]}


def test_same_record_twice_in_one_batch_is_one_write(emu, connector):
    contact_id = emu.org.insert("Contact", {"LastName": "Doe", "Email": EMAIL})
    c = connector()
    c.run(person("acme/event_person/1", at=at(0), event_id="acme/event/521"),
          person("acme/event_person/2", at=at(0), event_id="acme/event/522"))   # campaigns exist now
    emu.reset_counters()
    outs = c.run(person("acme/event_person/1", at=at(1), event_id="acme/event/521", job_title="CTO"),
                 person("acme/event_person/2", at=at(2), event_id="acme/event/522", job_title="CEO"))
    assert all(o.status == "synced" for o in outs), [o.reason for o in outs]
    assert emu.org.get(contact_id)["Title"] == "CEO"          # the newer message wins
    assert emu.calls_by_kind["collections_update"] == 1, emu.calls_by_kind  # one Contact write


# -- names and required fields ------------------------------------------------------------------

@pytest.mark.parametrize("first, last, company", [
    ("민준", "김", "삼성전자"),
    ("สมชาย", "ใจดี", "บริษัท ไทย จำกัด"),
    ("Zoë 🎉", "O'Brien-Łukasz 👩‍💻", "Café ☕ & Co"),
    ("Ａｌｉｃｅ", "日本語の名前", "株式会社テスト"),
])
def test_names_round_trip(first, last, company, emu, connector):
    c = connector()
    [out] = c.run(person(JID, first_name=first, last_name=last, company=company))
    assert out.status == "synced", out.reason
    lead = one_lead(emu)
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == (first, last, company)
    # and unchanged again: no write, no diff
    emu.reset_counters()
    c.run(person(JID, at=at(5), first_name=first, last_name=last, company=company))
    assert emu.api_calls == 0


@pytest.mark.parametrize("value", ["", "   ", None], ids=["empty", "blank", "null"])
def test_required_lead_fields_get_placeholder(value, emu, connector):
    c = connector()
    [out] = c.run(person(JID, last_name=value, company=value))
    assert out.status == "synced", out.reason
    lead = one_lead(emu)
    assert lead["LastName"] == "[not provided]" and lead["Company"] == "[not provided]"

