"""`connector doctor` (issue 9) against the emulator: a clean org, then an org with the things a
customer org has (a duplicate rule, an assignment rule, a missing field, ...)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jbtest import cli, write_config

import connector
from connector_devkit.emulator import Org, automation, recordtypes

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


# --------------------------------------------------------------------------- the org's own life (issue 16)

def _with_record_type(folder: Path, file: str, sobject: str, name: str) -> int:
    """Add `record_type: name` under the first `object: sobject` of a mapping file; its line."""
    path = folder / file
    lines = path.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if line.strip() == f"object: {sobject}")
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1, f"{indent}record_type: {name}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return i + 2


def _mappings(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(Path(connector.__file__).parent / "default_mappings", folder)
    return folder


def test_an_org_with_automation_record_types_and_a_too_low_api_version(tmp_path, emu, memq):
    org = emu.org
    automation.add_apex_trigger(org, "LeadTrigger", "Lead", events=("BeforeInsert", "AfterUpdate"))
    automation.add_apex_trigger(org, "AccountTrigger", "Account")              # not written: not listed
    automation.add_apex_trigger(org, "OldContactTrigger", "Contact", active=False)
    automation.add_record_flow(org, "Campaign_Add_Statuses", "Campaign", on="Create", label="Add statuses")
    automation.add_record_flow(org, "Draft_Flow", "Lead", active=False)
    automation.add_validation_rule(org, "Contact", "Email_Required", "Email is required")
    automation.add_validation_rule(org, "Lead", "Old_Rule", "never", active=False)
    recordtypes.add_record_type(org, "Campaign", "Event_Campaign")
    recordtypes.add_record_type(org, "Campaign", "Board_Meeting", available=False)
    recordtypes.add_record_type(org, "Lead", "Partner_Lead", default=True)
    folder = _mappings(tmp_path)
    _with_record_type(folder, "event.yaml", "Campaign", "Event_Campaign")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder), salesforce__api_version="45.0")
    res, doc = doctor(cfg)
    assert res.returncode == 1, res.stdout + res.stderr
    checks = by_name(doc)
    version = checks["api_version"][0]
    assert version["status"] == "error"
    assert version["detail"].startswith('salesforce.api_version: "45.0" is below 46.0, which sObject '
                                        'Collections upsert needs')
    automation_ = {c["detail"].split(":")[0]: c for c in checks["automation"]}
    assert set(automation_) == {"Campaign", "Lead", "Contact"}, checks["automation"]
    assert all(c["status"] == "warning" and "your writes run this" in c["detail"] for c in automation_.values())
    assert "Apex trigger LeadTrigger (before insert, after update)" in automation_["Lead"]["detail"]
    assert "Draft_Flow" not in automation_["Lead"]["detail"]
    assert "flow Campaign_Add_Statuses 'Add statuses' (after save, on create)" in automation_["Campaign"]["detail"]
    assert "validation rule Email_Required: 'Email is required'" in automation_["Contact"]["detail"]
    assert "OldContactTrigger" not in automation_["Contact"]["detail"]
    assert "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY" in automation_["Lead"]["fix"]
    kinds = {c["detail"].split(":")[0]: c["detail"] for c in checks["record_types"]}
    assert kinds["Campaign"].startswith("Campaign: available to the integration user: Event_Campaign; "
                                        "not available: Board_Meeting")
    assert "campaign → Event_Campaign" in kinds["Campaign"]
    assert "names none, so new records get the user's default (Partner_Lead)" in kinds["Lead"]
    assert "Contact" not in kinds                                            # no record types there
    table, _ = doctor(cfg, "table")
    assert any(line.startswith("ERROR    api_version") for line in table.stdout.splitlines())


def test_a_record_type_the_user_may_not_use_is_an_error_with_the_available_ones(tmp_path, emu, memq):
    recordtypes.add_record_type(emu.org, "Campaign", "Event_Campaign")
    recordtypes.add_record_type(emu.org, "Campaign", "Board_Meeting", available=False)
    folder = _mappings(tmp_path)
    line = _with_record_type(folder, "event.yaml", "Campaign", "Board_Meeting")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res, doc = doctor(cfg)
    assert res.returncode == 1
    errors = [c for c in by_name(doc)["mapping"] if c["status"] == "error"]
    assert [c["detail"] for c in errors] == [
        f"{folder / 'event.yaml'}:{line}: record type Campaign.Board_Meeting is not available to the integration "
        "user (assign it in the Jomablue_Connector permission set; available to the integration user: "
        "Event_Campaign)"]


def test_without_tooling_access_validation_rules_are_a_warning_and_the_rest_still_shows(tmp_path, emu, memq):
    automation.add_apex_trigger(emu.org, "LeadTrigger", "Lead")
    automation.add_validation_rule(emu.org, "Lead", "Needs_Company", "Company is required")
    automation.deny_tooling(emu.org)
    cfg = write_config(tmp_path, emu, memq)
    res, doc = doctor(cfg)
    assert res.returncode == 0, res.stdout                     # warnings only
    details = [c for c in by_name(doc)["automation"]]
    assert [c["status"] for c in details] == ["warning", "warning"]
    assert "could not read the org's validation rules: INVALID_TYPE" in details[0]["detail"]
    assert "Tooling API" in details[0]["fix"]
    assert "Apex trigger LeadTrigger (after insert)" in details[1]["detail"]
    assert "Needs_Company" not in details[1]["detail"]
    assert emu.api_calls == 4
