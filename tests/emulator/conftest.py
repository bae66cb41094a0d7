"""Authenticated clients for the emulator tests (the `emu` fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce

# The `emu` fixture (a fresh org per test on one shared server) comes from tests/conftest.py.


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
