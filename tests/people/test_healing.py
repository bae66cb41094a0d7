"""Records deleted in Salesforce behind the connector's back are created again, not quarantined forever."""

from __future__ import annotations

from .helpers import EVENT_ID, at, person


def test_a_deleted_campaign_is_recreated_and_its_members_with_it(emu, connector):
    c = connector()
    [out] = c.run(person("acme/event_person/1", at=at(0), checked_in=True))
    assert out.status == "synced"
    [campaign] = emu.org.records("Campaign")
    emu.org.delete(campaign["Id"])                     # an admin deletes it; its members go with it
    assert emu.org.records("CampaignMember") == []
    [out] = c.run(person("acme/event_person/2", at=at(1), email="other@example.com"))
    assert out.status == "retry" and "no longer exists" in out.reason
    [again] = c.run(person("acme/event_person/2", at=at(1), email="other@example.com"))
    assert again.status == "synced", again.reason
    [new_campaign] = emu.org.records("Campaign")
    assert new_campaign["Id"] != campaign["Id"] and new_campaign["Jomablue_Id__c"] == EVENT_ID
    assert [m["Jomablue_Id__c"] for m in emu.org.records("CampaignMember")] == ["acme/event_person/2"]
    # The first person's next message brings their membership back, status intact.
    [back] = c.run(person("acme/event_person/1", at=at(2), job_title="CTO"))
    assert back.status == "synced", back.reason
    member = {m["Jomablue_Id__c"]: m for m in emu.org.records("CampaignMember")}["acme/event_person/1"]
    assert member["Status"] == "Attended" and member["CampaignId"] == new_campaign["Id"]


def test_a_member_deleted_by_hand_is_created_again(emu, connector):
    c = connector()
    c.run(person("acme/event_person/1", at=at(0)))
    [member] = emu.org.records("CampaignMember")
    emu.org.delete(member["Id"])
    [out] = c.run(person("acme/event_person/1", at=at(1), checked_in=True))
    assert out.status == "retry" and "was deleted in Salesforce" in out.reason
    [again] = c.run(person("acme/event_person/1", at=at(1), checked_in=True))
    assert again.status == "synced", again.reason
    [member] = emu.org.records("CampaignMember")
    assert member["Status"] == "Attended"
