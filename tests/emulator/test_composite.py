"""POST /composite: independent query subrequests in one call, counted once, limits enforced."""

from __future__ import annotations

from urllib.parse import urlencode


def sub(n: int, soql: str) -> dict:
    return {"method": "GET", "url": f"/services/data/v62.0/query/?{urlencode({'q': soql})}", "referenceId": f"q{n}"}


def test_five_queries_in_one_call(api, emu):
    emu.org.insert("Lead", {"LastName": "김", "Company": "C", "Email": "kim@example.com"})
    emu.reset_counters()
    reqs = [sub(0, "SELECT Id, LastName FROM Lead WHERE Email = 'KIM@example.com'"),
            sub(1, "SELECT COUNT() FROM Contact"),
            sub(2, "SELECT Nope FROM Lead")]
    r = api.post("composite", json={"allOrNone": False, "compositeRequest": reqs})
    assert r.status_code == 200, r.text
    out = {x["referenceId"]: x for x in r.json()["compositeResponse"]}
    assert out["q0"]["httpStatusCode"] == 200 and out["q0"]["body"]["records"][0]["LastName"] == "김"
    assert out["q1"]["body"]["totalSize"] == 0
    assert out["q2"]["httpStatusCode"] == 400 and out["q2"]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert emu.api_calls == 1 and emu.calls_by_kind["composite"] == 1
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_more_than_five_queries_is_refused(api):
    reqs = [sub(n, "SELECT Id FROM Lead") for n in range(6)]
    r = api.post("composite", json={"compositeRequest": reqs})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "LIMIT_EXCEEDED"


# ------------------------------------------------------------------ references between subrequests

V = "/services/data/v62.0"


def composite(api, reqs, **top):
    r = api.post("composite", json={"compositeRequest": reqs, **top})
    assert r.status_code == 200, r.text
    return {x["referenceId"]: x for x in r.json()["compositeResponse"]}, [x["referenceId"] for x in
                                                                         r.json()["compositeResponse"]]


def people(ref, *names, ext_prefix="jb/p/"):
    return {"method": "PATCH", "url": f"{V}/composite/sobjects/Lead/Jomablue_Id__c", "referenceId": ref,
            "body": {"allOrNone": False, "records": [
                {"attributes": {"type": "Lead"}, "LastName": n, "Company": "Acme" if n != "NoCompany" else None,
                 "Jomablue_Id__c": ext_prefix + n} for n in names]}}


def members(ref, campaign_ref, *person_refs):
    return {"method": "POST", "url": f"{V}/composite/sobjects", "referenceId": ref,
            "body": {"allOrNone": False, "records": [
                {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign_ref, "LeadId": p}
                for p in person_refs]}}


def test_person_and_member_writes_travel_in_one_call_by_reference(api, emu):
    emu.reset_counters()
    reqs = [{"method": "POST", "url": f"{V}/sobjects/Campaign", "referenceId": "campaign",
             "body": {"Name": "Expo"}},
            people("persons", "Kim", "Lee"),
            members("members", "@{campaign.id}", "@{persons[0].id}", "@{persons[1].id}")]
    out, order = composite(api, reqs, collateSubrequests=False)
    assert order == ["campaign", "persons", "members"] and emu.api_calls == 1
    campaign_id = out["campaign"]["body"]["id"]
    assert out["campaign"]["httpStatusCode"] == 201
    assert out["campaign"]["httpHeaders"] == {"Location": f"{V}/sobjects/Campaign/{campaign_id}"}
    assert [r["success"] for r in out["members"]["body"]] == [True, True]
    rows = api.query(f"SELECT LeadId FROM CampaignMember WHERE CampaignId = '{campaign_id}'")["records"]
    assert sorted(r["LeadId"] for r in rows) == sorted(r["id"] for r in out["persons"]["body"])


