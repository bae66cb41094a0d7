"""CampaignMember / CampaignMemberStatus / converted Lead / Campaign hierarchy rules."""

from __future__ import annotations

import pytest

from connector_devkit.emulator import RecordError


def codes(result):
    return [e["statusCode"] for e in result["errors"]]


def member(campaign, **person):
    return {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, **person}


@pytest.fixture
def campaign(emu):
    return emu.org.insert("Campaign", {"Name": "Summit", "Jomablue_Id__c": "acme/event/1"})


@pytest.fixture
def a_lead(emu):
    return emu.org.insert("Lead", {"LastName": "Kim", "FirstName": "Min-jun", "Company": "Acme",
                                   "Email": "kim@example.com", "Jomablue_Id__c": "acme/ep/1"})


def test_new_campaign_gets_sent_and_responded_statuses(emu, campaign, api):
    rows = api.query("SELECT Label, IsDefault, HasResponded, SortOrder FROM CampaignMemberStatus "
                     f"WHERE CampaignId = '{campaign}' ORDER BY SortOrder")["records"]
    assert [(r["Label"], r["IsDefault"], r["HasResponded"], r["SortOrder"]) for r in rows] == [
        ("Sent", True, False, 1), ("Responded", False, True, 2)]


def test_status_labels_are_unique_per_campaign_and_default_moves(emu, campaign, api):
    other = emu.org.insert("Campaign", {"Name": "Other"})
    res = api.create([
        {"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": campaign, "Label": "Registered",
         "IsDefault": True},
        {"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": campaign, "Label": "Sent"},
        {"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": other, "Label": "Registered"},
    ])
    assert res[0]["success"] and res[2]["success"]
    assert codes(res[1]) == ["DUPLICATE_VALUE"]
    defaults = emu.org.query(f"SELECT Label FROM CampaignMemberStatus WHERE CampaignId = '{campaign}' "
                             "AND IsDefault = true")
    assert defaults == [{"Label": "Registered"}]
    assert emu.org.get(res[0]["id"])["SortOrder"] == 3
    # a member created without Status gets the campaign's (new) default
    person = emu.org.insert("Contact", {"LastName": "P"})
    m = api.create([member(campaign, ContactId=person)])[0]
    assert emu.org.get(m["id"])["Status"] == "Registered"


def test_member_status_must_belong_to_the_campaign(emu, campaign, a_lead, api):
    res = api.create([member(campaign, LeadId=a_lead, Status="Attended")])
    assert codes(res[0]) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    assert "bad value for restricted picklist field: Attended" in res[0]["errors"][0]["message"]
    emu.org.insert("CampaignMemberStatus", {"CampaignId": campaign, "Label": "Attended",
                                            "HasResponded": True})
    res = api.create([member(campaign, LeadId=a_lead, Status="Attended")])
    assert res[0]["success"]
    stored = emu.org.get(res[0]["id"])
    assert stored["HasResponded"] is True and stored["Status"] == "Attended"
    upd = api.patch("composite/sobjects", json={"records": [
        {"attributes": {"type": "CampaignMember"}, "Id": res[0]["id"], "Status": "Sent"}]}).json()
    assert upd[0]["success"] and emu.org.get(res[0]["id"])["HasResponded"] is False


def test_member_needs_exactly_one_person_and_no_duplicates(emu, campaign, a_lead, api):
    contact = emu.org.insert("Contact", {"LastName": "C"})
    res = api.create([
        member(campaign),
        member(campaign, LeadId=a_lead),
        member(campaign, LeadId=a_lead),
        member(campaign, LeadId=a_lead, ContactId=contact),
    ])
    assert codes(res[0]) == ["REQUIRED_FIELD_MISSING"]
    assert res[1]["success"]
    assert codes(res[2]) == ["DUPLICATE_VALUE"]
    assert res[2]["errors"][0]["message"] == "Already a campaign member."
    assert res[3]["success"]
    both = emu.org.get(res[3]["id"])
    assert both["ContactId"] == contact and both["LeadId"] is None
    assert both["Status"] == "Sent" and both["HasResponded"] is False
    assert emu.org.count(f"SELECT COUNT() FROM CampaignMember WHERE CampaignId = '{campaign}'") == 2


def test_member_upsert_is_idempotent_but_person_cannot_change(emu, campaign, a_lead, api):
    row = {"CampaignId": campaign, "LeadId": a_lead, "Jomablue_Id__c": "acme/ep/1@acme/event/1"}
    first = api.upsert("CampaignMember", "Jomablue_Id__c", [row])[0]
    again = api.upsert("CampaignMember", "Jomablue_Id__c", [{**row, "LeadId": a_lead[:15]}])[0]
    assert first["created"] and again == {**first, "created": False}
    other = emu.org.insert("Lead", {"LastName": "O", "Company": "C"})
    moved = api.upsert("CampaignMember", "Jomablue_Id__c", [{**row, "LeadId": other}])[0]
    assert codes(moved) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert moved["errors"][0]["fields"] == ["LeadId"]


