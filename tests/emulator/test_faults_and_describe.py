"""Fault injection (outages, row locks, expired sessions, latency) and describe shapes."""

from __future__ import annotations

import time

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError


def lead(ext):
    return {"LastName": "L", "Company": "C", "Jomablue_Id__c": ext}


def test_fail_next_fails_exactly_n_requests_and_they_count(emu, api, sf):
    emu.faults.fail_next(2)
    for _ in range(2):
        r = api.get("limits")
        assert r.status_code == 503
        assert r.json()[0]["errorCode"] == "SERVER_UNAVAILABLE" and r.json()[0]["message"]
        assert "Sforce-Limit-Info" in r.headers
    assert api.get("limits").status_code == 200
    assert emu.api_calls == 3
    emu.faults.fail_next(1, status=500, error_code="UNKNOWN_EXCEPTION")
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Lead")
    assert exc.value.status == 500 and exc.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_fail_rate_is_deterministic_with_seed(emu, api):
    def pattern():
        emu.faults.fail_rate(0.5, seed=7)
        return [api.get("limits").status_code for _ in range(20)]
    first = pattern()
    assert first == pattern()
    assert 503 in first and 200 in first
    emu.faults.fail_rate(0)
    assert all(api.get("limits").status_code == 200 for _ in range(5))


def test_lock_rows_fails_only_some_rows(emu, api):
    emu.faults.lock_rows(2, sobject="Lead")
    campaign = api.create([{"attributes": {"type": "Campaign"}, "Name": "Not a Lead"}])
    assert campaign[0]["success"]  # other objects unaffected
    res = api.upsert("Lead", "Jomablue_Id__c", [lead("a"), lead("b"), lead("c")])
    assert [r["success"] for r in res] == [False, False, True]
    assert res[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Lead")] == ["c"]
    retry = api.upsert("Lead", "Jomablue_Id__c", [lead("a"), lead("b")])
    assert all(r["success"] and r["created"] for r in retry)


def test_expire_tokens(emu, api, new_token, make_api, sf):
    assert api.get("limits").status_code == 200
    emu.faults.expire_tokens()
    r = api.get("limits")
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")
    assert make_api(new_token()).get("limits").status_code == 200
    assert emu.api_calls == 2


def test_latency_is_added_to_every_api_call_until_cleared(emu, api, monkeypatch):
    """What the server sleeps, recorded rather than timed (a wall-clock bound fails on a busy machine)."""
    from connector_devkit.emulator import server

    slept: list[float] = []

    class RecordingTime:
        def __getattr__(self, name):
            return getattr(time, name)

        def sleep(self, seconds: float) -> None:
            slept.append(seconds)

    monkeypatch.setattr(server, "time", RecordingTime())
    emu.faults.latency_ms = 150
    assert api.get("limits").status_code == 200
    assert api.get("sobjects").status_code == 200
    assert slept == [0.15, 0.15]
    emu.faults.clear()
    assert api.get("limits").status_code == 200
    assert slept == [0.15, 0.15]


def test_global_describe(api):
    body = api.get("sobjects").json()
    assert body["encoding"] == "UTF-8" and body["maxBatchSize"] == 200
    by_name = {o["name"]: o for o in body["sobjects"]}
    assert by_name["Lead"]["keyPrefix"] == "00Q" and by_name["CampaignMember"]["keyPrefix"] == "00v"
    capture = by_name["Jomablue_Lead_Capture__c"]
    assert capture["custom"] is True
    assert {"name", "label", "keyPrefix", "custom", "createable", "updateable", "queryable"} <= set(capture)


def test_object_describe(api, sf):
    body = api.get("sobjects/Lead/describe/").json()
    assert body["name"] == "Lead" and body["keyPrefix"] == "00Q" and body["custom"] is False
    fields = {f["name"]: f for f in body["fields"]}
    ext = fields["Jomablue_Id__c"]
    assert (ext["externalId"], ext["unique"], ext["caseSensitive"], ext["custom"], ext["length"]) == (
        True, True, True, True, 255)
    assert fields["LastName"]["nillable"] is False and fields["Email"]["type"] == "email"
    assert fields["IsConverted"]["createable"] is False and fields["IsConverted"]["defaultedOnCreate"]
    status = fields["Status"]
    assert status["restrictedPicklist"] is True
    assert {"value": "Open - Not Contacted", "label": "Open - Not Contacted", "active": True,
            "defaultValue": True} .items() <= status["picklistValues"][0].items()
    assert fields["ConvertedContactId"]["referenceTo"] == ["Contact"]
    assert sf.Campaign.describe()["fields"]


def test_unknown_object_describe_is_404(api):
    r = api.get("sobjects/Opportunity/describe")
    assert r.status_code == 404
    assert r.json() == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
