"""What a customer's org does on its own, checked against the emulator and (when SF_SANDBOX_* name
one) a real sandbox: an admin's merge followed through MasterRecordId, a validation rule's refusal,
a private record's refusal. If a sandbox disagrees, the emulator (connector_devkit/emulator/orglife.py
and Org.merge) and the connector are wrong, not the sandbox.
"""

from __future__ import annotations


def _lead(target, n: str, **extra) -> dict:
    return {"attributes": {"type": "Lead"}, "LastName": f"Contract {n}", "Company": "CT",
            "Email": f"ct{target.run_id}.{n}@example.com", "Jomablue_Id__c": target.jid("ep", n), **extra}


def test_a_merge_is_followed_through_master_record_id(target):
    [survivor, loser, campaign] = target.create([
        _lead(target, "survivor"), _lead(target, "loser"),
        {"attributes": {"type": "Campaign"}, "Name": f"CT {target.run_id}",
         "Jomablue_Id__c": target.jid("event", "m")}])
    assert survivor["success"] and loser["success"] and campaign["success"]
    [member] = target.create([{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign["id"],
                               "LeadId": loser["id"]}])
    assert member["success"], member
    target.merge(survivor["id"], loser["id"], "Lead")

    assert target.query(f"SELECT Id FROM Lead WHERE Id = '{loser['id']}'") == []
    r = target.request("GET", "queryAll", params={"q": f"SELECT Id, IsDeleted, MasterRecordId FROM Lead "
                                                       f"WHERE Id = '{loser['id']}'"})
    assert r.status_code == 200, r.text
    [gone] = r.json()["records"]
    assert gone["IsDeleted"] is True and gone["MasterRecordId"] == survivor["id"]
    # the loser's membership moved to the survivor
    members = target.query(f"SELECT LeadId FROM CampaignMember WHERE CampaignId = '{campaign['id']}'")
    assert [m["LeadId"] for m in members] == [survivor["id"]]
    # the survivor kept its own email and external id
    [kept] = target.query(f"SELECT Email, Jomablue_Id__c FROM Lead WHERE Id = '{survivor['id']}'")
    assert kept["Jomablue_Id__c"] == target.jid("ep", "survivor")
    assert kept["Email"] == f"ct{target.run_id}.survivor@example.com"
    # a write to the loser's id is refused as deleted
    r = target.request("PATCH", "composite/sobjects", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "Id": loser["id"], "Title": "CT"}]})
    assert r.status_code == 200 and r.json()[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    # an upsert by the loser's external id does not match the deleted record
    r = target.request("PATCH", "composite/sobjects/Lead/Jomablue_Id__c", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "LastName": "Contract again", "Company": "CT",
         "Jomablue_Id__c": target.jid("ep", "loser")}]})
    assert r.status_code == 200, r.text
    [again] = r.json()
    assert again["success"] and again["created"] is True and again["id"] != loser["id"]
    target.created.append(again["id"])


def test_a_validation_rule_refuses_with_its_own_message_and_field(target):
    target.add_validation_rule("Lead", f"CT_Refuse_{target.run_id}", "Contract suite: this title is refused",
                               field="Title", refused_value="Refused")
    [refused, fine] = target.create([_lead(target, "v1", Title="Refused"), _lead(target, "v2", Title="Fine")])
    assert fine["success"], fine
    assert not refused["success"]
    assert refused["errors"] == [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                  "message": "Contract suite: this title is refused", "fields": ["Title"]}]


def test_a_private_record_is_readable_but_its_update_is_refused(target):
    sobject, rid = target.private_record()
    r = target.request("GET", f"sobjects/{sobject}/{rid}", params={"fields": "Id"})
    assert r.status_code == 200, r.text
    r = target.request("PATCH", "composite/sobjects", json={"allOrNone": False, "records": [
        {"attributes": {"type": sobject}, "Id": rid, "Description": "contract suite"}]})
    assert r.status_code == 200, r.text
    assert r.json()[0]["errors"] == [{"statusCode": "INSUFFICIENT_ACCESS_OR_READONLY",
                                      "message": "insufficient access rights on object id", "fields": []}]


def test_an_unknown_field_in_a_collection_fails_its_row_with_no_such_column(target):
    """What a field deleted at run time looks like in a collection write (the emulator answers per
    row; a sandbox that answers for the whole request shows the emulator wrong)."""
    r = target.request("POST", "composite/sobjects", json={"allOrNone": False, "records": [
        _lead(target, "u1", CT_Gone_Field__c="x")]})
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert not row["success"]
    error = row["errors"][0]
    assert error["statusCode"] == "INVALID_FIELD"
    assert error["message"] == "No such column 'CT_Gone_Field__c' on sobject of type Lead"


def test_composite_references_carry_person_ids_into_member_writes(target):
    """Issue 18's two-call batch: people upserted and their members written in one /composite."""
    [campaign] = target.create([{"attributes": {"type": "Campaign"}, "Name": f"CT {target.run_id}",
                                 "Jomablue_Id__c": target.jid("event", "c")}])
    v = f"/services/data/v{target.config.api_version}"
    people = [_lead(target, "r1"), _lead(target, "r2", Company=None)]  # the second is refused
    reqs = [{"method": "PATCH", "url": f"{v}/composite/sobjects/Lead/Jomablue_Id__c", "referenceId": "persons",
             "body": {"allOrNone": False, "records": people}}]
    for n in range(2):
        reqs.append({"method": "POST", "url": f"{v}/composite/sobjects", "referenceId": f"member{n}",
                     "body": {"allOrNone": False, "records": [
                         {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign["id"],
                          "LeadId": f"@{{persons[{n}].id}}"}]}})
    r = target.request("POST", "composite", json={"allOrNone": False, "collateSubrequests": False,
                                                  "compositeRequest": reqs})
    assert r.status_code == 200, r.text
    out = {x["referenceId"]: x for x in r.json()["compositeResponse"]}
    persons = out["persons"]["body"]
    assert persons[0]["success"] and not persons[1]["success"]
    target.created.append(persons[0]["id"])
    assert out["member0"]["httpStatusCode"] == 200 and out["member0"]["body"][0]["success"]
    assert out["member1"]["httpStatusCode"] == 400
    assert out["member1"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert out["member1"]["body"][0]["message"].startswith("Invalid reference specified. No value for persons[1].id")
