"""The main path end to end: the real CLI in its own process, SNS → SQS on moto, Salesforce
emulator over HTTPS."""

from __future__ import annotations

import pytest
from jbtest import cli, log_lines, run_cli, sample, write_config


@pytest.mark.process
def test_event_and_person_land_exactly_once_even_when_delivered_twice(tmp_path, emu, aws):
    cfg = write_config(tmp_path, emu, aws)
    aws.publish(sample("event"))
    person = sample("person")
    aws.publish(person)
    aws.publish(person)           # SNS redelivery / a campaign send: identical content
    res = run_cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert len(emu.org.records("Campaign")) == 1
    leads = emu.org.records("Lead")
    assert [lead["Jomablue_Id__c"] for lead in leads] == ["acme/event_person/48213"]
    members = emu.org.records("CampaignMember")
    assert len(members) == 1 and members[0]["Status"] == "Attended"
    outcomes = [line["outcome"] for line in log_lines(res.stderr) if line.get("event") == "message"]
    assert sorted(outcomes) == ["skipped", "synced", "synced"]
    assert aws.depth() == 0
    # The same messages again (a replayed topic): zero Salesforce calls, nothing new.
    emu.reset_counters()
    aws.publish(sample("event"))
    aws.publish(person)
    res = cli("run", "--config", str(cfg), "--drain")          # the next run (in process, same wire)
    assert res.returncode == 0, res.stderr
    assert emu.api_calls == 0
    assert len(emu.org.records("Lead")) == 1 and len(emu.org.records("CampaignMember")) == 1
