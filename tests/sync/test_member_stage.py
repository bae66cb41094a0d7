"""The member stage's decisions, on fakes: statuses never backwards, a person merged away, a
Campaign deleted, an invalid reference that is the field's problem."""

from __future__ import annotations

from connector.salesforce.ids import to18
from connector.sync.changes import Facts, PersonRecord
from connector.sync.members import MemberStage

from .fakes import EVENT_ID, Ports, bad_reference, mappings, person, ports, work


def _campaign(p: Ports) -> str:
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    for n, s in enumerate(mappings().statuses, start=10):
        p.org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": s.label, "SortOrder": n})
    return cid


def _lead(p: Ports, email: str = "jane.doe@example.com") -> str:
    return to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": email}))


def _facts(cid: str, **people: str) -> Facts:
    return Facts(campaigns={EVENT_ID: cid},
                 people={jid: PersonRecord("Lead", sf_id, "link") for jid, sf_id in people.items()})


def _members(p: Ports, cid: str) -> list[dict]:
    return [m for m in p.org.records("CampaignMember") if m["CampaignId"] == cid]


def test_a_registration_becomes_a_member_with_its_status():
    p = ports()
    cid, lead = _campaign(p), _lead(p)
    w = work(person("p1"))
    result = p.run(MemberStage, [w], _facts(cid, p1=lead))
    [m] = _members(p, cid)
    assert (m["LeadId"], m["Status"], m["Jomablue_Id__c"]) == (lead, "Registered", "p1")
    assert result.changes.members["p1"]["cm_id"] == to18(m["Id"])
    expected = {"key": "p1", "status": "Registered", "id": to18(m["Id"]), "was": None}
    assert result.verdicts.detail(w)["member"] == expected


def test_a_later_message_never_moves_a_status_backwards():
    p = ports()
    cid, lead = _campaign(p), _lead(p)
    p.run(MemberStage, [work(person("p1", checked_in=True))], _facts(cid, p1=lead))
    [m] = _members(p, cid)
    p.state.members_["p1"] = {"event_id": EVENT_ID, "campaign_id": cid, "person_key": "p1", "person_sf_id": lead,
                              "status": "Attended", "cm_id": to18(m["Id"]), "category_ids": []}
    p.run(MemberStage, [work(person("p1", at="2025-09-11T00:00:00.000Z"))], _facts(cid, p1=lead))
    assert _members(p, cid)[0]["Status"] == "Attended"


def test_a_member_of_a_person_merged_away_is_written_to_the_survivor_once():
    p = ports()
    cid = _campaign(p)
    survivor, loser = _lead(p, "jane@other.example"), _lead(p)
    p.org.merge(survivor, loser)
    w = work(person("p1"))
    result = p.run(MemberStage, [w], _facts(cid, p1=loser))       # the person's link still names the loser
    [m] = _members(p, cid)
    assert m["LeadId"] == survivor and result.verdicts.ok(w)
    assert (loser, "Lead", survivor) in result.changes.relinks
    assert result.changes.members["p1"]["person_sf_id"] == survivor
    assert result.verdicts.detail(w)["merged"] == {"from": loser, "to": survivor, "sobject": "Lead"}
    assert not result.changes.forgotten_people and not result.changes.forgotten_campaigns


def test_a_merge_that_moved_a_membership_is_adopted_and_its_status_kept():
    p = ports()
    cid = _campaign(p)
    survivor, loser = _lead(p, "jane@other.example"), _lead(p)
    # The survivor already attended (its own membership); the merge deletes the loser's.
    p.org.insert("CampaignMember", {"CampaignId": cid, "LeadId": survivor, "Status": "Attended"})
    p.org.insert("CampaignMember", {"CampaignId": cid, "LeadId": loser, "Status": "Registered", "Jomablue_Id__c": "p1"})
    p.org.merge(survivor, loser)
    w = work(person("p1"))                                      # says Registered
    result = p.run(MemberStage, [w], _facts(cid, p1=loser))
    [m] = _members(p, cid)                                      # no second membership
    assert (m["LeadId"], m["Status"]) == (survivor, "Attended")
    assert result.verdicts.ok(w) and result.changes.members["p1"]["status"] == "Attended"
    assert result.verdicts.detail(w)["adopted"] == to18(m["Id"])


def test_a_deleted_campaign_is_forgotten_and_the_message_retried_but_the_live_person_kept():
    p = ports()
    cid, lead = _campaign(p), _lead(p)
    p.org.delete(cid)
    w = work(person("p1"))
    result = p.run(MemberStage, [w], _facts(cid, p1=lead))
    assert result.verdicts.waits(w)
    assert result.changes.forgotten_campaigns == {cid} and not result.changes.forgotten_people
    assert result.explained == frozenset({"CampaignMember"})


def test_an_invalid_reference_to_live_records_is_quarantined_with_the_orgs_message():
    p = ports()
    cid, lead = _campaign(p), _lead(p)
    p.writer.refuse(*bad_reference(lambda w: w.sobject == "CampaignMember", "LeadId"))
    w = work(person("p1"))
    result = p.run(MemberStage, [w], _facts(cid, p1=lead))
    [(reason, field_)] = result.verdicts.failures[w.msg.resource_key]
    assert field_ == "LeadId" and "INVALID_CROSS_REFERENCE_KEY" in reason
    assert not result.changes.forgotten_campaigns and not result.changes.forgotten_people
    assert result.explained == frozenset()          # an org refusing every member alike stops the run


def test_a_campaign_whose_statuses_are_missing_quarantines_its_members():
    p = ports()
    cid, lead = _campaign(p), _lead(p)
    w = work(person("p1"))
    facts = _facts(cid, p1=lead).learn(status_errors={cid: "member status 'Registered' on Campaign: refused"})
    result = p.run(MemberStage, [w], facts)
    assert result.verdicts.failures[w.msg.resource_key] == [("member status 'Registered' on Campaign: refused", None)]
    assert not p.writer.sent


def test_a_merge_that_deleted_the_membership_we_update_adopts_the_survivors_in_the_same_batch():
    p = ports()
    cid = _campaign(p)
    survivor, loser = _lead(p, "jane@other.example"), _lead(p)
    own = to18(p.org.insert("CampaignMember", {"CampaignId": cid, "LeadId": survivor, "Status": "Attended"}))
    ours = to18(p.org.insert("CampaignMember", {"CampaignId": cid, "LeadId": loser, "Status": "Registered",
                                                "Jomablue_Id__c": "p1"}))
    p.state.members_["p1"] = {"event_id": EVENT_ID, "campaign_id": cid, "person_key": "p1", "person_sf_id": loser,
                              "status": "Registered", "cm_id": ours, "category_ids": [], "record_hash": "old"}
    p.org.merge(survivor, loser)                                # the survivor's membership wins; ours is deleted
    w = work(person("p1", job_title="CTO"))
    result = p.run(MemberStage, [w], _facts(cid, p1=loser))     # an update by our membership's Id
    assert result.verdicts.ok(w), result.verdicts.retries
    [m] = _members(p, cid)
    assert (to18(m["Id"]), m["Status"], m["Jomablue_Id__c"]) == (own, "Attended", "p1")
    assert result.changes.members["p1"]["cm_id"] == own and not result.changes.forgotten_members
    assert (loser, "Lead", survivor) in result.changes.relinks
