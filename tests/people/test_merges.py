"""An admin merges the Lead the connector linked into another one (issue #16): the connector
follows MasterRecordId to the survivor, writes there, and never creates a duplicate Lead or a
second membership; the survivor's status never goes backwards."""

from __future__ import annotations

from .helpers import at, members, person

JID = "acme/event_person/51486"


def _merged(emu, connector):
    c = connector("state.db")
    [first] = c.run(person(JID, at=at(1)))
    assert first.status == "synced", first.reason
    [loser] = emu.org.records("Lead")
    survivor = emu.org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": "jane@elsewhere.example"})
    emu.org.merge(survivor, loser["Id"])
    return c, loser["Id"], survivor


def test_a_changed_person_is_written_to_the_survivor_not_created_again(emu, connector):
    c, loser, survivor = _merged(emu, connector)
    [out] = c.run(person(JID, at=at(2), job_title="CTO"))
    assert out.status == "synced", out.reason
    [lead] = emu.org.records("Lead")
    assert lead["Id"][:15] == survivor[:15] and lead["Title"] == "CTO"
    assert out.detail["match"]["rung"] == "merged" and out.detail["match"]["merged_from"][:15] == loser[:15]
    assert c.person_row(JID)["sf_id"][:15] == survivor[:15]
    [cm] = members(emu)                               # the merge moved the membership: still one
    assert cm["LeadId"][:15] == survivor[:15]


def test_a_check_in_after_the_merge_moves_the_survivors_membership_forward(emu, connector):
    c, _loser, survivor = _merged(emu, connector)
    [out] = c.run(person(JID, at=at(2), checked_in=True))
    assert out.status == "synced", out.reason
    [cm] = members(emu)
    assert (cm["LeadId"][:15], cm["Status"]) == (survivor[:15], "Attended")
    [again] = c.run(person(JID, at=at(3)))            # an older state of the registration: never backwards
    assert again.status in ("synced", "skipped")
    assert members(emu)[0]["Status"] == "Attended" and len(emu.org.records("Lead")) == 1


def test_a_survivor_that_was_already_a_member_keeps_its_membership_and_status(emu, connector):
    c = connector("state.db")
    [first] = c.run(person(JID, at=at(1)))
    assert first.status == "synced", first.reason
    [loser] = emu.org.records("Lead")
    [ours] = members(emu)
    survivor = emu.org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": "jane@elsewhere.example"})
    own = emu.org.insert("CampaignMember", {"CampaignId": ours["CampaignId"], "LeadId": survivor, "Status": "Attended"})
    emu.org.merge(survivor, loser["Id"])                      # the survivor's membership wins, ours is deleted
    [out] = c.run(person(JID, at=at(2), job_title="CTO"))
    assert out.status == "synced", out.reason
    [cm] = members(emu)
    assert (cm["Id"][:15], cm["Status"], cm["Jomablue_Id__c"]) == (own[:15], "Attended", JID)
    assert len(emu.org.records("Lead")) == 1