def test_converted_lead_rules_and_member_move(emu, campaign, a_lead, api):
    m = api.create([member(campaign, LeadId=a_lead)])[0]
    contact = emu.org.convert_lead(a_lead)
    lead = emu.org.get(a_lead)
    assert lead["IsConverted"] is True and lead["ConvertedContactId"] == contact
    assert lead["Status"] == "Closed - Converted" and lead["ConvertedAccountId"].startswith("001")
    assert len(lead["ConvertedDate"]) == 10
    c = emu.org.get(contact)
    assert (c["FirstName"], c["LastName"], c["Email"]) == ("Min-jun", "Kim", "kim@example.com")
    assert c["Jomablue_Id__c"] is None and c["AccountId"] == lead["ConvertedAccountId"]
    assert emu.org.get(lead["ConvertedAccountId"])["Name"] == "Acme"
    moved = emu.org.get(m["id"])
    assert moved["ContactId"] == contact and moved["LeadId"] is None

    up = api.upsert("Lead", "Jomablue_Id__c", [{"LastName": "Kim", "Company": "Acme",
                                                "Jomablue_Id__c": "acme/ep/1", "Title": "x"}])[0]
    assert codes(up) == ["CANNOT_UPDATE_CONVERTED_LEAD"]
    assert up["errors"][0]["message"] == "cannot reference converted lead"
    upd = api.patch(f"sobjects/Lead/{a_lead}", json={"Title": "y"})
    assert upd.status_code == 400 and upd.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    other = emu.org.insert("Campaign", {"Name": "Other"})
    cm = api.create([member(other, LeadId=a_lead)])[0]
    assert codes(cm) == ["CANNOT_UPDATE_CONVERTED_LEAD"]
    with pytest.raises(RecordError):
        emu.org.convert_lead(a_lead)
    # the re-routed write works
    assert api.create([member(other, ContactId=lead["ConvertedContactId"])])[0]["success"]


def test_deleted_records(emu, a_lead, campaign, api):
    emu.org.insert("CampaignMember", {"CampaignId": campaign, "LeadId": a_lead})
    emu.org.delete(a_lead)
    assert emu.org.get(a_lead) is None
    assert emu.org.records("CampaignMember") == []  # memberships go with the person
    assert api.query("SELECT Id FROM Lead")["totalSize"] == 0
    r = api.patch(f"sobjects/Lead/{a_lead}", json={"Title": "x"})
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    res = api.create([member(campaign, LeadId=a_lead)])[0]
    # A parent in the recycle bin answers ENTITY_IS_DELETED with empty fields, not
    # INVALID_CROSS_REFERENCE_KEY naming the lookup (deleted parents;
    # body shape: sf-fx-runtime-java delete-already-deleted.json in forcedotcom/sf-fx-runtime-java).
    assert res["errors"] == [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                              "fields": []}]
    # the external id is free again after deletion (Salesforce does not match deleted rows)
    again = api.upsert("Lead", "Jomablue_Id__c", [{"LastName": "K", "Company": "A",
                                                   "Jomablue_Id__c": "acme/ep/1"}])[0]
    assert again["created"] and again["id"] != a_lead


def test_unique_field_duplicate_message(emu, api):
    first = emu.org.insert("Contact", {"LastName": "A", "Jomablue_Id__c": "same"})
    res = api.create([{"attributes": {"type": "Contact"}, "LastName": "B", "Jomablue_Id__c": "same"}])
    assert codes(res[0]) == ["DUPLICATE_VALUE"]
    assert res[0]["errors"][0]["message"] == (
        f"duplicate value found: Jomablue_Id__c duplicates value on record with id: {first}")


def test_reference_must_point_at_the_right_object(emu, a_lead, api):
    res = api.create([{"attributes": {"type": "Campaign"}, "Name": "S", "ParentId": a_lead}])
    assert codes(res[0]) == ["INVALID_CROSS_REFERENCE_KEY"]


def test_campaign_hierarchy_max_five_levels(emu):
    parent = None
    for level in range(5):
        parent = emu.org.insert("Campaign", {"Name": f"L{level}", **({"ParentId": parent} if parent else {})})
    with pytest.raises(RecordError) as exc:
        emu.org.insert("Campaign", {"Name": "L6", "ParentId": parent})
    assert "5 levels" in str(exc.value)


def test_org_insert_validates_and_applies_defaults(emu):
    with pytest.raises(ValueError):
        emu.org.insert("Lead", {"LastName": "x"})
    lead_id = emu.org.insert("Lead", {"LastName": "x", "Company": "y"})
    stored = emu.org.get(lead_id)
    assert stored["Status"] == "Open - Not Contacted" and stored["IsConverted"] is False
    assert stored["OwnerId"].startswith("005")
