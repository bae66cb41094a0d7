"""What a customer's org does on its own (connector_devkit/emulator/orglife.py): each behaviour is
off until the test switches it on, answers with Salesforce's codes and texts, and goes away
when switched off (or after its N failures)."""

from __future__ import annotations

import pytest


def lead(n: int, **extra) -> dict:
    return {"attributes": {"type": "Lead"}, "LastName": f"Person {n}", "Company": "Acme",
            "Jomablue_Id__c": f"jb/p/{n}", **extra}


def errors(result: dict) -> list[tuple[str, str, list[str]]]:
    return [(e["statusCode"], e["message"], e["fields"]) for e in result["errors"]]


def live_leads(api) -> int:
    return api.query("SELECT COUNT() FROM Lead")["totalSize"]


# ------------------------------------------------------------------ failing triggers

def test_a_trigger_wrapping_a_row_lock_fails_the_whole_call_once_then_the_retry_succeeds(api, emu):
    rule = emu.org.fail_trigger("Lead", times=1)
    first = api.create([lead(1), lead(2), lead(3)])
    assert [r["success"] for r in first] == [False, False, False]
    code, message, fields = errors(first[0])[0]
    assert code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY" and fields == []
    assert message == ("LeadTrigger: execution of AfterInsert caused by: System.DmlException: Insert failed. "
                       "First exception on row 0; first error: UNABLE_TO_LOCK_ROW, unable to obtain "
                       "exclusive access to this record: []")
    assert live_leads(api) == 0                     # nothing of the failed call was saved
    again = api.create([lead(1), lead(2), lead(3)])
    assert all(r["success"] for r in again) and live_leads(api) == 3
    assert rule.failed_calls == 1


def test_a_trigger_fails_only_its_own_object_in_a_mixed_call(api, emu):
    emu.org.fail_trigger("Lead", times=1)
    contact = {"attributes": {"type": "Contact"}, "LastName": "Cho"}
    out = api.create([lead(1), contact])
    assert [r["success"] for r in out] == [False, True]


