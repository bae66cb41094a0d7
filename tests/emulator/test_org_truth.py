"""The emulator answers as a real org does: each test compares with a recorded or documented shape.

Sources: the public recordings and documentation cited in the emulator modules next to each rule
(connector_devkit/emulator/*.py).
"""

from __future__ import annotations

import base64
import json
import time

import requests

from connector_devkit.emulator import Org

LEAD = {"attributes": {"type": "Lead"}, "LastName": "Kim", "Company": "Acme"}


def codes(result):
    return [e["statusCode"] for e in result["errors"]]


# ------------------------------------------------------------------ request size

def test_uri_over_16384_bytes_gets_the_html_414(api):
    r = api.get("query", params={"q": "SELECT Id FROM Lead WHERE LastName = '" + "x" * 17_000 + "'"})
    assert r.status_code == 414
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text == "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"


def test_uri_plus_headers_over_16384_bytes_gets_the_html_431(api):
    r = api.get("query", params={"q": "SELECT Id FROM Lead WHERE LastName = '" + "x" * 9_000 + "'"},
                headers={"X-Padding": "p" * 8_000})
    assert r.status_code == 431
    assert r.text == "<h1>Bad Message 431</h1><pre>reason: Request Header Fields Too Large</pre>"
    # just under the limit is an ordinary query
    assert api.get("query", params={"q": "SELECT Id FROM Lead WHERE LastName = '" + "x" * 9_000 + "'"}
                   ).status_code == 200


def test_soql_over_100000_characters_is_malformed(api):
    soql = "SELECT Id FROM Lead WHERE LastName IN (" + ",".join(["'abcdefgh'"] * 10_000) + ")"
    assert len(soql) > 100_000
    body = {"compositeRequest": [{"method": "GET", "referenceId": "big",
                                  "url": "/services/data/v62.0/query/?" +
                                  requests.compat.urlencode({"q": soql})}]}
    sub = api.post("composite", json=body).json()["compositeResponse"][0]
    # django-salesforce #164: "MALFORMED_QUERY: SOQL statements can not be longer than 100000 characters"
    assert sub["httpStatusCode"] == 400
    assert sub["body"] == [{"message": "SOQL statements can not be longer than 100000 characters",
                            "errorCode": "MALFORMED_QUERY"}]


# ------------------------------------------------------------------ unknown keys

def test_fields_to_null_is_an_unknown_column(api):
    r = api.post("sobjects/Lead", json={"LastName": "Kim", "Company": "Acme", "fieldsToNull": ["Title"]})
    assert r.status_code == 400
    # sf-fx-runtime-java create-invalid-field.json: no `fields` key on INVALID_FIELD
    assert r.json() == [{"message": "No such column 'fieldsToNull' on sobject of type Lead",
                         "errorCode": "INVALID_FIELD"}]
    res = api.create([{**LEAD, "fieldsToNull": ["Title"]}])
    assert codes(res[0]) == ["INVALID_FIELD"]
    # the REST way to clear a field is an explicit null
    lead_id = api.create([{**LEAD, "Title": "CEO"}])[0]["id"]
    assert api.patch(f"sobjects/Lead/{lead_id}", json={"Title": None}).status_code == 204
    assert api.emu.org.get(lead_id)["Title"] is None


# ------------------------------------------------------------------ JWT audience

def _assertion(emu, aud):
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    claims = {"iss": emu.client_id, "sub": "integration@example.com", "aud": aud,
              "exp": int(time.time()) + 180}
    return f"{b64({'alg': 'RS256'})}.{b64(claims)}.sig"


def _jwt_login(emu, aud):
    return requests.post(f"{emu.url}/services/oauth2/token", verify=emu.ca_path, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": _assertion(emu, aud)})


def test_jwt_audience_must_be_login_test_or_a_site(emu):
    assert _jwt_login(emu, "https://login.salesforce.com").status_code == 200
    assert _jwt_login(emu, "https://test.salesforce.com").status_code == 200
    r = _jwt_login(emu, "https://acme.my.salesforce.com")  # the My Domain: refused
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}
    assert _jwt_login(emu, emu.url).status_code == 400
    emu.site_urls = ["https://acme.my.site.com/partners"]
    try:
        assert _jwt_login(emu, "https://acme.my.site.com/partners").status_code == 200
    finally:
        emu.site_urls = []


def test_userinfo_names_the_tokens_user(emu, api):
    r = api.session.get(f"{emu.url}/services/oauth2/userinfo")
    assert r.status_code == 200
    assert r.json()["user_id"] == emu.org.user_id
    assert r.json()["organization_id"] == emu.org.org_id


