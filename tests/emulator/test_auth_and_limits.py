"""OAuth token endpoint, bearer auth, call counting, Sforce-Limit-Info and the daily limit."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
import requests
from simple_salesforce.exceptions import SalesforceRefusedRequest


def token_request(emu, **kw):
    return requests.post(f"{emu.url}/services/oauth2/token", verify=emu.ca_path, **kw)


def test_client_credentials_via_form_fields(emu, make_api):
    r = token_request(emu, data={"grant_type": "client_credentials",
                                 "client_id": emu.client_id, "client_secret": emu.client_secret})
    assert r.status_code == 200
    body = r.json()
    assert body["instance_url"] == emu.url
    assert body["token_type"] == "Bearer" and body["scope"] == "api"
    assert "/id/00D" in body["id"] and "/005" in body["id"]
    assert body["issued_at"].isdigit()
    assert make_api(body["access_token"]).get("limits").status_code == 200


def test_client_credentials_via_basic_auth(emu, make_api):
    basic = base64.b64encode(f"{emu.client_id}:{emu.client_secret}".encode()).decode()
    r = token_request(emu, data={"grant_type": "client_credentials"},
                      headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200
    assert make_api(r.json()["access_token"]).get("limits").status_code == 200


@pytest.mark.parametrize("client_id,secret", [("emulator-client", "wrong"), ("other", "emulator-secret")])
def test_bad_client_credentials(emu, client_id, secret):
    r = token_request(emu, data={"grant_type": "client_credentials", "client_id": client_id,
                                 "client_secret": secret})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}


def _jwt(claims):
    return jwt.encode(claims, "any-key-the-emulator-does-not-verify", algorithm="HS256")


def test_jwt_bearer(emu, make_api):
    good = _jwt({"iss": emu.client_id, "sub": "integration@example.com",
                 "aud": "https://login.salesforce.com", "exp": int(time.time()) + 180})
    r = token_request(emu, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                 "assertion": good})
    assert r.status_code == 200
    assert make_api(r.json()["access_token"]).get("limits").status_code == 200


@pytest.mark.parametrize("claims,error", [
    ({"iss": "someone-else", "sub": "u", "exp": 4102444800}, "invalid_client"),
    ({"iss": "emulator-client", "sub": "u", "exp": 1000}, "invalid_grant"),
    ({"iss": "emulator-client", "exp": 4102444800}, "invalid_grant"),
])
def test_jwt_rejected(emu, claims, error):
    r = token_request(emu, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                 "assertion": _jwt(claims)})
    assert r.status_code == 400
    assert r.json()["error"] == error


def test_unsupported_grant(emu):
    r = token_request(emu, data={"grant_type": "password", "username": "u", "password": "p"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc"])
def test_api_requires_a_valid_token_and_401s_are_not_counted(emu, header):
    headers = {"Authorization": header} if header else {}
    r = requests.get(f"{emu.url}/services/data/v62.0/limits", headers=headers, verify=emu.ca_path)
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert "Sforce-Limit-Info" not in r.headers
    assert emu.api_calls == 0


def test_version_list_needs_no_auth_and_is_not_counted(emu):
    r = requests.get(f"{emu.url}/services/data/", verify=emu.ca_path)
    assert r.status_code == 200
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in r.json()
    assert "Sforce-Limit-Info" not in r.headers
    assert emu.api_calls == 0 and emu.org.api_used == 0


def test_token_endpoint_is_not_counted(emu, new_token):
    new_token()
    assert emu.api_calls == 0


def test_every_api_call_is_counted_with_limit_header(emu, api):
    emu.org.set_api_usage(41, 500)
    r = api.get("limits/")
    assert r.headers["Sforce-Limit-Info"] == "api-usage=42/500"
    assert r.json()["DailyApiRequests"] == {"Max": 500, "Remaining": 458}
    api.query("SELECT Id FROM Lead")
    api.upsert("Lead", "Jomablue_Id__c", [{"LastName": "A", "Company": "B", "Jomablue_Id__c": "x"}])
    api.create([{"attributes": {"type": "Account"}, "Name": "Acme"}])
    r = api.get("sobjects/Lead/describe")
    assert r.headers["Sforce-Limit-Info"] == "api-usage=46/500"
    assert emu.api_calls == 5
    assert emu.calls_by_kind == {"limits": 1, "query": 1, "collections_upsert": 1,
                                 "collections_create": 1, "describe": 1}
    emu.reset_counters()
    assert emu.api_calls == 0 and not emu.calls_by_kind


def test_simple_salesforce_sees_usage(emu, sf):
    emu.org.set_api_usage(used=10, max=1000)
    sf.query("SELECT Id FROM Lead")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (11, 1000)


def test_daily_limit_returns_403_and_is_not_counted(emu, api, sf):
    emu.org.set_api_usage(0, 2)
    assert api.get("limits").status_code == 200
    assert api.get("limits").status_code == 200
    r = api.get("query", params={"q": "SELECT Id FROM Lead"})
    assert r.status_code == 403
    assert r.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert emu.api_calls == 2 and emu.org.api_used == 2
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Lead")
    emu.org.set_api_usage(0, 2)
    assert api.get("limits").status_code == 200


def test_trailing_slash_optional_and_unknown_paths(api):
    assert api.get("sobjects/Lead/describe/").status_code == 200
    assert api.get("sobjects/Lead/describe").status_code == 200
    r = api.get("no/such/thing")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
