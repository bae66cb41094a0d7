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
    SF_SANDBOX_PRIVATE_RECORD_ID  a Lead or Contact the integration user may read but not edit
                                  (private sharing, another owner); without it that check skips

The checks of the org's own life need more than the data API on a sandbox: a merge goes through
the SOAP API's merge() (REST has no merge), a validation rule is created through the Tooling API
(the integration user then needs Customize Application; the check skips, saying so, otherwise).

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
from xml.sax.saxutils import escape

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
        return None, ("no sandbox named: set SF_SANDBOX_INSTANCE_URL and SF_SANDBOX_CLIENT_ID "
                      "(tests/sandbox/conftest.py)")
    if env.get(ENV + "CLIENT_SECRET"):
        auth = {"method": "client_credentials", "login_url": env.get(ENV + "LOGIN_URL", url),
                "client_id": client_id, "client_secret": "${SF_SANDBOX_CLIENT_SECRET}"}
    elif env.get(ENV + "USERNAME") and env.get(ENV + "PRIVATE_KEY_FILE"):
        auth = {"method": "jwt", "login_url": env.get(ENV + "LOGIN_URL", "https://test.salesforce.com"),
                "client_id": client_id, "username": env[ENV + "USERNAME"],
                "private_key_file": env[ENV + "PRIVATE_KEY_FILE"],
                "audience": env.get(ENV + "AUDIENCE", "https://test.salesforce.com")}
    else:
        return None, ("SF_SANDBOX_* names no credentials: set SF_SANDBOX_CLIENT_SECRET, "
                      "or SF_SANDBOX_USERNAME and SF_SANDBOX_PRIVATE_KEY_FILE")
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
    tooling_created: list[tuple[str, str]] = field(default_factory=list)

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

    def merge(self, master_id: str, loser_id: str, sobject: str) -> None:
        """Merge ``loser_id`` into ``master_id`` as an admin does (SOAP API merge(); REST has none)."""
        if self.emu is not None:
            self.emu.org.merge(master_id, loser_id)
            return
        token = self.session.headers["Authorization"].split(" ", 1)[1]
        envelope = (
            '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com" '
            'xmlns:urn1="urn:sobject.partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
            f"<urn:sessionId>{escape(token)}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body>"
            f"<urn:merge><urn:request><urn:masterRecord><urn1:type>{sobject}</urn1:type>"
            f"<urn1:Id>{master_id}</urn1:Id></urn:masterRecord><urn:recordToMergeIds>{loser_id}"
            "</urn:recordToMergeIds></urn:request></urn:merge></soapenv:Body></soapenv:Envelope>")
        r = self.session.post(f"{self.instance_url}/services/Soap/u/{self.config.api_version}",
                              data=envelope.encode("utf-8"), timeout=60,
                              headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
        assert r.status_code == 200 and "<success>true</success>" in r.text, r.text

    def add_validation_rule(self, sobject: str, name: str, message: str, field: str, refused_value: str) -> None:
        """An active rule refusing records of this run whose ``field`` equals ``refused_value``."""
        if self.emu is not None:
            prefix = f"ct{self.run_id}/"
            self.emu.org.add_validation_rule(
                sobject, name, message, field=field,
                when=lambda r: (r.get("Jomablue_Id__c") or "").startswith(prefix) and r.get(field) == refused_value)
            return
        formula = f'AND(BEGINS(Jomablue_Id__c, "ct{self.run_id}/"), {field} = "{refused_value}")'
        r = self.request("POST", "tooling/sobjects/ValidationRule", json={
            "FullName": f"{sobject}.{name}", "Metadata": {
                "active": True, "errorConditionFormula": formula, "errorMessage": message,
                "errorDisplayField": field, "description": "connector contract suite (deleted afterwards)"}})
        if r.status_code in (400, 403) and "INSUFFICIENT_ACCESS" in r.text:
            pytest.skip(f"the integration user may not create validation rules: {r.text[:200]}")
        assert r.status_code == 201, r.text
        self.tooling_created.append(("ValidationRule", r.json()["id"]))

    def private_record(self) -> tuple[str, str]:
        """(sobject, id) of a record the user may read but not edit."""
        if self.emu is not None:
            [row] = self.create([{"attributes": {"type": "Lead"}, "LastName": "Private", "Company": "CT",
                                  "Jomablue_Id__c": self.jid("ep", "private")}])
            self.emu.org.make_private(row["id"])
            return "Lead", row["id"]
        rid = os.environ.get(ENV + "PRIVATE_RECORD_ID")
        if not rid:
            pytest.skip("set SF_SANDBOX_PRIVATE_RECORD_ID to a Lead or Contact the integration user cannot edit")
        sobject = "Lead" if rid.startswith("00Q") else "Contact"
        return sobject, rid

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
        for sobject, rid in self.tooling_created:
            self.request("DELETE", f"tooling/sobjects/{sobject}/{rid}")
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