# ------------------------------------------------------------------ Sforce-Auto-Assign

def test_auto_assign_defaults_to_true_and_runs_the_active_rule(emu, api):
    plain = api.create([LEAD])[0]["id"]
    assert emu.org.get(plain)["OwnerId"] == emu.org.user_id  # no active rule: nothing moves
    rule = emu.org.set_lead_assignment_rule()
    created = api.create([{**LEAD, "LastName": "Lee"}])[0]["id"]
    assert emu.org.get(created)["OwnerId"] == rule.owner_id
    # an update without the header re-runs the rule too
    emu.org.update(plain, {"OwnerId": emu.org.user_id})
    r = api.patch(f"sobjects/Lead/{plain}", json={"Title": "CTO"})
    assert r.status_code == 204 and emu.org.get(plain)["OwnerId"] == rule.owner_id


def test_auto_assign_false_keeps_the_owner(emu, api):
    rule = emu.org.set_lead_assignment_rule()
    api.session.headers["Sforce-Auto-Assign"] = "FALSE"
    kept = api.create([LEAD])[0]["id"]
    assert emu.org.get(kept)["OwnerId"] == emu.org.user_id
    upd = api.upsert("Lead", "Jomablue_Id__c", [{"LastName": "K", "Company": "A", "Jomablue_Id__c": "x1"}])
    assert emu.org.get(upd[0]["id"])["OwnerId"] == emu.org.user_id
    assert rule.owner_id != emu.org.user_id


def test_assignment_rule_is_queryable(emu, api):
    assert api.query("SELECT Id FROM AssignmentRule WHERE SobjectType = 'Lead' AND Active = true")[
        "totalSize"] == 0
    rule = emu.org.set_lead_assignment_rule(rule_name="Round robin")
    rows = api.query("SELECT Id, Name FROM AssignmentRule WHERE SobjectType = 'Lead' AND Active = true")
    assert [(r["Id"], r["Name"]) for r in rows["records"]] == [(rule.id, "Round robin")]


# ------------------------------------------------------------------ duplicate rules

def _twin(emu):
    return emu.org.insert("Lead", {"LastName": "Kim", "Company": "Acme", "Email": "kim@example.com"})


def test_alert_rule_blocks_api_saves_in_collections(emu, api):
    first = _twin(emu)
    emu.org.add_duplicate_rule("Lead")
    res = api.create([{**LEAD, "Email": "KIM@example.com"}, {**LEAD, "Email": "other@example.com"}])
    # Collections per-record error: no id, statusCode, no match details
    assert res[0] == {"id": None, "success": False, "errors": [
        {"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": []}]}
    assert res[1]["success"]
    assert [r["Id"] for r in emu.org.records("Lead") if r["Email"].lower() == "kim@example.com"] == [first]


def test_allow_save_header_passes_alert_rules_not_block_rules(emu, api):
    _twin(emu)
    emu.org.add_duplicate_rule("Lead")
    api.session.headers["Sforce-Duplicate-Rule-Header"] = "allowSave=true; includeRecordDetails=false"
    assert api.create([{**LEAD, "Email": "kim@example.com"}])[0]["success"]
    emu.org.add_duplicate_rule("Lead", action="block", developer_name="Strict_Lead_Rule")
    res = api.create([{**LEAD, "Email": "kim@example.com"}])
    assert codes(res[0]) == ["DUPLICATES_DETECTED"]


