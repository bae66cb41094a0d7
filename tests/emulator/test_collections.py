"""sObject Collections and single-record endpoints: shapes, row errors, allOrNone."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connector.salesforce.ids import looks_like_id


def lead(ext, **extra):
    return {"LastName": "Nguyen", "Company": "Acme", "Jomablue_Id__c": ext, **extra}


def codes(result):
    return [e["statusCode"] for e in result["errors"]]


def test_upsert_creates_then_updates(emu, api):
    first = api.upsert("Lead", "Jomablue_Id__c", [lead("acme/event_person/1"), lead("acme/event_person/2")])
    assert [r["created"] for r in first] == [True, True]
    assert all(r["success"] and r["errors"] == [] and looks_like_id(r["id"]) and len(r["id"]) == 18
               for r in first)
    assert first[0]["id"].startswith("00Q")
    second = api.upsert("Lead", "Jomablue_Id__c", [lead("acme/event_person/2", Title="CTO"),
                                                   lead("acme/event_person/3")])
    assert second[0] == {"id": first[1]["id"], "success": True, "created": False, "errors": []}
    assert second[1]["created"] is True
    stored = emu.org.get(first[1]["id"])
    assert stored["Title"] == "CTO" and stored["Status"] == "Open - Not Contacted"
    assert stored["IsConverted"] is False and stored["IsDeleted"] is False
    assert stored["CreatedDate"].endswith("+0000") and len(emu.org.records("Lead")) == 3


def test_upsert_external_id_is_case_sensitive(emu, api):
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("ABC")])
    res2 = api.upsert("Lead", "Jomablue_Id__c", [lead("abc")])
    assert res2[0]["created"] is True and res2[0]["id"] != res[0]["id"]


def test_upsert_row_errors_do_not_fail_the_call(emu, api):
    res = api.upsert("Lead", "Jomablue_Id__c", [
        lead("ok-1"),
        {"Company": "NoLastName", "Jomablue_Id__c": "bad-1"},
        lead("bad-2", Email="not-an-email"),
        lead("bad-3", FirstName="x" * 41),
        lead("bad-4", Status="Maybe"),
        lead("bad-5", Shoe_Size__c=42),
        lead("bad-6", IsConverted=True),
        # LeadSource is restricted in the emulator's org (as in many real ones: orgschema.py);
        # Industry is an open picklist and takes any value.
        lead("ok-2", Industry="Anything goes here"),
    ])
    assert [r["success"] for r in res] == [True, False, False, False, False, False, False, True]
    assert res[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert res[1]["errors"][0]["fields"] == ["LastName"]
    assert codes(res[2]) == ["INVALID_EMAIL_ADDRESS"]
    assert codes(res[3]) == ["STRING_TOO_LONG"] and res[3]["errors"][0]["fields"] == ["FirstName"]
    assert codes(res[4]) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    assert "bad value for restricted picklist field: Maybe" in res[4]["errors"][0]["message"]
    assert codes(res[5]) == ["INVALID_FIELD"]
    assert res[5]["errors"][0]["message"] == "No such column 'Shoe_Size__c' on sobject of type Lead"
    assert codes(res[6]) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert all(r["id"] is None and r["created"] is False for r in res[1:7])
    assert sorted(r["Jomablue_Id__c"] for r in emu.org.records("Lead")) == ["ok-1", "ok-2"]


def test_length_is_counted_in_characters(emu, api):
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("k1", FirstName="김" * 40),
                                                 lead("k2", FirstName="김" * 41)])
    assert res[0]["success"] and codes(res[1]) == ["STRING_TOO_LONG"]


def test_empty_string_counts_as_missing(api):
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("e1", Company="")])
    assert codes(res[0]) == ["REQUIRED_FIELD_MISSING"] and res[0]["errors"][0]["fields"] == ["Company"]


def test_duplicate_external_id_in_one_payload(emu, api):
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("dup"), lead("solo"), lead("dup", Title="x")])
    assert res[1]["success"]
    for r in (res[0], res[2]):
        assert codes(r) == ["DUPLICATE_VALUE"]
        assert r["errors"][0]["message"] == "Duplicate external id specified: dup"
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Lead")] == ["solo"]


def test_upsert_rejects_non_external_id_field_and_id_in_body(api):
    r = api.patch("composite/sobjects/Lead/Email", json={"records": [
        {"attributes": {"type": "Lead"}, **lead("x")}]})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    existing = api.upsert("Lead", "Jomablue_Id__c", [lead("x")])[0]["id"]
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("x", Id=existing)])
    assert not res[0]["success"]


def test_more_than_200_records_is_rejected(emu, api):
    body = {"records": [{"attributes": {"type": "Lead"}, **lead(f"l{i}")} for i in range(201)]}
    r = api.patch("composite/sobjects/Lead/Jomablue_Id__c", json=body)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert emu.org.records("Lead") == []
    body["records"] = body["records"][:200]
    r = api.patch("composite/sobjects/Lead/Jomablue_Id__c", json=body)
    assert r.status_code == 200 and all(x["success"] for x in r.json())


def test_malformed_json_is_json_parser_error(api):
    r = api.patch("composite/sobjects/Lead/Jomablue_Id__c", data=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_all_or_none_rolls_everything_back(emu, api):
    api.upsert("Lead", "Jomablue_Id__c", [lead("keep", Title="before")])
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("keep", Title="after"), lead("new"),
                                                 {"Jomablue_Id__c": "bad"}], all_or_none=True)
    assert codes(res[0]) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert codes(res[1]) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert codes(res[2]) == ["REQUIRED_FIELD_MISSING"]
    assert [(r["Jomablue_Id__c"], r["Title"]) for r in emu.org.records("Lead")] == [("keep", "before")]
    # the rolled-back external id is free again
    assert api.upsert("Lead", "Jomablue_Id__c", [lead("new")])[0]["created"] is True


def test_all_or_none_rolls_back_campaign_side_effects(emu, api):
    res = api.create([{"attributes": {"type": "Campaign"}, "Name": "Event"},
                      {"attributes": {"type": "Campaign"}}], all_or_none=True)
    assert [r["success"] for r in res] == [False, False]
    assert emu.org.records("Campaign") == [] and emu.org.records("CampaignMemberStatus") == []


def test_create_update_delete_collections(emu, api):
    account = emu.org.insert("Account", {"Name": "Acme"})
    res = api.create([{"attributes": {"type": "Contact"}, "LastName": "Kim", "AccountId": account[:15]},
                      {"attributes": {"type": "Campaign"}, "Name": "Summit", "IsActive": True},
                      {"attributes": {"type": "Contact"}, "LastName": "Bad", "AccountId": "001000000000000"}])
    assert res[0]["success"] and res[1]["success"]
    assert res[0]["id"].startswith("003") and res[1]["id"].startswith("701")
    assert codes(res[2]) == ["INVALID_CROSS_REFERENCE_KEY"]
    assert emu.org.get(res[0]["id"])["AccountId"] == account  # stored as 18
    upd = api.patch("composite/sobjects", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Id": res[0]["id"], "Title": "CEO"},
        {"attributes": {"type": "Contact"}, "Id": res[0]["id"], "CreatedDate": "2020-01-01T00:00:00Z"},
        {"attributes": {"type": "Contact"}, "Title": "no id"}]}).json()
    assert upd[0] == {"id": res[0]["id"], "success": True, "errors": []}
    assert codes(upd[1]) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert not upd[2]["success"]
    assert emu.org.get(res[0]["id"])["Title"] == "CEO"
    r = api.delete("composite/sobjects", params={"ids": f"{res[0]['id']},{res[0]['id']}", "allOrNone": "false"})
    assert r.status_code == 200
    deleted = r.json()
    assert deleted[0] == {"id": res[0]["id"], "success": True, "errors": []}
    assert codes(deleted[1]) == ["ENTITY_IS_DELETED"]
    assert emu.org.get(res[0]["id"]) is None
    assert emu.calls_by_kind["collections_update"] == 1 and emu.calls_by_kind["collections_delete"] == 1
    upd = api.patch("composite/sobjects", json={"records": [
        {"attributes": {"type": "Contact"}, "Id": res[0]["id"], "Title": "x"}]}).json()
    assert codes(upd[0]) == ["ENTITY_IS_DELETED"]


def test_wrong_value_types_fail_the_row(api):
    res = api.create([
        {"attributes": {"type": "Campaign"}, "Name": "A", "StartDate": "10/09/2025"},
        {"attributes": {"type": "Campaign"}, "Name": "B", "IsActive": "yes"},
        {"attributes": {"type": "Campaign"}, "Name": "C", "StartDate": "2025-09-10", "IsActive": True},
        {"attributes": {"type": "CampaignMember"}, "Jomablue_Checked_In_At__c": "yesterday"},
    ])
    assert codes(res[0]) == ["INVALID_TYPE_ON_FIELD_IN_RECORD"]
    assert codes(res[1]) == ["INVALID_TYPE_ON_FIELD_IN_RECORD"]
    assert res[2]["success"]
    assert "INVALID_TYPE_ON_FIELD_IN_RECORD" in codes(res[3])


def test_datetime_offsets_are_normalised_to_utc(emu, api):
    campaign = emu.org.insert("Campaign", {"Name": "E"})
    person = emu.org.insert("Contact", {"LastName": "P"})
    res = api.upsert("CampaignMember", "Jomablue_Id__c", [
        {"CampaignId": campaign, "ContactId": person, "Jomablue_Id__c": "m1",
         "Jomablue_Checked_In_At__c": "2025-09-11T09:04:49.880+10:00"}])
    assert res[0]["success"], res
    row = api.query("SELECT Jomablue_Checked_In_At__c FROM CampaignMember")["records"][0]
    assert row["Jomablue_Checked_In_At__c"] == "2025-09-10T23:04:49.880+0000"


def test_unicode_round_trip(emu, api, sf):
    names = {"FirstName": "김민준", "LastName": "สมชาย", "Company": "Fête 🎉 株式会社"}
    res = api.upsert("Lead", "Jomablue_Id__c", [{**names, "Jomablue_Id__c": "유니코드/🎉"}])
    assert res[0]["success"]
    row = sf.query("SELECT FirstName, LastName, Company, Jomablue_Id__c FROM Lead")["records"][0]
    assert {k: row[k] for k in names} == names and row["Jomablue_Id__c"] == "유니코드/🎉"
    where = sf.query("SELECT Id FROM Lead WHERE LastName = 'สมชาย' AND Company LIKE '%🎉%'")
    assert where["totalSize"] == 1
    got = sf.Lead.get_by_custom_id("Jomablue_Id__c", "유니코드/🎉")  # it URL-encodes itself
    assert got["FirstName"] == "김민준"


def test_single_record_endpoints_with_simple_salesforce(emu, sf):
    created = sf.Lead.create(lead("s1"))
    assert created["success"] and created["errors"] == []
    assert sf.Lead.update(created["id"], {"Title": "Dr"}) == 204
    got = sf.Lead.get(created["id"][:15])
    assert got["Title"] == "Dr" and got["attributes"]["type"] == "Lead"
    ext = quote("acme/event_person/9", safe="")
    assert sf.Lead.upsert(f"Jomablue_Id__c/{ext}", {"LastName": "U", "Company": "C"}) == 201
    assert sf.Lead.upsert(f"Jomablue_Id__c/{ext}", {"Title": "Prof"}) == 200
    assert emu.org.query("SELECT Title FROM Lead WHERE Jomablue_Id__c = 'acme/event_person/9'") == [{"Title": "Prof"}]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Lead.create({"LastName": "NoCompany"})
    assert exc.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Lead.delete(created["id"]) == 204
    assert emu.org.get(created["id"]) is None
    assert emu.calls_by_kind["sobject"] == 7


def test_single_record_upsert_response_body(api):
    r = api.patch("sobjects/Lead/Jomablue_Id__c/a%2Fb", json={"LastName": "X", "Company": "Y"})
    assert r.status_code == 201
    body = r.json()
    assert body["created"] is True and body["success"] is True and body["errors"] == []
    r = api.patch("sobjects/Lead/Jomablue_Id__c/a%2Fb", json={"Title": "T"})
    assert r.status_code == 200 and r.json() == {**body, "created": False}
    r = api.patch("sobjects/Lead/Jomablue_Id__c/a%2Fb", json={"Email": "nope"})
    assert r.status_code == 400
    assert r.json()[0]["errorCode"] == "INVALID_EMAIL_ADDRESS" and r.json()[0]["fields"] == ["Email"]


def test_ids_are_mixed_case_with_checksums(emu):
    ids = [emu.org.insert("Account", {"Name": f"A{i}"}) for i in range(20)]
    assert len(set(ids)) == 20
    assert all(looks_like_id(i) and i.startswith("001") for i in ids)
    assert len({i[15:] for i in ids}) > 1  # the checksum actually varies
    assert emu.org.get(ids[3][:15]) == emu.org.get(ids[3]) == emu.org.get(ids[3].lower())


def test_concurrent_upserts_are_atomic_per_call(emu, make_api, new_token):
    """8 threads upsert overlapping keys: no duplicates, every call answered, counts exact."""
    import concurrent.futures

    def worker(n):
        client = make_api(new_token())
        out = []
        for batch in range(5):
            out += client.upsert("Lead", "Jomablue_Id__c",
                                 [lead(f"k{(n * 7 + batch * 13 + i) % 60}") for i in range(20)])
        return out

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [r for chunk in pool.map(worker, range(8)) for r in chunk]
    assert len(results) == 8 * 5 * 20 and all(r["success"] for r in results)
    keys = [r["Jomablue_Id__c"] for r in emu.org.records("Lead")]
    assert len(keys) == len(set(keys)) == sum(r["created"] for r in results)
    assert emu.api_calls == 40
