"""An admin merges duplicates (Org.merge): the loser is deleted with MasterRecordId, readable only
through queryAll, refuses writes as ENTITY_IS_DELETED, and its memberships move to the survivor."""

from __future__ import annotations

import pytest

from connector_devkit.emulator import RecordError


def person(emu, sobject: str, n: int, email: str) -> str:
    fields = {"LastName": f"Person {n}", "Email": email, "Jomablue_Id__c": f"jb/p/{n}"}
    if sobject == "Lead":
        fields["Company"] = "Acme"
    return emu.org.insert(sobject, fields)


def member(emu, campaign: str, who: str, person_id: str, status: str = "Sent") -> str:
    return emu.org.insert("CampaignMember", {"CampaignId": campaign, who: person_id, "Status": status})


@pytest.mark.parametrize("sobject", ["Lead", "Contact"])
def test_the_loser_is_deleted_with_master_record_id_and_its_members_move(api, emu, sobject):
    who = sobject + "Id"
    survivor, loser = person(emu, sobject, 1, "sam@example.com"), person(emu, sobject, 2, "lou@example.com")
    expo, gala = emu.org.insert("Campaign", {"Name": "Expo"}), emu.org.insert("Campaign", {"Name": "Gala"})
    member(emu, expo, who, survivor)
    member(emu, expo, who, loser, "Responded")           # the survivor is already in Expo: dropped
    moved = member(emu, gala, who, loser, "Responded")   # only the loser is in Gala: moves
    emu.org.merge(survivor, loser)

    assert api.query(f"SELECT Id FROM {sobject} WHERE Id = '{loser}'")["totalSize"] == 0
    gone = api.get("queryAll", params={"q": f"SELECT Id, IsDeleted, MasterRecordId FROM {sobject} "
                                            f"WHERE Id = '{loser}'"}).json()["records"]
    assert [(r["IsDeleted"], r["MasterRecordId"]) for r in gone] == [(True, survivor)]
    members = api.query(f"SELECT Id, CampaignId, Status FROM CampaignMember WHERE {who} = '{survivor}' "
                        "ORDER BY CampaignId")["records"]
    assert sorted((r["CampaignId"], r["Status"]) for r in members) == sorted([(expo, "Sent"), (gala, "Responded")])
    assert moved in [r["Id"] for r in members]
    kept = api.get(f"sobjects/{sobject}/{survivor}").json()
    assert kept["Email"] == "sam@example.com" and kept["Jomablue_Id__c"] == "jb/p/1"


def test_writes_to_the_loser_answer_entity_is_deleted(api, emu):
    survivor, loser = person(emu, "Lead", 1, "a@example.com"), person(emu, "Lead", 2, "b@example.com")
    campaign = emu.org.insert("Campaign", {"Name": "Expo"})
    emu.org.merge(survivor, loser)
    r = api.patch(f"sobjects/Lead/{loser}", json={"Title": "CTO"})
    assert r.status_code == 404 and r.json() == [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                                                  "fields": []}]
    out = api.request("PATCH", "composite/sobjects", json={"records": [
        {"attributes": {"type": "Lead"}, "Id": loser, "Title": "CTO"}]}).json()
    assert out[0]["errors"] == [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
    joined = api.create([{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "LeadId": loser}])
    assert joined[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_an_upsert_by_the_losers_external_id_does_not_match_the_deleted_record(api, emu):
    survivor, loser = person(emu, "Lead", 1, "a@example.com"), person(emu, "Lead", 2, "b@example.com")
    emu.org.merge(survivor, loser)
    out = api.upsert("Lead", "Jomablue_Id__c", [{"LastName": "Again", "Company": "Acme", "Jomablue_Id__c": "jb/p/2"}])
    assert out[0]["success"] and out[0]["created"] is True and out[0]["id"] not in (loser, survivor)


def test_a_chain_of_merges_and_a_survivor_converted_later(api, emu):
    a, b, c = (person(emu, "Lead", n, f"p{n}@example.com") for n in (1, 2, 3))
    campaign = emu.org.insert("Campaign", {"Name": "Expo"})
    member(emu, campaign, "LeadId", a)
    emu.org.merge(b, a)
    emu.org.merge(c, b)
    contact = emu.org.convert_lead(c)
    rows = api.get("queryAll", params={"q": "SELECT Id, IsDeleted, MasterRecordId, IsConverted, ConvertedContactId "
                                            "FROM Lead ORDER BY LastName"}).json()["records"]
    chain = {r["Id"]: r for r in rows}
    assert chain[a]["MasterRecordId"] == b and chain[b]["MasterRecordId"] == c
    assert chain[c]["IsDeleted"] is False and chain[c]["IsConverted"] is True
    assert chain[c]["ConvertedContactId"] == contact
    members = api.query(f"SELECT ContactId, LeadId FROM CampaignMember WHERE CampaignId = '{campaign}'")["records"]
    assert [(r["ContactId"], r["LeadId"]) for r in members] == [(contact, None)]


def test_merge_needs_two_live_records_of_one_object(emu):
    lead, contact = person(emu, "Lead", 1, "a@example.com"), person(emu, "Contact", 2, "b@example.com")
    with pytest.raises(RecordError):
        emu.org.merge(lead, contact)


def test_three_records_merge_at_once_and_no_more(emu):
    a, b, c, d = (person(emu, "Contact", n, f"p{n}@example.com") for n in range(4))
    with pytest.raises(ValueError):
        emu.org.merge(a, b, c, d)
    emu.org.merge(a, b, c)
    assert [r["Id"] for r in emu.org.records("Contact")] == [a, d]
    assert [emu.org.lookup(x)[1]["MasterRecordId"] for x in (b, c)] == [a, a]
