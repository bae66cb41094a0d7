"""The people stage's decisions, on fakes: the ladder's outcome, a private record, a merged-away
link, an invalid reference, and the new Campaigns' statuses riding in the lookup call."""

from __future__ import annotations

import json

from jbtest import sample

from connector.reconcile.journal import journaled
from connector.salesforce.ids import to18
from connector.sync.changes import Facts
from connector.sync.people import PeopleStage

from .fakes import EVENT_ID, bad_reference, mappings, no_access, person, ports, work


def _lead(p, email: str = "jane.doe@example.com", **fields) -> str:
    return to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": email, **fields}))


def _contact(p, email: str = "jane.doe@example.com") -> str:
    return to18(p.org.insert("Contact", {"LastName": "Doe", "Email": email}))


def _link(p, jid: str, sobject: str, sf_id: str) -> None:
    p.state.people_[jid] = {"sobject": sobject, "sf_id": sf_id, "rung": "email", "organisation_uid": None,
                            "email": "jane.doe@example.com", "record_hash": None}


def test_a_person_nobody_knows_is_created_as_a_lead_and_linked():
    p = ports()
    w = work(person("p1"))
    result = p.run(PeopleStage, [w])
    rec = result.facts.people["p1"]
    assert rec.sobject == "Lead" and rec.rung == "create" and p.org.get(rec.sf_id)["Email"] == "jane.doe@example.com"
    assert result.changes.people["p1"]["sf_id"] == rec.sf_id
    assert result.verdicts.ok(w) and result.verdicts.detail(w)["match"]["rung"] == "create"


def test_two_contacts_with_the_persons_email_quarantine_the_message_never_a_guess():
    p = ports()
    ids = sorted([_contact(p), _contact(p)])
    w = work(person("p1"))
    result = p.run(PeopleStage, [w])
    [(reason, field_)] = result.verdicts.failures[w.msg.resource_key]
    assert field_ == "identifiers.email" and "2 Contacts match" in reason
    assert result.verdicts.detail(w)["candidates"] == ids
    assert "p1" not in result.facts.people and not p.writer.sent


def test_a_private_record_is_noted_not_quarantined_and_stays_the_persons_record():
    p = ports()
    lead = _lead(p, OwnerId=None)
    p.writer.refuse(*no_access(lead))
    w = work(person("p1", job_title="CTO"))
    result = p.run(PeopleStage, [w])
    # The run goes on: the person is that record (the membership is written there next) ...
    assert result.facts.people["p1"].sf_id == lead
    assert result.verdicts.ok(w)
    note = result.verdicts.detail(w)["not_updated"]
    assert note["id"] == lead and note["owner_field"] == "OwnerId" and note["owner"] == p.org.user_id
    assert "INSUFFICIENT_ACCESS_OR_READONLY" in note["reason"]
    # ... the field update is reported, and nothing says it was written (the next change tries again).
    assert result.changes.people["p1"]["record_hash"] is None
    assert any("not_updated" in n for n in result.notes)
    assert p.org.get(lead).get("Title") != "CTO"


def test_a_merged_away_link_is_followed_to_the_survivor_not_recreated():
    p = ports()
    survivor = _lead(p, email="jane@other.example")
    loser = _lead(p)
    _link(p, "p1", "Lead", loser)
    p.org.merge(survivor, loser)
    w = work(person("p1", job_title="CTO"))
    result = p.run(PeopleStage, [w])
    rec = result.facts.people["p1"]
    assert (rec.sf_id, rec.rung, rec.merged_from) == (survivor, "merged", loser)
    assert (loser, "Lead", survivor) in result.changes.relinks
    assert len(p.org.records("Lead")) == 1 and p.org.get(survivor)["Title"] == "CTO"   # no new Lead
    # The loser was read through queryAll, with IsDeleted and MasterRecordId.
    assert any(all_ and "MasterRecordId" in q for q, all_ in p.reader.queries)


def test_a_chain_of_merges_ending_in_a_converted_lead_ends_at_its_contact():
    p = ports()
    first, second = _lead(p, email="a@x.example"), _lead(p, email="b@x.example")
    loser = _lead(p)
    _link(p, "p1", "Lead", loser)
    p.org.merge(second, loser)
    p.org.merge(first, second)
    contact = to18(p.org.convert_lead(first))
    result = p.run(PeopleStage, [work(person("p1"))])
    rec = result.facts.people["p1"]
    assert (rec.sobject, rec.sf_id, rec.merged_from) == ("Contact", contact, loser)
    assert (loser, "Contact", contact) in result.changes.relinks
    assert [r for r in p.org.records("Lead") if not r["IsConverted"]] == []


