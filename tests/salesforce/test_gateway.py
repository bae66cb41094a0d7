"""Narrow tests of the Salesforce adapter with `responses`: one limiter, one budget guard,
failures classified once at the edge, locked rows retried alone, composite queries."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
import responses
from pydantic import SecretStr

from connector.config import AuthConfig
from connector.errors import BudgetExhausted, FatalError, SalesforceUnavailable
from connector.salesforce.auth import TokenSource
from connector.salesforce.gateway import PinnedSession, SalesforceGateway, UsageGuard

BASE = "https://acme.my.salesforce.com"
API = f"{BASE}/services/data/v62.0"
TOKEN_URL = f"{BASE}/services/oauth2/token"


def gateway(method: str = "client_credentials", budget: float = 0.8, attempts: int = 3) -> SalesforceGateway:
    if method == "access_token":
        auth = AuthConfig(method="access_token", access_token=SecretStr("tok-static"))
    else:
        auth = AuthConfig(method="client_credentials", login_url=BASE, client_id="cid", client_secret=SecretStr("sec"))
    session = requests.Session()
    return SalesforceGateway(
        instance_url=BASE, api_version="62.0", tokens=TokenSource(auth, session), session=session,
        requests_per_second=1000, max_in_flight=2, guard=UsageGuard(budget), retry_attempts=attempts,
        retry_max_wait=0.01, retry_base_wait=0.001)


def token(rsps: responses.RequestsMock, value: str = "tok-1") -> None:
    rsps.post(TOKEN_URL, json={"access_token": value, "instance_url": BASE, "token_type": "Bearer"})


def usage(used: int, max_: int = 100_000) -> dict[str, str]:
    return {"Sforce-Limit-Info": f"api-usage={used}/{max_}"}


@responses.activate
def test_503s_are_retried_and_usage_is_read_from_every_response():
    token(responses)
    responses.get(f"{API}/limits/", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
    responses.get(f"{API}/limits/", status=200, json={"DailyApiRequests": {"Max": 100_000, "Remaining": 90_000}},
                  headers=usage(10_000))
    gw = gateway()
    asyncio.run(gw.limits())
    assert (gw.guard.used, gw.guard.max) == (10_000, 100_000)
    assert gw.stats.retries == 1


@responses.activate
def test_a_storm_longer_than_the_retries_stops_the_run_not_the_process():
    token(responses)
    for _ in range(3):
        responses.get(f"{API}/limits/", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
    with pytest.raises(SalesforceUnavailable, match="after 3 attempts"):
        asyncio.run(gateway().limits())


@responses.activate
def test_daily_limit_403_is_a_budget_stop_and_concurrency_403_is_retried():
    token(responses)
    responses.get(f"{API}/limits/", status=403, json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                                        "message": "ConcurrentPerOrgLongTxn Limit exceeded"}])
    responses.get(f"{API}/limits/", status=403, json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                                        "message": "TotalRequests Limit exceeded."}])
    with pytest.raises(BudgetExhausted, match="daily API limit"):
        asyncio.run(gateway().limits())
    assert len([c for c in responses.calls if "/limits" in c.request.url]) == 2


@responses.activate
def test_budget_guard_refuses_calls_once_usage_reaches_the_fraction():
    token(responses)
    responses.get(f"{API}/limits/", json={}, headers=usage(80_000))
    gw = gateway(budget=0.8)
    asyncio.run(gw.limits())
    with pytest.raises(BudgetExhausted, match="80000/100000"):
        asyncio.run(gw.limits())
    assert len([c for c in responses.calls if "/limits" in c.request.url]) == 1


@responses.activate
def test_expired_session_fetches_a_new_token_with_client_credentials():
    token(responses, "tok-1")
    token(responses, "tok-2")
    responses.get(f"{API}/limits/", status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "expired"}])
    responses.get(f"{API}/limits/", json={}, headers=usage(5))
    gw = gateway()
    asyncio.run(gw.limits())
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer tok-2"


@responses.activate
def test_expired_static_access_token_stops_the_run_with_messages_kept():
    responses.get(f"{API}/limits/", status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "expired"}])
    with pytest.raises(SalesforceUnavailable, match="cannot renew"):
        asyncio.run(gateway("access_token").limits())


@responses.activate
def test_a_malformed_request_is_fatal_and_names_the_code():
    token(responses)
    responses.get(f"{API}/query/", status=400,
                  json=[{"errorCode": "INVALID_FIELD", "message": "No such column 'Nope'"}])
    with pytest.raises(FatalError, match="INVALID_FIELD"):
        asyncio.run(gateway().query("SELECT Nope FROM Lead"))


@responses.activate
def test_locked_rows_are_retried_alone_and_results_keep_their_order():
    token(responses)
    url = f"{API}/composite/sobjects/Lead/Jomablue_Id__c"
    responses.patch(url, json=[
        {"id": "00Q000000000001AAA", "success": True, "created": True, "errors": []},
        {"id": None, "success": False,
         "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "lock", "fields": []}]},
        {"id": None, "success": False, "errors": [{"statusCode": "STRING_TOO_LONG", "message": "too long",
                                                   "fields": ["Company"]}]},
    ])
    responses.patch(url, json=[{"id": "00Q000000000002AAA", "success": True, "created": True, "errors": []}])
    records = [{"Jomablue_Id__c": f"acme/event_person/{n}", "LastName": "x"} for n in range(3)]
    results = asyncio.run(gateway().upsert("Lead", "Jomablue_Id__c", records))
    assert [r.ok for r in results] == [True, True, False]
    assert results[1].id == "00Q000000000002AAA"
    assert (results[2].code, results[2].fields) == ("STRING_TOO_LONG", ("Company",))
    second = json.loads(responses.calls[-1].request.body)
    assert [r["Jomablue_Id__c"] for r in second["records"]] == ["acme/event_person/1"]
    assert second["allOrNone"] is False and second["records"][0]["attributes"] == {"type": "Lead"}


@responses.activate
def test_more_than_200_records_go_in_chunks_of_200_five_chunks_to_one_composite_call():
    token(responses)

    def answer(request):
        subs = json.loads(request.body)["compositeRequest"]
        assert all(s["url"].endswith("/composite/sobjects/Lead/Jomablue_Id__c") and s["method"] == "PATCH"
                   for s in subs)
        return 200, {}, json.dumps({"compositeResponse": [
            {"referenceId": s["referenceId"], "httpStatusCode": 200, "httpHeaders": {},
             "body": [{"id": None, "success": True, "created": True, "errors": []}] * len(s["body"]["records"])}
            for s in subs]})

    responses.add_callback(responses.POST, f"{API}/composite", callback=answer)
    records = [{"Jomablue_Id__c": f"p/{n}", "LastName": "x"} for n in range(1250)]
    results = asyncio.run(gateway().upsert("Lead", "Jomablue_Id__c", records))
    assert len(results) == 1250 and all(r.ok for r in results)
    calls = [json.loads(c.request.body) for c in responses.calls if c.request.url.endswith("/composite")]
    assert sorted([len(s["body"]["records"]) for s in c["compositeRequest"]] for c in calls) == [[200, 50], [200] * 5]


@responses.activate
def test_queries_travel_five_to_a_composite_call():
    token(responses)
    seen = []

    def answer(request):
        body = json.loads(request.body)
        seen.append(len(body["compositeRequest"]))
        return 200, usage(7), json.dumps({"compositeResponse": [
            {"body": {"totalSize": 1, "done": True, "records": [{"attributes": {}, "Id": sub["referenceId"]}]},
             "httpHeaders": {}, "httpStatusCode": 200, "referenceId": sub["referenceId"]}
            for sub in body["compositeRequest"]]})

    responses.add_callback(responses.POST, f"{API}/composite", callback=answer)
    gw = gateway()
    out = asyncio.run(gw.query_many([f"SELECT Id FROM Lead WHERE Email = 'p{n}@x.com'" for n in range(7)]))
    assert sorted(seen) == [2, 5]          # the two calls go at once: either may arrive first
    assert [r[0]["Id"] for r in out] == ["q0", "q1", "q2", "q3", "q4", "q0", "q1"]
    assert gw.stats.calls == 2 and gw.guard.used == 7


def test_the_configured_ca_bundle_wins_over_requests_ca_bundle(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/some-proxy.pem")
    session = PinnedSession(str(tmp_path / "ca.pem"))
    settings = session.merge_environment_settings("https://x", {}, None, None, None)
    assert settings["verify"] == str(tmp_path / "ca.pem")


def test_token_repr_never_shows_the_token():
    from connector.salesforce.auth import Token

    assert "sekrit" not in repr(Token("sekrit", BASE))


def test_a_duplicate_rule_names_the_records_it_matched():
    from connector.salesforce.results import RowResult

    r = RowResult.from_json({"id": None, "success": False, "errors": [{
        "statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": [],
        "duplicateResult": {"allowSave": False, "duplicateRule": "Standard_Lead_Duplicate_Rule",
                            "matchResults": [{"entityType": "Lead", "matchRecords": [
                                {"record": {"Id": "00Q000000000001AAA"}},
                                {"record": {"Id": "00Q000000000002AAA"}}]}]}}]})
    assert r.code == "DUPLICATES_DETECTED"
    assert r.message == "Use one of these records? (matches 00Q000000000001AAA, 00Q000000000002AAA)"