def test_a_trigger_failing_on_update_only_leaves_creates_alone_and_answers_single_record_rest(api, emu):
    emu.org.fail_trigger("Lead", times=2, cause="cpu", on=("update",))
    lead_id = api.create([lead(1)])[0]["id"]
    for _ in range(2):
        r = api.patch(f"sobjects/Lead/{lead_id}", json={"Title": "CTO"})
        assert r.status_code == 400
        assert r.json() == [{"message": "LeadTrigger: System.LimitException: Apex CPU time limit exceeded",
                             "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "fields": []}]
    assert api.patch(f"sobjects/Lead/{lead_id}", json={"Title": "CTO"}).status_code == 204
    assert emu.org.get(lead_id)["Title"] == "CTO"


def test_too_many_soql_queries_fails_a_large_collection_and_a_smaller_one_succeeds(api, emu):
    emu.org.fail_trigger("Lead", times=None, cause="soql", batch_over=5)
    big = api.upsert("Lead", "Jomablue_Id__c", [lead(n) for n in range(6)])
    assert not any(r["success"] for r in big)
    assert errors(big[0])[0][:2] == ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                                     "LeadTrigger: System.LimitException: Too many SOQL queries: 101")
    small = api.upsert("Lead", "Jomablue_Id__c", [lead(n) for n in range(5)])
    assert all(r["success"] and r["created"] for r in small)
    assert not any(r["success"] for r in api.upsert("Lead", "Jomablue_Id__c", [lead(n) for n in range(6)]))


def test_a_trigger_is_api_only_and_off_by_default(api, emu):
    assert api.create([lead(1)])[0]["success"]
    emu.org.fail_trigger("Lead", times=None)
    emu.org.insert("Lead", {"LastName": "Seeded", "Company": "Acme"})  # tests seed unhindered
    assert not api.create([lead(2)])[0]["success"]


def test_a_trigger_rejects_bad_arguments(emu):
    with pytest.raises(ValueError):
        emu.org.fail_trigger("Lead", cause="disk")


# ------------------------------------------------------------------ validation rules

def test_a_validation_rule_refuses_its_records_every_time_with_its_own_message(api, emu):
    emu.org.add_validation_rule("Lead", "No_Test_Domain", "Use a company email address",
                                field="Email", when=lambda r: (r["Email"] or "").endswith("@test.invalid"))
    for _ in range(2):  # permanent
        out = api.create([lead(1, Email="a@test.invalid"), lead(2, Email="b@acme.example")])
        assert errors(out[0]) == [("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Use a company email address", ["Email"])]
        assert out[1]["success"]
        api.delete(f"sobjects/Lead/{out[1]['id']}")
    r = api.post("sobjects/Lead", json={"LastName": "X", "Company": "Acme", "Email": "x@test.invalid"})
    assert r.status_code == 400 and r.json() == [{"message": "Use a company email address",
                                                  "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                                  "fields": ["Email"]}]


def test_a_validation_rule_by_field_values_applies_to_updates_too(api, emu):
    lead_id = api.create([lead(1)])[0]["id"]
    emu.org.add_validation_rule("Lead", "No_Interns", "Interns are not leads", when={"Title": "intern"})
    out = api.request("PATCH", "composite/sobjects", json={"records": [
        {"attributes": {"type": "Lead"}, "Id": lead_id, "Title": "Intern"}]}).json()
    assert errors(out[0]) == [("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Interns are not leads", [])]
    assert emu.org.get(lead_id)["Title"] is None


# ------------------------------------------------------------------ storage

def test_full_storage_refuses_creates_and_upsert_creates_but_updates_work_until_space_is_freed(api, emu):
    existing = api.upsert("Lead", "Jomablue_Id__c", [lead(1)])[0]["id"]
    emu.org.storage_full = True
    out = api.upsert("Lead", "Jomablue_Id__c", [lead(1, Title="CEO"), lead(2)])
    assert out[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert errors(out[1]) == [("STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", [])]
    r = api.post("sobjects/Lead", json={"LastName": "X", "Company": "Acme"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "STORAGE_LIMIT_EXCEEDED"
    emu.org.storage_full = False
    assert api.upsert("Lead", "Jomablue_Id__c", [lead(2)])[0]["created"] is True


# ------------------------------------------------------------------ private records

def test_a_private_record_is_readable_but_not_writable_and_members_naming_it_still_work(api, emu):
    lead_id = api.create([lead(1)])[0]["id"]
    campaign = emu.org.insert("Campaign", {"Name": "Expo"})
    emu.org.make_private(lead_id[:15])  # either id form
    r = api.patch(f"sobjects/Lead/{lead_id}", json={"Title": "CTO"})
    assert r.status_code == 400 and r.json() == [{"message": "insufficient access rights on object id",
                                                  "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY", "fields": []}]
    upsert = api.upsert("Lead", "Jomablue_Id__c", [lead(1, Title="CTO")])
    assert errors(upsert[0])[0][0] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert api.delete(f"sobjects/Lead/{lead_id}").status_code == 400
    assert api.get(f"sobjects/Lead/{lead_id}").json()["Title"] is None
    assert api.query(f"SELECT Id FROM Lead WHERE Id = '{lead_id}'")["totalSize"] == 1
    member = api.create([{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "LeadId": lead_id}])
    assert member[0]["success"]
    emu.org.make_public(lead_id)
    assert api.patch(f"sobjects/Lead/{lead_id}", json={"Title": "CTO"}).status_code == 204


# ------------------------------------------------------------------ Campaign statuses added by a flow

def test_a_flow_adds_a_status_on_campaign_insert_and_a_clashing_sort_order_is_refused(api, emu):
    emu.org.add_campaign_status_on_insert("Registered", 3)
    campaign = api.create([{"attributes": {"type": "Campaign"}, "Name": "Expo"}])[0]["id"]
    rows = api.query(f"SELECT Label, SortOrder, IsDefault, HasResponded FROM CampaignMemberStatus "
                     f"WHERE CampaignId = '{campaign}' ORDER BY SortOrder")["records"]
    assert [(r["Label"], r["SortOrder"], r["IsDefault"], r["HasResponded"]) for r in rows] == [
        ("Sent", 1, True, False), ("Responded", 2, False, True), ("Registered", 3, False, False)]
    clash = api.create([{"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": campaign,
                         "Label": "Attended", "SortOrder": 3}])
    assert errors(clash[0]) == [("DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates value on "
                                 "record with id: <unknown>", [])]
    ok = api.create([{"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": campaign,
                      "Label": "Attended", "SortOrder": 4}])
    assert ok[0]["success"]


# ------------------------------------------------------------------ a field removed at run time

def test_a_removed_field_leaves_the_describe_is_refused_in_writes_and_comes_back_with_its_data(api, emu):
    lead_id = api.create([lead(1, Title="CEO")])[0]["id"]
    emu.org.remove_field("Lead", "title")
    names = [f["name"] for f in api.get("sobjects/Lead/describe").json()["fields"]]
    assert "Title" not in names and "LastName" in names
    r = api.patch(f"sobjects/Lead/{lead_id}", json={"Title": "CTO"})
    assert r.status_code == 400
    assert r.json() == [{"message": "No such column 'Title' on sobject of type Lead", "errorCode": "INVALID_FIELD"}]
    row = api.create([lead(2, Title="CFO")])[0]
    assert errors(row) == [("INVALID_FIELD", "No such column 'Title' on sobject of type Lead", [])]
    assert api.get("query", params={"q": "SELECT Title FROM Lead"}).status_code == 400
    created = api.create([lead(3)])[0]["id"]           # a write not naming it still works
    emu.org.restore_field("Lead", "Title")
    assert api.get(f"sobjects/Lead/{lead_id}").json()["Title"] == "CEO"
    assert api.get(f"sobjects/Lead/{created}").json()["Title"] is None
    assert api.patch(f"sobjects/Lead/{lead_id}", json={"Title": "CTO"}).status_code == 204


def test_removing_the_external_id_field_drops_its_unique_index_and_restoring_brings_it_back(api, emu):
    api.upsert("Lead", "Jomablue_Id__c", [lead(1)])
    emu.org.remove_field("Lead", "Jomablue_Id__c")
    r = api.patch("composite/sobjects/Lead/Jomablue_Id__c", json={"records": [lead(1)]})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    emu.org.restore_field("Lead", "Jomablue_Id__c")
    again = api.upsert("Lead", "Jomablue_Id__c", [lead(1, Title="CEO")])
    assert again[0]["created"] is False and live_leads(api) == 1