def test_an_invalid_reference_on_a_live_record_is_the_fields_problem():
    p = ports()
    lead = _lead(p)
    _link(p, "p1", "Lead", lead)
    p.writer.refuse(*bad_reference(lambda w: w.record.get("Id") == lead, "RecordTypeId"))
    w = work(person("p1", job_title="CTO"))
    result = p.run(PeopleStage, [w])
    [(reason, field_)] = result.verdicts.failures[w.msg.resource_key]
    assert field_ == "RecordTypeId" and "INVALID_CROSS_REFERENCE_KEY" in reason
    assert not result.verdicts.waits(w) and not result.changes.forgotten_people


def test_an_invalid_reference_to_a_record_a_read_finds_gone_forgets_the_link_and_retries():
    p = ports()
    lead = _lead(p)
    _link(p, "p1", "Lead", lead)

    def deleted_meanwhile(w):        # deleted between the lookup and the write
        if w.record.get("Id") == lead and p.org.get(lead):
            p.org.delete(lead)
        return w.record.get("Id") == lead
    p.writer.refuse(*bad_reference(deleted_meanwhile, ""))
    w = work(person("p1", job_title="CTO"))
    result = p.run(PeopleStage, [w])
    assert result.verdicts.waits(w) and "deleted" in result.verdicts.retries[w.msg.resource_key]
    assert "p1" in result.changes.forgotten_people and "p1" not in result.facts.people


def test_the_statuses_of_a_campaign_members_go_to_ride_in_the_lookup_call():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    p.org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": "Invited", "SortOrder": 3})   # the org's flow
    result = p.run(PeopleStage, [work(person("p1"))], Facts(campaigns={EVENT_ID: cid}))
    assert p.reader.calls == 1
    assert result.facts.status_reads[cid] == {"Sent": 1, "Responded": 2, "Invited": 3}
    p.state.statuses_ |= {(cid, s.label) for s in mappings().statuses}       # the store knows them all: no read
    again = p.run(PeopleStage, [work(person("p2", email="p2@example.com"))], Facts(campaigns={EVENT_ID: cid}))
    assert not again.facts.status_reads


def _checkin(person_msg: dict, **context) -> dict:
    """A session check-in of the person `person_msg` registers, their fields in its context."""
    i = person_msg["identifiers"]
    msg = sample("session_participation")
    msg["context"].update({"event_id": person_msg["context"]["event_id"], "person_id": i["id"],
                           "person_organisation_uid": i["organisation_uid"], "person_email": i["email"],
                           "person_first_name": i["first_name"], "person_last_name": i["last_name"],
                           "person_phone": i["phone"], "person_company": i["company"], **context})
    return msg


def _registered(p, msg: dict) -> str:
    """Run the registration; the store keeps what the engine would (the link and the write journal)."""
    result = p.run(PeopleStage, [work(msg)])
    jid = msg["identifiers"]["id"]
    p.state.people_[jid] = dict(result.changes.people[jid])
    for w in p.writer.sent:
        p.state.written_.setdefault(to18(w.result_id), {}).update(
            journaled([(to18(w.result_id), w.sobject, dict(w.record))], mappings())[0][2])
    p.writer.sent.clear()
    return result.facts.people[jid].sf_id


def test_a_check_in_carrying_what_the_registration_wrote_costs_no_lookup_and_no_write():
    p = ports()
    reg = person("p1", uid=None)
    lead = _registered(p, reg)
    reads = p.reader.calls
    result = p.run(PeopleStage, [work(_checkin(reg))])
    # Issue #18 (c1): the session source was never written, but every field it sends is in the journal.
    assert p.writer.sent == [] and p.reader.calls == reads
    assert result.facts.people["p1"].sf_id == lead
    assert "session_participation" in json.loads(result.changes.people["p1"]["record_hash"])   # next time: by hash
    # A check-in with a company the registration did not send is written.
    result = p.run(PeopleStage, [work(_checkin(reg, person_company="Globex"))])
    [w] = p.writer.sent
    assert (w.op, w.record["Id"], w.record["Company"]) == ("update", lead, "Globex")
