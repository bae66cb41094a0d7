"""Reconcile end to end through the CLI (issue 10): drift made by hand in Salesforce is found,
shown in every format (the HTML checked in a real browser), repaired by --fix, and the next
reconcile is clean."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from jbbrowser import render
from jbtest import cli, open_config_state, sample, write_config

pytestmark = pytest.mark.e2e

EVENT_A, EVENT_B = "acme/event/521", "acme/event/600"


def _person(n: int, email: str, first: str, last: str, event: str = EVENT_A) -> dict:
    return sample("person", identifiers__id=f"acme/event_person/{n}", identifiers__email=email,
                  identifiers__first_name=first, identifiers__last_name=last, identifiers__organisation_uid="",
                  context__event_id=event)


def _one(emu, sobject: str, **where) -> dict:
    rows = [r for r in emu.org.records(sobject) if all(r.get(k) == v for k, v in where.items())]
    assert len(rows) == 1, (sobject, where, rows)
    return rows[0]


def _reconcile(cfg, *args: str):
    return cli("reconcile", "--config", str(cfg), *args)


def test_hand_made_drift_is_found_shown_fixed_and_then_clean(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    survivor = emu.org.insert("Contact", {"FirstName": "Sam", "LastName": "Survivor", "Email": "sam@example.com"})
    emu.org.insert("Contact", {"FirstName": "Lou", "LastName": "Loser", "Email": "lou@example.com"})
    memq.publish(sample("event"))
    memq.publish(sample("event", identifiers__id=EVENT_B, data__name="Partner Day"))
    memq.publish(_person(1, "ann@example.com", "Ann", "Lee"))           # a Lead, edited by hand
    memq.publish(_person(2, "bo@example.com", "Bo", "Ray"))             # a member, deleted by hand
    memq.publish(_person(3, "lou@example.com", "Lou", "Loser"))         # matches a Contact, merged away
    memq.publish(_person(4, "cy@example.com", "Cy", "Fox", EVENT_B))   # in the Campaign deleted by hand
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr

    clean = _reconcile(cfg, "--format", "json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    doc = json.loads(clean.stdout)
    assert doc["findings"] == [] and doc["summary"]["unfixed"] == 0
    assert {e["event_id"]: e["members_expected"] for e in doc["events"]} == {EVENT_A: 3, EVENT_B: 1}
    assert "Salesforce API call" in clean.stderr

    # Someone works on the org by hand.
    lead = _one(emu, "Lead", Jomablue_Id__c="acme/event_person/1")
    emu.org.update(lead["Id"], {"LastName": "Edited-by-hand"})
    lost_member = _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/2")
    emu.org.delete(lost_member["Id"])
    loser = _one(emu, "Contact", Email="lou@example.com")
    emu.org.merge(survivor, loser["Id"])
    campaign_a = _one(emu, "Campaign", Jomablue_Id__c=EVENT_A)
    emu.org.update(campaign_a["Id"], {"Name": "Renamed by hand"})
    campaign_b = _one(emu, "Campaign", Jomablue_Id__c=EVENT_B)
    emu.org.delete(campaign_b["Id"])

    res = _reconcile(cfg, "--format", "json")
    assert res.returncode == 1, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    found = sorted((f["kind"], f["event_id"], f["field"] or "") for f in doc["findings"])
    assert found == sorted([
        ("person_field", EVENT_A, "LastName"), ("member_deleted", EVENT_A, ""), ("person_merged", EVENT_A, ""),
        ("campaign_field", EVENT_A, "Name"), ("campaign_deleted", EVENT_B, ""), ("member_deleted", EVENT_B, ""),
    ]), found
    by_kind = {f["kind"]: f for f in doc["findings"]}
    assert by_kind["person_field"]["expected"] == "Lee" and by_kind["person_field"]["actual"] == "Edited-by-hand"
    assert by_kind["person_field"]["name"] == "Ann Edited-by-hand"
    assert by_kind["person_merged"]["related_id"] == survivor and "Sam Survivor" in by_kind["person_merged"]["actual"]
    assert by_kind["campaign_field"]["expected"] == "Sonic Conference 2025"
    assert by_kind["campaign_field"]["record_url"] == f"{emu.url}/lightning/r/Campaign/{campaign_a['Id']}/view"
    events = {e["event_id"]: e for e in doc["events"]}
    assert events[EVENT_A]["members_present"] == 2 and events[EVENT_A]["people_synced"] == 3
    assert events[EVENT_B]["members_present"] == 0 and events[EVENT_B]["name"] == "Partner Day"
    assert events[EVENT_A]["drift"] == {"campaign_field": 1, "person_merged": 1, "person_field": 1,
                                        "member_deleted": 1}
    assert doc["summary"]["by_kind"]["member_deleted"] == 2

    rows = list(csv.DictReader(io.StringIO(_reconcile(cfg, "--format", "csv").stdout)))
    assert sorted((r["kind"], r["event_id"], r["field"]) for r in rows) == found
    assert {r["fixed"] for r in rows} == {"false"}

    table = _reconcile(cfg)
    assert table.returncode == 1 and "Renamed by hand" in table.stdout and "Partner Day" in table.stdout

    page = tmp_path / "report.html"
    res = _reconcile(cfg, "--format", "html", "--output", str(page))
    assert res.returncode == 1
    html = page.read_text(encoding="utf-8")
    assert "False" not in html and "<script" not in html
    assert not re.search(r"""(src|href)=["']https?://(?!127\.0\.0\.1)""", html.replace(emu.url, "")), \
        "the page must not load anything from elsewhere"
    dom, text, shot = render(page, "reconcile-report.png")
    assert re.search(r'id="count-findings">6<', dom) and re.search(r'id="count-unfixed">6<', dom)
    assert "6 finding(s) need attention" in text
    # The counts as a person reads them on the rendered page.
    assert "2 Events 6 Findings 0 Fixed 6 Not fixed" in text
    assert "People synced 3 Members expected 3 Members present 2" in text
    assert "People synced 1 Members expected 1 Members present 0" in text
    assert "Campaign members deleted in Salesforce: 1" in text
    assert "Sonic Conference 2025" not in text.split("Summary")[0]   # the summary comes first
    for title in ("People changed in Salesforce", "People merged into another record",
                  "Campaign members deleted in Salesforce", "Event Campaigns deleted in Salesforce",
                  "Event Campaigns changed in Salesforce"):
        assert title in text, title
    assert "Ann Edited-by-hand" in text and "Partner Day" in text and emu.url in text
    assert f'href="{emu.url}/lightning/r/Lead/{lead["Id"]}/view"' in dom
    assert shot.exists() and shot.stat().st_size > 10_000

    # --fix repairs every kind, through the API, and says so.
    res = _reconcile(cfg, "--fix", "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    fixed = json.loads(res.stdout)
    assert all(f["fixed"] for f in fixed["findings"]), [f for f in fixed["findings"] if not f["fixed"]]
    assert _one(emu, "Lead", Jomablue_Id__c="acme/event_person/1")["LastName"] == "Lee"
    assert _one(emu, "Campaign", Jomablue_Id__c=EVENT_A)["Name"] == "Sonic Conference 2025"
    new_b = _one(emu, "Campaign", Jomablue_Id__c=EVENT_B)
    assert new_b["Id"] != campaign_b["Id"] and new_b["Name"] == "Partner Day"
    member_b = _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/4")
    assert member_b["CampaignId"] == new_b["Id"] and member_b["Status"] == "Attended"
    member_2 = _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/2")
    assert member_2["CampaignId"] == campaign_a["Id"] and member_2["Status"] == "Attended"
    assert _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/3")["ContactId"] == survivor

    again = _reconcile(cfg, "--format", "json")
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["findings"] == []

    # The connector goes on from the repaired state: a new message about the merged person
    # writes to the survivor and keeps its membership.
    memq.publish(_person(3, "lou@example.com", "Lou", "Loser") | {"generated_at": "2025-09-12T00:00:00.000Z"})
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    assert _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/3")["ContactId"] == survivor
    assert _reconcile(cfg).returncode == 0


def test_unknown_event_exits_2_with_a_message(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    res = _reconcile(cfg, "--event", "acme/event/999")
    assert res.returncode == 2
    assert "unknown event 'acme/event/999'" in res.stderr and EVENT_A in res.stderr
    ok = _reconcile(cfg, "--event", EVENT_A, "--format", "json")
    assert ok.returncode == 0 and [e["event_id"] for e in json.loads(ok.stdout)["events"]] == [EVENT_A]


def test_a_campaign_the_connector_already_forgot_is_recreated_by_fix(tmp_path, emu, memq):
    """The engine noticed the deleted Campaign (a later message failed on it) and forgot it until
    the next delivery: reconcile finds it through its members and --fix creates it again."""
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(_person(1, "ann@example.com", "Ann", "Lee"))
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    emu.org.delete(_one(emu, "Campaign", Jomablue_Id__c=EVENT_A)["Id"])
    memq.publish(_person(2, "bo@example.com", "Bo", "Ray"))
    cli("run", "--config", str(cfg), "--drain")      # the member write fails: the Campaign is forgotten
    res = _reconcile(cfg, "--format", "json")
    assert res.returncode == 1
    kinds = sorted(f["kind"] for f in json.loads(res.stdout)["findings"])
    assert kinds == ["campaign_deleted", "member_deleted"], kinds
    fixed = _reconcile(cfg, "--fix", "--format", "json")
    assert fixed.returncode == 0, fixed.stdout
    campaign = _one(emu, "Campaign", Jomablue_Id__c=EVENT_A)
    assert _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/1")["CampaignId"] == campaign["Id"]
    assert _reconcile(cfg).returncode == 0


def test_lead_captures_and_sessions_are_checked_and_repaired(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(sample("lead"))
    memq.publish(sample("session_participation"))
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    assert _reconcile(cfg).returncode == 0
    capture = _one(emu, "Jomablue_Lead_Capture__c", Jomablue_Id__c="acme/lead/90311")
    emu.org.delete(capture["Id"])
    session = _one(emu, "Campaign", Jomablue_Id__c="acme/session/123")
    emu.org.update(session["Id"], {"Name": "Keynote (edited)"})
    res = _reconcile(cfg, "--event", EVENT_A, "--format", "json")
    assert res.returncode == 1
    found = sorted((f["kind"], f["event_id"], f["field"] or "") for f in json.loads(res.stdout)["findings"])
    assert found == [("capture_deleted", EVENT_A, ""), ("session_field", EVENT_A, "Name")], found
    assert _reconcile(cfg, "--fix").returncode == 0
    again = _one(emu, "Jomablue_Lead_Capture__c", Jomablue_Id__c="acme/lead/90311")
    assert again["Id"] != capture["Id"] and again["Vendor_Name__c"] == capture["Vendor_Name__c"]
    assert again["Campaign__c"] == capture["Campaign__c"]
    assert _one(emu, "Campaign", Jomablue_Id__c="acme/session/123")["Name"] == session["Name"]
    assert _reconcile(cfg).returncode == 0


def test_the_journal_keeps_only_what_reconcile_compares_and_member_drift_is_still_found(tmp_path, emu, memq):
    """Issue 18: a Lead's journal holds its `overwrite: always` fields, a member's nothing its member
    row holds; reconcile still finds (and --fix repairs) a member's Jomablue id and status changed."""
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(_person(1, "ann@example.com", "Ann", "Lee"))
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    lead = _one(emu, "Lead", Jomablue_Id__c="acme/event_person/1")
    member = _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/1")
    state = open_config_state(cfg)
    try:
        journal = state.written([lead["Id"], member["Id"]])
    finally:
        state.close()
    assert {"FirstName", "LastName", "Email"} <= set(journal[lead["Id"]]["fields"])
    assert not {"LeadSource", "Jomablue_Id__c"} & set(journal[lead["Id"]]["fields"])    # on_create: never compared
    assert not {"CampaignId", "LeadId", "ContactId", "Status", "Jomablue_Id__c", "Jomablue_Categories__c"} \
        & set(journal.get(member["Id"], {}).get("fields", {}))

    emu.org.update(member["Id"], {"Jomablue_Id__c": "someone/else", "Status": "Registered"})
    res = _reconcile(cfg, "--format", "json")
    assert res.returncode == 1, res.stdout + res.stderr
    found = {(f["field"], f["expected"], f["actual"]) for f in json.loads(res.stdout)["findings"]}
    assert found == {("Jomablue_Id__c", "acme/event_person/1", "someone/else"), ("Status", "Attended", "Registered")}
    assert _reconcile(cfg, "--fix", "--format", "json").returncode == 0
    assert (emu.org.get(member["Id"])["Jomablue_Id__c"], emu.org.get(member["Id"])["Status"]) == (
        "acme/event_person/1", "Attended")
    assert _reconcile(cfg, "--format", "json").returncode == 0
