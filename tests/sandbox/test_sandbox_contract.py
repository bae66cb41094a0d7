"""The contract between the connector and a real org, run against the emulator and, when
SF_SANDBOX_* name one, a Salesforce sandbox (conftest.py). Each check is a fact the connector
relies on (Salesforce documentation and the recorded shapes cited in
connector_devkit/emulator/*.py): if a sandbox disagrees, the emulator and the
connector are wrong, not the sandbox.

    pytest -m sandbox -ra tests/sandbox        # the sandbox half only; skips say why
"""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
import requests
from jbtest import SAMPLES, Aws, cli

from connector.mapping import load_mapping_set
from connector.preflight import check_mapping, fetch_describes, mapped_objects


def test_login_and_api_version(target):
    versions = requests.get(f"{target.instance_url}/services/data/", timeout=60,
                            verify=target.session.verify).json()
    assert target.config.api_version in [v["version"] for v in versions]
    assert target.user_id and target.user_id.startswith("005")


def test_the_default_mapping_fits_the_org(target):
    """What preflight checks before every run: the deployed metadata, LeadSource's Jomablue."""
    ms = load_mapping_set(None)
    describes = asyncio.run(fetch_describes(target.gateway(), mapped_objects(ms)))
    errors = [str(p) for p in check_mapping(ms, describes) if p.severity == "error"]
    assert errors == []


def test_fields_to_null_is_not_a_rest_field(target):
    r = target.request("POST", "sobjects/Lead", json={"LastName": "Contract", "Company": "CT",
                                                      "Jomablue_Id__c": target.jid("ep"), "fieldsToNull": ["Title"]})
    assert r.status_code == 400
    assert r.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "fieldsToNull" in r.json()[0]["message"]


def test_a_uri_over_16384_bytes_is_refused_with_html(target):
    r = target.request("GET", "query", params={"q": "SELECT Id FROM Lead WHERE LastName = '" + "x" * 17_000 + "'"})
    assert r.status_code in (414, 431)
    assert not r.headers.get("Content-Type", "").startswith("application/json")


def test_the_largest_lookup_statement_travels_in_a_composite_body(target):
    """One lookup query carries 500 people (issue 18): 500 Jomablue ids and 500 emails, about
    30,000 characters, too long for a URL (16,384 bytes) and within SOQL's 100,000 in a /composite
    body (Salesforce Help 000386264)."""
    from connector.salesforce.soql import MAX_IN_LIST
    from connector.sync.identity import lookup_queries

    [soql] = lookup_queries("Lead", {"Id", "Email", "Jomablue_Id__c"}, [],
                            [target.jid(f"lookup-{n}") for n in range(MAX_IN_LIST)],
                            [f"contract.{n}@example.com" for n in range(MAX_IN_LIST)])
    assert 16_384 < len(requests.compat.urlencode({"q": soql})) and len(soql) < 100_000
    body = {"compositeRequest": [{"method": "GET", "referenceId": "lookup", "url":
                                  f"/services/data/v{target.config.api_version}/query/?" +
                                  requests.compat.urlencode({"q": soql})}]}
    r = target.request("POST", "composite", json=body)
    sub = r.json()["compositeResponse"][0]
    assert sub["httpStatusCode"] == 200 and sub["body"]["done"] is True, sub


def test_soql_over_100000_characters_is_malformed(target):
    soql = "SELECT Id FROM Lead WHERE LastName IN (" + ",".join(["'abcdefgh'"] * 10_000) + ")"
    body = {"compositeRequest": [{"method": "GET", "referenceId": "big", "url":
                                  f"/services/data/v{target.config.api_version}/query/?" +
                                  requests.compat.urlencode({"q": soql})}]}
    r = target.request("POST", "composite", json=body)
    sub = r.json()["compositeResponse"][0]
    assert sub["httpStatusCode"] == 400 and sub["body"][0]["errorCode"] == "MALFORMED_QUERY"


def test_auto_assign_false_keeps_the_integration_user_as_owner(target):
    gw = target.gateway()  # lead_assignment_rules: keep (the default)
    [row] = asyncio.run(gw.upsert("Lead", "Jomablue_Id__c", [
        {"LastName": "Contract", "Company": "CT", "Jomablue_Id__c": target.jid("ep", "owner")}]))
    assert row.ok, row
    target.created.append(row.id)
    [lead] = target.query(f"SELECT OwnerId FROM Lead WHERE Id = '{row.id}'")
    assert lead["OwnerId"] == target.user_id


