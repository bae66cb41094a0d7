"""The sandbox contract suite's target: the bundled emulator always, a real sandbox when named.

Every test in tests/sandbox/ takes the ``target`` fixture and runs twice: against the emulator
(proving the checks, and that the emulator agrees with them) and against the Salesforce sandbox
named by these environment variables (skipped, with the reason printed by ``-ra``, otherwise):

    SF_SANDBOX_INSTANCE_URL       https://acme--uat.sandbox.my.salesforce.com     (required)
    SF_SANDBOX_CLIENT_ID          the connected app's consumer key                (required)
    SF_SANDBOX_CLIENT_SECRET      → client_credentials (posted to the My Domain), or
    SF_SANDBOX_USERNAME + SF_SANDBOX_PRIVATE_KEY_FILE → JWT bearer
    SF_SANDBOX_LOGIN_URL          token endpoint base (default: the instance URL for client
                                  credentials, https://test.salesforce.com for JWT)
    SF_SANDBOX_AUDIENCE           JWT aud (default https://test.salesforce.com)
    SF_SANDBOX_API_VERSION        default 62.0

The sandbox must have salesforce/ deployed, the permission set assigned and `Jomablue` in Lead
Source (salesforce/README.md). Records the tests create carry a `ct<run id>/` Jomablue id and are
deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connector.config import SalesforceConfig
from connector.salesforce.auth import TokenSource
from connector.wiring import build_gateway

ENV = "SF_SANDBOX_"


def sandbox_settings() -> tuple[dict[str, Any] | None, str]:
    """(the config's salesforce section with ${ENV} references, why not) from SF_SANDBOX_*."""
    env = os.environ
    url, client_id = env.get(ENV + "INSTANCE_URL"), env.get(ENV + "CLIENT_ID")
    if not url or not client_id:
        return None, "no sandbox named: set SF_SANDBOX_INSTANCE_URL and SF_SANDBOX_CLIENT_ID (tests/sandbox/conftest.py)"
    if env.get(ENV + "CLIENT_SECRET"):
        auth = {"method": "client_credentials", "login_url": env.get(ENV + "LOGIN_URL", url),
                "client_id": client_id, "client_secret": "${SF_SANDBOX_CLIENT_SECRET}"}
    elif env.get(ENV + "USERNAME") and env.get(ENV + "PRIVATE_KEY_FILE"):
        auth = {"method": "jwt", "login_url": env.get(ENV + "LOGIN_URL", "https://test.salesforce.com"),
                "client_id": client_id, "username": env[ENV + "USERNAME"],
                "private_key_file": env[ENV + "PRIVATE_KEY_FILE"],
                "audience": env.get(ENV + "AUDIENCE", "https://test.salesforce.com")}
    else:
        return None, "SF_SANDBOX_* names no credentials: set SF_SANDBOX_CLIENT_SECRET, or SF_SANDBOX_USERNAME and SF_SANDBOX_PRIVATE_KEY_FILE"
    return {"instance_url": url, "api_version": env.get(ENV + "API_VERSION", "62.0"), "auth": auth,
            "requests_per_second": 5, "max_in_flight": 2}, ""


def _expand(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v) for k, v in node.items()}
    return os.path.expandvars(node) if isinstance(node, str) else node


@dataclass
class Target:
    """One org the contract runs against, with a raw REST client for the shape checks."""

    name: str
    salesforce: dict[str, Any]  # the config's salesforce section (may hold ${ENV} references)
    emu: Any = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = SalesforceConfig.model_validate(_expand(self.salesforce))
        session = requests.Session()
        session.verify = str(self.config.ca_bundle) if self.config.ca_bundle else True
        token = TokenSource(self.config.auth, session).fetch()
        self.user_id = token.user_id
        self.instance_url = (token.instance_url or self.config.instance_url).rstrip("/")
        self.session = session
        self.session.headers["Authorization"] = f"Bearer {token.access_token}"
        self.base = f"{self.instance_url}/services/data/v{self.config.api_version}/"

    def jid(self, kind: str, n: int | str = 1) -> str:
        """A Jomablue-style id unique to this run (`ct<run>/<kind>/<n>`)."""
        return f"ct{self.run_id}/{kind}/{n}"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=60, **kw)

    def query(self, soql: str) -> list[dict[str, Any]]:
        r = self.request("GET", "query", params={"q": soql})
        assert r.status_code == 200, r.text
        return r.json()["records"]

    def create(self, records: list[dict[str, Any]], **headers: str) -> list[dict[str, Any]]:
        r = self.request("POST", "composite/sobjects", json={"allOrNone": False, "records": records},
                         headers=headers)
        assert r.status_code == 200, r.text
        results = r.json()
        self.created += [x["id"] for x in results if x.get("success")]
        return results

    def gateway(self):
        class _Cfg:
            salesforce = self.config
        return build_gateway(_Cfg())  # type: ignore[arg-type]

    def write_config(self, tmp_path: Path, queue_url: str, endpoint: str, **extra: Any) -> Path:
        cfg = {"sqs": {"queue_url": queue_url, "region": "us-east-1", "endpoint_url": endpoint,
                       "wait_seconds": 1, "visibility_timeout": 30},
               "salesforce": {**self.salesforce, **extra}, "state": {"path": "state/connector.db"}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        return path

    def cleanup(self) -> None:
        """Delete what the run created (children first: members go with their campaign)."""
        rows = []
        for sobject in ("Jomablue_Lead_Capture__c", "CampaignMember", "Lead", "Contact", "Campaign"):
            try:
                rows += [r["Id"] for r in self.query(
                    f"SELECT Id FROM {sobject} WHERE Jomablue_Id__c LIKE 'ct{self.run_id}/%'")]
            except AssertionError:
                continue
        ids = list(dict.fromkeys(rows + self.created))
        for start in range(0, len(ids), 200):
            self.request("DELETE", "composite/sobjects",
                         params={"ids": ",".join(ids[start:start + 200]), "allOrNone": "false"})


SANDBOX, WHY_NOT = sandbox_settings()


@pytest.fixture(params=["emulator", pytest.param("sandbox", marks=pytest.mark.sandbox)])
def target(request):
    if request.param == "sandbox":
        if SANDBOX is None:
            pytest.skip(WHY_NOT)
        t = Target("sandbox", SANDBOX)
    else:
        emu = request.getfixturevalue("emu")
        t = Target("emulator", {
            "instance_url": emu.url, "api_version": "62.0", "ca_bundle": emu.ca_path,
            "auth": {"method": "client_credentials", "login_url": emu.url, "client_id": emu.client_id,
                     "client_secret": "${SF_CLIENT_SECRET}"},
            "requests_per_second": 200, "max_in_flight": 4, "retry_base_seconds": 0.05,
            "retry_max_wait_seconds": 0.5}, emu=emu)
    try:
        yield t
    finally:
        if t.name == "sandbox":
            t.cleanup()


@pytest.fixture(autouse=True)
def _emulator_secret(monkeypatch):
    monkeypatch.setenv("SF_CLIENT_SECRET", "emulator-secret")