def test_a_reference_to_a_failed_row_fails_only_the_dependent_subrequest(api, emu):
    campaign = emu.org.insert("Campaign", {"Name": "Expo"})
    reqs = [people("persons", "Kim", "NoCompany"),
            members("ok", campaign, "@{persons[0].id}"),
            members("bad", campaign, "@{persons[1].id}"),
            {"method": "GET", "url": f"{V}/query?q=SELECT+Id+FROM+Lead+WHERE+Email+=+'@{{persons[0].nope}}'",
             "referenceId": "missingPath"},
            {"method": "GET", "url": f"{V}/sobjects/Lead/@{{later.id}}", "referenceId": "forward"},
            {"method": "GET", "url": f"{V}/query?q=SELECT+COUNT()+FROM+Lead", "referenceId": "later"}]
    out, _ = composite(api, reqs, allOrNone=False)
    assert [r["success"] for r in out["persons"]["body"]] == [True, False]
    assert out["ok"]["httpStatusCode"] == 200 and out["ok"]["body"][0]["success"]
    assert out["bad"] == {"body": [{"errorCode": "PROCESSING_HALTED", "message":
                                    "Invalid reference specified. No value for persons[1].id found in persons."}],
                          "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "bad"}
    assert out["missingPath"]["body"][0]["message"] == ("Invalid reference specified. No value for "
                                                        "persons[0].nope found in persons.")
    assert out["forward"]["httpStatusCode"] == 400
    assert out["later"]["httpStatusCode"] == 200 and out["later"]["body"]["totalSize"] == 1
    assert api.query(f"SELECT COUNT() FROM CampaignMember WHERE CampaignId = '{campaign}'")["totalSize"] == 1


def test_a_reference_to_a_failed_subrequest_and_to_query_records(api, emu):
    emu.org.insert("Lead", {"LastName": "Kim", "Company": "Acme", "Email": "kim@example.com"})
    reqs = [{"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "broken", "body": {"LastName": "X"}},
            {"method": "GET", "url": f"{V}/sobjects/Lead/@{{broken.id}}", "referenceId": "afterBroken"},
            {"method": "GET", "url": f"{V}/query?q=SELECT+Id,Title+FROM+Lead+WHERE+Email='kim@example.com'",
             "referenceId": "found"},
            {"method": "PATCH", "url": f"{V}/sobjects/Lead/@{{found.records[0].Id}}", "referenceId": "update",
             "body": {"Title": "CTO"}},
            {"method": "GET", "url": f"{V}/sobjects/Lead/@{{found.records[0].Id}}?fields=Title,Phone",
             "referenceId": "read"},
            {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "copy",
             "body": {"LastName": "Copy", "Company": "Acme", "Phone": "@{read.Phone}"}}]
    out, _ = composite(api, reqs)
    assert out["broken"]["httpStatusCode"] == 400 and out["broken"]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert out["afterBroken"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert out["update"]["httpStatusCode"] == 204
    assert out["read"]["body"]["Title"] == "CTO"
    # a null field of an sObject Rows parent resolves (API 52.0 and later)
    assert out["copy"]["httpStatusCode"] == 201


def test_all_or_none_rolls_back_every_subrequest_and_halts_the_others(api, emu):
    reqs = [people("persons", "Kim"),
            {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "broken", "body": {"LastName": "X"}},
            {"method": "GET", "url": f"{V}/query?q=SELECT+COUNT()+FROM+Lead", "referenceId": "count"}]
    out, _ = composite(api, reqs, allOrNone=True)
    halted = [{"errorCode": "PROCESSING_HALTED", "message": "We rolled back the transaction since another "
                                                            "operation in the same transaction failed."}]
    assert out["persons"]["body"] == halted and out["count"]["body"] == halted
    assert out["persons"]["httpStatusCode"] == 400
    assert out["broken"]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert api.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


def test_a_collection_with_all_or_none_inside_a_composite_undoes_only_itself(api, emu):
    reqs = [people("first", "Kim"),
            {**people("second", "Lee", "NoCompany"), "body": {**people("second", "Lee", "NoCompany")["body"],
                                                              "allOrNone": True}}]
    out, _ = composite(api, reqs, allOrNone=False)
    assert out["second"]["httpStatusCode"] == 200
    assert [e["statusCode"] for r in out["second"]["body"] for e in r["errors"]] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING"]
    assert [r["LastName"] for r in api.query("SELECT LastName FROM Lead")["records"]] == ["Kim"]


def test_collated_subrequests_may_run_out_of_order_unless_collation_is_off(api, emu):
    emu.faults.composite_reorder = True
    create = {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "create",
              "body": {"LastName": "Kim", "Company": "Acme"}}
    count = {"method": "GET", "url": f"{V}/query?q=SELECT+COUNT()+FROM+Lead", "referenceId": "count"}
    out, order = composite(api, [create, count])               # collated by default from API 49
    assert order == ["create", "count"]                         # answers keep the request's order
    assert out["count"]["body"]["totalSize"] == 0               # but the count ran first
    out, _ = composite(api, [create, count], collateSubrequests=False)
    assert out["count"]["body"]["totalSize"] == 2
    # an explicit dependency is always honoured
    read = {"method": "GET", "url": f"{V}/sobjects/Lead/@{{create.id}}", "referenceId": "read"}
    out, _ = composite(api, [create, read])
    assert out["read"]["httpStatusCode"] == 200 and out["read"]["body"]["LastName"] == "Kim"


def test_top_level_write_headers_reach_the_subrequests_and_a_subrequests_own_header_wins(api, emu):
    rule = emu.org.set_lead_assignment_rule()
    emu.org.add_duplicate_rule("Lead")
    emu.org.insert("Lead", {"LastName": "Kim", "Company": "Acme", "Email": "kim@example.com"})
    body = {"LastName": "Kim", "Company": "Acme", "Email": "kim@example.com"}
    reqs = [{"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "plain", "body": body},
            {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "own", "body": body,
             "httpHeaders": {"sforce-auto-assign": "TRUE"}}]
    r = api.post("composite", json={"compositeRequest": reqs},
                 headers={"Sforce-Auto-Assign": "FALSE", "Sforce-Duplicate-Rule-Header": "allowSave=true"})
    out = {x["referenceId"]: x for x in r.json()["compositeResponse"]}
    assert out["plain"]["httpStatusCode"] == 201 and out["own"]["httpStatusCode"] == 201
    assert emu.org.get(out["plain"]["body"]["id"])["OwnerId"] == emu.org.user_id
    assert emu.org.get(out["own"]["body"]["id"])["OwnerId"] == rule.owner_id
    without = api.post("composite", json={"compositeRequest": reqs[:1]}).json()["compositeResponse"][0]
    assert without["httpStatusCode"] == 400 and without["body"][0]["errorCode"] == "DUPLICATES_DETECTED"


def test_more_than_25_subrequests_is_refused(api):
    reqs = [{"method": "GET", "url": f"{V}/limits", "referenceId": f"r{n}"} for n in range(26)]
    r = api.post("composite", json={"compositeRequest": reqs})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