def test_a_member_of_a_deleted_campaign(target):
    [campaign, contact] = target.create([
        {"attributes": {"type": "Campaign"}, "Name": f"CT {target.run_id}", "Jomablue_Id__c": target.jid("event")},
        {"attributes": {"type": "Contact"}, "LastName": "Contract", "Jomablue_Id__c": target.jid("ep", "c")}])
    assert campaign["success"] and contact["success"]
    r = target.request("DELETE", f"sobjects/Campaign/{campaign['id']}")
    assert r.status_code == 204
    [member] = target.create([{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign["id"],
                               "ContactId": contact["id"]}])
    assert not member["success"]
    # the engine must heal on this answer (not only on INVALID_CROSS_REFERENCE_KEY naming CampaignId)
    assert member["errors"][0]["statusCode"] in ("ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY")
    if target.name == "emulator":
        assert member["errors"][0] == {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                                       "fields": []}


def test_campaign_member_status_sort_order_is_unique(target):
    [campaign] = target.create([{"attributes": {"type": "Campaign"}, "Name": f"CT {target.run_id}",
                                 "Jomablue_Id__c": target.jid("event", "s")}])
    rows = target.query(f"SELECT Label, SortOrder FROM CampaignMemberStatus WHERE CampaignId = '{campaign['id']}' "
                        "ORDER BY SortOrder")
    orders = [r["SortOrder"] for r in rows]
    assert orders and len(set(orders)) == len(orders)
    [clash, fresh] = target.create([
        {"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": campaign["id"], "Label": "CT Registered",
         "SortOrder": orders[0]},
        {"attributes": {"type": "CampaignMemberStatus"}, "CampaignId": campaign["id"], "Label": "CT Attended",
         "SortOrder": max(orders) + 1, "HasResponded": True}])
    assert not clash["success"] and clash["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert fresh["success"]


def test_a_restricted_lead_source_refuses_unknown_values(target):
    meta = {f["name"]: f for f in target.request("GET", "sobjects/Lead/describe").json()["fields"]}
    if not meta["LeadSource"]["restrictedPicklist"]:
        pytest.skip("LeadSource is not restricted in this org")
    [res] = target.create([{"attributes": {"type": "Lead"}, "LastName": "Contract", "Company": "CT",
                            "LeadSource": "Not a source " + target.run_id}])
    assert res["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert res["errors"][0]["fields"] == ["LeadSource"]
    assert "Jomablue" in [v["value"] for v in meta["LeadSource"]["picklistValues"]]


def _unique(target, payload):
    """A sample with this run's ids and no ids of other orgs (organisation_uid, sf_campaign_id)."""
    text = json.dumps(payload).replace("acme/", f"ct{target.run_id}/")
    doc = json.loads(text)
    doc.get("identifiers", {}).pop("organisation_uid", None)
    for metadata in (doc.get("context", {}).get("event_metadata"), doc.get("data", {}).get("metadata")):
        if isinstance(metadata, dict):
            metadata.pop("sf_campaign_id", None)
    if "email" in doc.get("identifiers", {}):
        doc["identifiers"]["email"] = f"ct{target.run_id}@example.com"
    return doc


def test_the_connector_end_to_end(target, tmp_path, moto_endpoint):
    aws = Aws(moto_endpoint)
    aws.publish(_unique(target, copy.deepcopy(SAMPLES["event"])))
    aws.publish(_unique(target, copy.deepcopy(SAMPLES["person"])))
    cfg = target.write_config(tmp_path, aws.queue_url, aws.endpoint)
    res = cli("doctor", "--config", str(cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert aws.depth() == 0
    [campaign] = target.query(f"SELECT Id FROM Campaign WHERE Jomablue_Id__c = '{target.jid('event', 521)}'")
    jid = target.jid("event_person", 48213)
    leads = target.query(f"SELECT Id, LeadSource FROM Lead WHERE Jomablue_Id__c = '{jid}'")
    assert [lead["LeadSource"] for lead in leads] == ["Jomablue"]
    members = target.query(f"SELECT Status FROM CampaignMember WHERE CampaignId = '{campaign['Id']}'")
    assert [m["Status"] for m in members] == ["Attended"]
