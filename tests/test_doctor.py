"""`connector doctor` (issue 9) against the emulator: a clean org, then an org with the things a
customer org has (a duplicate rule, an assignment rule, a missing field, ...)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jbtest import cli, write_config

import connector
from connector_devkit.emulator import Org

pytestmark = pytest.mark.e2e

NAMES = ["login", "api_version", "mapping", "automation", "duplicate_rules", "assignment_rules", "permission_set",
         "api_allocation"]


def doctor(cfg: Path, fmt: str = "json"):
    res = cli("doctor", "--config", str(cfg), "--format", fmt)
    return res, (json.loads(res.stdout) if fmt == "json" and res.stdout.strip() else None)


def by_name(doc) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for check in doc["checks"]:
        out.setdefault(check["name"], []).append(check)
    return out


def test_a_clean_org_is_all_ok(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    res, doc = doctor(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [c["name"] for c in doc["checks"]] == NAMES, doc
    assert {c["status"] for c in doc["checks"]} == {"ok"}, doc
    assert doc["errors"] == 0 and doc["warnings"] == 0
    assert emu.api_calls == 4  # describes, automation queries, setup queries, limits: one composite each
    table, _ = doctor(cfg, "table")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert all(line.startswith("OK ") for line in lines[:-1]) and lines[-1] == "0 error(s), 0 warning(s)"


def test_org_automation_and_a_missing_field_are_reported_with_fixes(tmp_path, emu, memq):
    folder = tmp_path / "mappings"
    shutil.copytree(Path(connector.__file__).parent / "default_mappings", folder)
    person = folder / "person.yaml"
    person.write_text(person.read_text(encoding="utf-8").replace("- field: Title", "- field: Job_Title__c", 1),
                      encoding="utf-8")
    emu.org.add_duplicate_rule("Lead")
    emu.org.add_duplicate_rule("Contact")
    emu.org.set_lead_assignment_rule(rule_name="Round robin")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res, doc = doctor(cfg)
    assert res.returncode == 1, res.stdout + res.stderr
    checks = by_name(doc)
    dup = checks["duplicate_rules"][0]
    assert dup["status"] == "warning"
    assert "Standard_Lead_Duplicate_Rule (Lead)" in dup["detail"] and "Standard_Contact_Duplicate_Rule" in dup["detail"]
    assert "allow_save" in dup["fix"]
    assign = checks["assignment_rules"][0]
    assert assign["status"] == "warning" and "'Round robin'" in assign["detail"]
    assert "Sforce-Auto-Assign: FALSE" in assign["detail"] and "run" in assign["fix"]
    missing = [c for c in checks["mapping"] if c["status"] == "error"]
    assert missing and "person.yaml:" in missing[0]["detail"]
    assert "Lead.Job_Title__c does not exist in the org" in missing[0]["detail"]
    assert "deploy the field" in missing[0]["fix"]
    table, _ = doctor(cfg, "table")
    assert table.returncode == 1
    assert any(line.startswith("WARNING  duplicate_rules") for line in table.stdout.splitlines())
    assert any(line.startswith("ERROR    mapping") for line in table.stdout.splitlines())
    assert "fix: " in table.stdout


def test_allow_save_and_run_change_what_doctor_says(tmp_path, emu, memq):
    emu.org.add_duplicate_rule("Lead")
    emu.org.set_lead_assignment_rule()
    cfg = write_config(tmp_path, emu, memq, salesforce__duplicate_rules="allow_save",
                       salesforce__lead_assignment_rules="run")
    res, doc = doctor(cfg)
    assert res.returncode == 0, res.stdout
    checks = by_name(doc)
    assert checks["duplicate_rules"][0]["status"] == "ok"
    assert "reassign" in checks["assignment_rules"][0]["detail"]


def test_permission_set_picklist_and_budget_problems(tmp_path, emu, memq):
    emu.org = Org(lead_sources=["Web"], permission_set_assigned=False)
    emu.org.set_api_usage(85_000, 100_000)
    cfg = write_config(tmp_path, emu, memq)
    res, doc = doctor(cfg)
    assert res.returncode == 1
    checks = by_name(doc)
    assert checks["permission_set"][0]["status"] == "error"
    assert "sf org assign permset --name Jomablue_Connector" in checks["permission_set"][0]["fix"]
    picklists = checks["picklists"]
    assert picklists and all(c["status"] == "error" and "'Jomablue'" in c["detail"] for c in picklists)
    budget = checks["api_allocation"][0]
    assert budget["status"] == "error" and "85,00" in budget["detail"] and "leaves 0" in budget["detail"]


def test_jwt_with_the_my_domain_as_audience_fails_login_with_the_fix(tmp_path, emu, memq):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    cfg = write_config(tmp_path, emu, memq, salesforce__auth={
        "method": "jwt", "login_url": emu.url, "client_id": emu.client_id, "username": "int@acme.example",
        "private_key_file": str(pem), "audience": emu.url})
    res, doc = doctor(cfg)
    assert res.returncode == 1
    login = [c for c in doc["checks"] if c["name"] == "login"]
    assert [c["status"] for c in login] == ["warning", "error"]
    assert "audience is invalid" in login[1]["detail"]
    assert "https://test.salesforce.com" in login[1]["fix"]
    assert emu.api_calls == 0


def test_an_access_token_finds_its_user_through_userinfo(tmp_path, emu, memq):
    token = emu.issue_token()["access_token"]
    cfg = write_config(tmp_path, emu, memq, salesforce__auth={"method": "access_token", "access_token": token},
                       salesforce__api_version="58.0")
    res, doc = doctor(cfg)
    checks = by_name(doc)
    assert checks["permission_set"][0]["status"] == "ok"
    assert emu.org.user_id in checks["login"][0]["detail"]
    assert checks["api_version"][0]["status"] == "error" and res.returncode == 1


def test_a_bad_config_exits_2(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq, salesforce__duplicate_rules="sometimes")
    res, _ = doctor(cfg, "table")
    assert res.returncode == 2 and "duplicate_rules" in res.stderr
