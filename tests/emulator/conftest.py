"""Fixtures: one emulator per test module (fast), a fresh org per test, authenticated clients."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce

from connector.emulator import Emulator
from connector.emulator.faults import Faults
from connector.emulator.org import Org


@pytest.fixture(autouse=True)
def _no_env_ca_bundle(monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def server():
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(server):
    """The module's emulator with a brand-new org, no faults and zeroed counters."""
    server.org = Org(daily_limit=100_000)
    server.faults = Faults()
    server.reset_counters()
    return server


def get_token(emu) -> str:
    r = requests.post(f"{emu.url}/services/oauth2/token", verify=emu.ca_path,
                      data={"grant_type": "client_credentials", "client_id": emu.client_id,
                            "client_secret": emu.client_secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


class Api:
    """A tiny REST client bound to one token: api.get("query", params=...)."""

    def __init__(self, emu, token):
        self.emu = emu
        self.base = f"{emu.url}/services/data/v62.0/"
        self.session = requests.Session()
        self.session.verify = emu.ca_path
        self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, **kw):
        return self.session.request(method, self.base + path, verify=self.emu.ca_path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def query(self, soql):
        r = self.get("query", params={"q": soql})
        assert r.status_code == 200, r.text
        return r.json()

    def upsert(self, sobject, ext, records, all_or_none=False):
        body = {"allOrNone": all_or_none,
                "records": [{"attributes": {"type": sobject}, **r} for r in records]}
        r = self.patch(f"composite/sobjects/{sobject}/{ext}", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def create(self, records, all_or_none=False):
        r = self.post("composite/sobjects", json={"allOrNone": all_or_none, "records": records})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def new_token(emu):
    return lambda: get_token(emu)


@pytest.fixture
def make_api(emu):
    """Build an Api client for a given token."""
    return lambda token: Api(emu, token)


@pytest.fixture
def api(emu):
    return Api(emu, get_token(emu))


@pytest.fixture
def sf(emu):
    session = requests.Session()
    session.verify = emu.ca_path
    return Salesforce(instance_url=emu.url, session_id=get_token(emu), version="62.0",
                      session=session)
