"""Reconcile reads in batches (issue 10): an event of 20,000 members costs tens of API calls,
not thousands (ids packed into IN lists that fit the URL, five queries per /composite call)."""

from __future__ import annotations

import asyncio

import yaml

from connector.config import load_config
from connector.mapping import load_mapping_set
from connector.reconcile import reconcile
from connector.state import SqliteStateStore
from connector.wiring import build_gateway

MEMBERS = 20_000


def _gateway(tmp_path, emu):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "sqs": {"queue_url": "https://sqs.example/1/q", "region": "us-east-1"},
        "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path, "requests_per_second": 1000,
                       "auth": {"method": "client_credentials", "login_url": emu.url,
                                "client_id": emu.client_id, "client_secret": emu.client_secret}}}),
        encoding="utf-8")
    return build_gateway(load_config(path))


def test_an_event_of_20000_members_costs_tens_of_calls(tmp_path, emu):
    org = emu.org
    state = SqliteStateStore(tmp_path / "state.db")
    cid = org.insert("Campaign", {"Name": "Big Expo", "Jomablue_Id__c": "acme/event/1"})
    org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": "Registered", "IsDefault": True})
    org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": "Attended", "HasResponded": True})
    state.put_event("acme/event/1", campaign_id=cid, name="Big Expo")
    people, members = {}, {}
    for i in range(MEMBERS):
        jid = f"acme/event_person/{i}"
        # Seeded (stored as given, no validation or automation): reconcile only reads them, and
        # 40,000 validated inserts were a third of this test's time. The first pair goes through
        # insert, so a seeded row that differed from an inserted one would show as a finding.
        put = org.insert if i == 0 else org.seed
        lead = put("Lead", {"LastName": f"P{i}", "Company": "Acme", "Jomablue_Id__c": jid})
        cm = put("CampaignMember", {"CampaignId": cid, "LeadId": lead, "Status": "Registered",
                                    "Jomablue_Id__c": jid})
        people[jid] = {"sobject": "Lead", "sf_id": lead, "rung": "create"}
        members[jid] = {"event_id": "acme/event/1", "campaign_id": cid, "cm_id": cm, "person_key": jid,
                        "person_sf_id": lead, "status": "Registered", "category_ids": []}
    state.put_people(people)
    state.put_members(members)
    org.update(members["acme/event_person/7"]["cm_id"], {"Status": "Attended"})
    emu.reset_counters()

    gateway = _gateway(tmp_path, emu)
    report = asyncio.run(reconcile(gateway, state, load_mapping_set()))
    print(f"\nreconcile of {MEMBERS:,} members: {report.api_calls} API calls "
          f"({dict(emu.calls_by_kind)} counted by the emulator)")
    assert report.checked == {"Campaign": 1, "CampaignMember": MEMBERS, "Lead": MEMBERS}
    assert [(f.kind, f.jomablue_id, f.field) for f in report.findings] == [
        ("member_field", "acme/event_person/7", "Status")]
    assert report.events[0].members_present == MEMBERS and report.events[0].people_synced == MEMBERS
    assert 5 <= report.api_calls <= 40, report.api_calls
    assert emu.api_calls == report.api_calls
