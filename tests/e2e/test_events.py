"""Events, categories, sessions and lead captures end to end (issue 5)."""

from __future__ import annotations

import json

import pytest
from jbtest import cli, log_lines, sample, write_config

pytestmark = pytest.mark.e2e


def _run(cfg) -> str:
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    return res.stderr


def _one(emu, sobject: str, **where) -> dict:
    rows = [r for r in emu.org.records(sobject) if all(r.get(k) == v for k, v in where.items())]
    assert len(rows) == 1, (sobject, where, rows)
    return rows[0]


def test_event_dates_in_its_timezone_metadata_policy_and_later_metadata_change(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    metadata = {"region": "APAC", "cost_centre": "CC-42", "owner": "Kim", "source": "Partner",
                "fiscal-year": "FY26", "wave": "2"}
    memq.publish(sample("event", data__timezone="Asia/Seoul", data__start_time="2025-09-10T15:30:00.000Z",
                       data__end_time="2025-09-11T08:00:00.000Z", data__metadata=metadata))
    _run(cfg)
    camp = _one(emu, "Campaign", Jomablue_Id__c="acme/event/521")
    assert str(camp["StartDate"]) == "2025-09-11"          # 00:30 on the 11th in Seoul
    assert str(camp["EndDate"]) == "2025-09-11"
    assert camp["Jomablue_Timezone__c"] == "Asia/Seoul"
    assert (camp["Jomablue_Region__c"], camp["Jomablue_Cost_Centre__c"], camp["Jomablue_Owner__c"],
            camp["Jomablue_Source__c"]) == ("APAC", "CC-42", "Kim", "Partner")
    assert json.loads(camp["Jomablue_Metadata__c"]) == metadata   # unmapped keys kept

    # A person message, newer than the event, carries changed event metadata: the Campaign follows.
    changed = {**metadata, "region": "EMEA", "owner": "Lee"}
    memq.publish(sample("person", context__event_metadata=changed, generated_at="2025-09-12T00:00:00.000Z"))
    _run(cfg)
    camp = _one(emu, "Campaign", Jomablue_Id__c="acme/event/521")
    assert camp["Jomablue_Region__c"] == "EMEA" and camp["Jomablue_Owner__c"] == "Lee"
    assert json.loads(camp["Jomablue_Metadata__c"])["region"] == "EMEA"
    assert str(camp["StartDate"]) == "2025-09-11"           # the event's own fields untouched
    assert len(emu.org.records("CampaignMember")) == 1


def test_long_thai_and_emoji_name_is_truncated_by_characters(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    name = "งานประชุมประจำปีสำหรับลูกค้าและพันธมิตรทางธุรกิจ 🎉🎶🚀 " * 3
    assert len(name) > 80
    memq.publish(sample("event", data__name=name))
    _run(cfg)
    camp = _one(emu, "Campaign", Jomablue_Id__c="acme/event/521")
    assert camp["Name"] == name.strip()[:80]


def test_category_rename_reaches_1000_members_in_at_most_5_update_calls(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    vip = [{"id": "acme/category/9", "name": "VIP"}]
    bodies = [json.dumps(sample("person", identifiers__id=f"acme/event_person/{5000 + i}",
                                identifiers__email=f"vip{i}@example.com", identifiers__organisation_uid="",
                                data__categories=vip))
              for i in range(1000)]
    for body in bodies:
        memq.send_raw(body)
    _run(cfg)
    members = emu.org.records("CampaignMember")
    assert len(members) == 1000
    assert {m["Jomablue_Categories__c"] for m in members} == {"VIP"}
    assert {m["Jomablue_Category_Ids__c"] for m in members} == {"acme/category/9"}

    emu.reset_counters()
    memq.publish(sample("event", generated_at="2025-07-03T10:00:00.000Z",
                       data__categories=[{"id": "acme/category/7", "name": "Delegate"},
                                         {"id": "acme/category/9", "name": "VIP Guest"}]))
    stderr = _run(cfg)
    members = emu.org.records("CampaignMember")
    assert len(members) == 1000
    assert {m["Jomablue_Categories__c"] for m in members} == {"VIP Guest"}
    assert emu.calls_by_kind["collections_update"] <= 5, dict(emu.calls_by_kind)
    assert "category acme/category/9 renamed 'VIP' → 'VIP Guest': 1,000 members updated" in stderr


def test_unknown_category_gets_its_name_when_the_event_arrives_later(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("person", data__categories=[{"id": "acme/category/11"}]))
    _run(cfg)
    member = _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/48213")
    assert member["Jomablue_Category_Ids__c"] == "acme/category/11"
    assert member["Jomablue_Categories__c"] in (None, "", "acme/category/11")
    memq.publish(sample("event", data__categories=[{"id": "acme/category/11", "name": "Speaker"}]))
    _run(cfg)
    member = _one(emu, "CampaignMember", Jomablue_Id__c="acme/event_person/48213")
    assert member["Jomablue_Categories__c"] == "Speaker"
    assert len(emu.org.records("Campaign")) == 1


def test_session_participation_child_campaign_flip_and_stale(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(sample("session_participation"))
    _run(cfg)
    event = _one(emu, "Campaign", Jomablue_Id__c="acme/event/521")
    session = _one(emu, "Campaign", Jomablue_Id__c="acme/session/123")
    assert session["ParentId"] == event["Id"]
    assert session["Name"] == "Keynote: The Future of Sound"
    member = _one(emu, "CampaignMember", CampaignId=session["Id"])
    assert member["Status"] == "Attended"

    memq.publish(sample("session_participation", generated_at="2025-09-11T03:00:00.000Z", data__attended=False))
    _run(cfg)
    member = _one(emu, "CampaignMember", CampaignId=session["Id"])
    assert member["Status"] == "Registered"

    memq.publish(sample("session_participation", generated_at="2025-09-11T02:00:00.000Z", data__attended=True))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    lines = [x for x in log_lines(res.stderr) if x.get("event") == "message"]
    assert [(x["outcome"], x.get("skip")) for x in lines] == [("skipped", "stale")]
    assert _one(emu, "CampaignMember", CampaignId=session["Id"])["Status"] == "Registered"


def test_lead_capture_links_the_lead_and_the_campaign(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(sample("person", identifiers__organisation_uid=""))
    memq.publish(sample("lead", context__person_organisation_uid=""))
    _run(cfg)
    lead = _one(emu, "Lead", Jomablue_Id__c="acme/event_person/48213")
    camp = _one(emu, "Campaign", Jomablue_Id__c="acme/event/521")
    cap = _one(emu, "Jomablue_Lead_Capture__c", Jomablue_Id__c="acme/lead/90311")
    assert cap["Lead__c"] == lead["Id"] and not cap.get("Contact__c")
    assert cap["Campaign__c"] == camp["Id"]
    assert cap["Vendor_Name__c"] == "Globex Pty Ltd"
    assert set((cap["Tags__c"] or "").split(";")) == {"Hot", "Demo requested"}


def test_lead_capture_of_a_known_contact_links_the_contact(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    contact = emu.org.insert("Contact", {"LastName": "Doe", "FirstName": "Jane", "Email": "other@example.com"})
    memq.publish(sample("event"))
    memq.publish(sample("lead", context__person_organisation_uid=contact))
    _run(cfg)
    cap = _one(emu, "Jomablue_Lead_Capture__c", Jomablue_Id__c="acme/lead/90311")
    assert cap["Contact__c"][:15] == contact[:15] and not cap.get("Lead__c")
    assert emu.org.records("Lead") == []