def test_single_record_duplicate_body_spells_duplicate_resut(emu, api):
    first = _twin(emu)
    emu.org.add_duplicate_rule("Lead")
    r = api.post("sobjects/Lead", json={"LastName": "Kim", "Company": "Acme", "Email": "kim@example.com"})
    assert r.status_code == 400
    body = r.json()
    # v50-v54 captures: [{"duplicateResut": {...}, "errorCode": "DUPLICATES_DETECTED", "message": ...}], no fields
    assert list(body[0]) == ["duplicateResut", "errorCode", "message"]
    assert body[0]["errorCode"] == "DUPLICATES_DETECTED"
    detail = body[0]["duplicateResut"]
    assert list(detail) == ["allowSave", "duplicateRule", "duplicateRuleEntityType", "errorMessage",
                            "matchResults"]
    assert detail["duplicateRule"] == "Standard_Lead_Duplicate_Rule" and detail["allowSave"] is True
    assert detail["errorMessage"] == body[0]["message"] == "Use one of these records?"
    match = detail["matchResults"][0]
    assert match["size"] == 1 and match["success"] is True
    assert match["matchRecords"][0]["record"] == {
        "attributes": {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/{first}"}, "Id": first}


def test_collection_rows_can_carry_either_spelling(emu, api):
    first = _twin(emu)
    emu.org.add_duplicate_rule("Lead", collection_detail="duplicateResult")
    row = api.create([{**LEAD, "Email": "kim@example.com"}])[0]["errors"][0]
    ids = [m["record"]["Id"] for m in row["duplicateResult"]["matchResults"][0]["matchRecords"]]
    assert ids == [first]


def test_duplicate_rules_are_queryable_and_apply_to_api_requests_only(emu, api):
    _twin(emu)
    rule = emu.org.add_duplicate_rule("Contact")
    emu.org.add_duplicate_rule("Lead")
    rows = api.query("SELECT Id, DeveloperName, SobjectType FROM DuplicateRule WHERE IsActive = true "
                     "ORDER BY DeveloperName")["records"]
    assert [(r["DeveloperName"], r["SobjectType"]) for r in rows] == [
        ("Standard_Contact_Duplicate_Rule", "Contact"), ("Standard_Lead_Duplicate_Rule", "Lead")]
    assert rows[0]["Id"] == rule.id
    _twin(emu)  # seeding data directly runs no automation
    res = api.create([{"attributes": {"type": "DuplicateRule"}, "DeveloperName": "X"}])
    assert not res[0]["success"]  # setup objects are read-only over the API


# ------------------------------------------------------------------ deleted parents

def test_member_of_a_deleted_campaign_is_entity_is_deleted_with_empty_fields(emu, api):
    campaign = emu.org.insert("Campaign", {"Name": "Summit"})
    contact = emu.org.insert("Contact", {"LastName": "C"})
    emu.org.delete(campaign)
    res = api.create([{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign,
                       "ContactId": contact}])
    assert res[0] == {"id": None, "success": False, "errors": [
        {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}
    r = api.post("sobjects/CampaignMember", json={"CampaignId": campaign, "ContactId": contact})
    # whole-request form as recorded (delete-already-deleted.json): fields present and empty
    assert r.status_code == 400
    assert r.json() == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}]


# ------------------------------------------------------------------ campaign member statuses

def test_status_sort_order_is_unique_per_campaign(emu, api):
    campaign = emu.org.insert("Campaign", {"Name": "Summit"})  # gets Sent = 1, Responded = 2
    other = emu.org.insert("Campaign", {"Name": "Other"})

    def status(cid, label, order):
        return {"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": cid, "Label": label,
                "SortOrder": order}

    res = api.create([status(campaign, "Registered", 2), status(campaign, "Attended", 3),
                      status(other, "Registered", 3)])
    assert res[0]["errors"] == [{"statusCode": "DUPLICATE_VALUE", "message": (
        "duplicate value found: <unknown> duplicates value on record with id: <unknown>"), "fields": []}]
    assert res[1]["success"] and res[2]["success"]
    dup_label = api.create([status(campaign, "sent", 9)])[0]
    assert codes(dup_label) == ["DUPLICATE_VALUE"]  # the same answer: the caller must read statuses


def test_member_status_holds_40_characters(emu, api):
    campaign = emu.org.insert("Campaign", {"Name": "Summit"})
    long_label = "Attended the keynote and two workshops!!"  + "x"
    assert len(long_label) == 41
    # CampaignMemberStatus.Label allows 765, CampaignMember.Status only 40
    # (Object Reference, CampaignMemberStatus and CampaignMember)
    emu.org.insert("CampaignMemberStatus", {"CampaignId": campaign, "Label": long_label})
    contact = emu.org.insert("Contact", {"LastName": "C"})
    res = api.create([{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign,
                       "ContactId": contact, "Status": long_label}])
    assert codes(res[0]) == ["STRING_TOO_LONG"] and res[0]["errors"][0]["fields"] == ["Status"]


# ------------------------------------------------------------------ restricted LeadSource

def test_default_org_has_jomablue_in_a_restricted_lead_source(emu, api):
    assert api.create([{**LEAD, "LeadSource": "Jomablue"}])[0]["success"]
    res = api.create([{**LEAD, "LeadSource": "Carrier pigeon"}])
    assert codes(res[0]) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    field = next(f for f in api.get("sobjects/Lead/describe").json()["fields"] if f["name"] == "LeadSource")
    assert field["restrictedPicklist"] is True
    assert "Jomablue" in [v["value"] for v in field["picklistValues"]]


def test_org_without_the_admin_step_refuses_jomablue(emu, api):
    emu.org = Org(lead_sources=["Web", "Other"])
    r = api.post("sobjects/Lead", json={"LastName": "Kim", "Company": "Acme", "LeadSource": "Jomablue"})
    # create-invalid-picklist-value.json: label-prefixed message, API name in fields
    assert r.status_code == 400
    assert r.json() == [{"message": "Lead Source: bad value for restricted picklist field: Jomablue",
                         "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["LeadSource"]}]
    contact = api.create([{"attributes": {"type": "Contact"}, "LastName": "C", "LeadSource": "Jomablue"}])
    assert codes(contact[0]) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]


# ------------------------------------------------------------------ field names, metadata

def test_field_names_are_case_insensitive(emu, api):
    res = api.create([{"attributes": {"type": "lead"}, "lastname": "Kim", "COMPANY": "Acme",
                       "email": "kim@example.com", "jomablue_id__c": "acme/1"}])
    assert res[0]["success"]
    rows = api.query("select lastname, EMAIL from LEAD where Jomablue_ID__C = 'acme/1'")["records"]
    assert rows[0]["LastName"] == "Kim" and rows[0]["Email"] == "kim@example.com"
    r = api.patch("sobjects/Lead/JOMABLUE_ID__C/acme%2F1", json={"title": "CEO"})
    assert r.status_code == 200 and emu.org.get(res[0]["id"])["Title"] == "CEO"


def test_standard_fields_every_org_has(emu, api):
    res = api.create([{**LEAD, "Description": "met at the booth", "MobilePhone": "+61 400 000 000"}])
    assert res[0]["success"]


def test_fields_come_from_the_deployed_metadata(emu, api, tmp_path):
    fields = tmp_path / "force-app" / "main" / "default" / "objects" / "Lead" / "fields"
    fields.mkdir(parents=True)
    (fields / "Badge_Name__c.field-meta.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "    <fullName>Badge_Name__c</fullName>\n    <label>Badge Name</label>\n"
        "    <length>32</length>\n    <type>Text</type>\n</CustomField>\n", encoding="utf-8")
    (fields / "Tier__c.field-meta.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "    <fullName>Tier__c</fullName>\n    <type>Picklist</type>\n    <valueSet>\n"
        "        <restricted>true</restricted>\n        <valueSetDefinition>\n"
        "            <value><fullName>Gold</fullName><default>false</default><label>Gold</label></value>\n"
        "        </valueSetDefinition>\n    </valueSet>\n</CustomField>\n", encoding="utf-8")
    assert "Badge_Name__c" not in emu.org.field_names("Lead")  # not deployed to the default org
    emu.org = Org(metadata_dir=tmp_path)
    meta = {f["name"]: f for f in api.get("sobjects/Lead/describe").json()["fields"]}
    assert meta["Badge_Name__c"]["length"] == 32 and meta["Badge_Name__c"]["custom"] is True
    assert meta["Tier__c"]["restrictedPicklist"] is True
    ok, too_long, bad_tier = api.create([{**LEAD, "Badge_Name__c": "Kim", "Tier__c": "Gold"},
                                         {**LEAD, "Badge_Name__c": "x" * 33},
                                         {**LEAD, "Tier__c": "Tin"}])
    assert ok["success"]
    assert codes(too_long) == ["STRING_TOO_LONG"]
    assert codes(bad_tier) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]


def test_the_projects_metadata_folder_is_loaded_by_default(emu):
    from connector_devkit.emulator.orgschema import PROJECT_METADATA, build_objects

    assert PROJECT_METADATA.is_dir()
    bare = build_objects(metadata_dir=False)
    loaded = build_objects()
    assert loaded["Lead"]["fields"].keys() >= bare["Lead"]["fields"].keys()


# ------------------------------------------------------------------ permission set (doctor)

def test_permission_set_assignment_is_queryable(emu, api):
    ps = api.query("SELECT Id, Name FROM PermissionSet WHERE Name = 'Jomablue_Connector'")["records"]
    assert len(ps) == 1
    rows = api.query(f"SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{emu.org.user_id}' "
                     f"AND PermissionSetId = '{ps[0]['Id']}'")
    assert rows["totalSize"] == 1
    emu.org = Org(permission_set_assigned=False)
    assert api.query("SELECT Id FROM PermissionSetAssignment")["totalSize"] == 0
