"""Bad input end to end: quarantined with a reason naming the field, deleted from the queue,
while the good messages of the same batch sync; unknown types and skipped instances are counted.
"""

from __future__ import annotations

import json

import pytest
from jbtest import cli, log_lines, sample, write_config

pytestmark = pytest.mark.e2e


def _status(cfg) -> dict:
    res = cli("status", "--config", str(cfg), "--format", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _messages(stderr: str) -> list[dict]:
    return [line for line in log_lines(stderr) if line.get("event") == "message"]


def test_bad_messages_are_quarantined_with_the_field_and_good_ones_sync(tmp_path, emu, memq):
    other_topic = "arn:memq:sns:us-east-1:123456789012:someone-else"
    cfg = write_config(tmp_path, emu, memq, sqs__allowed_topic_arns=[memq.topic_arn])
    memq.publish(sample("event"))
    memq.publish(sample("person"))                                   # good
    memq.send_raw("this is { not json")                              # not JSON
    memq.send_raw(json.dumps({"hello": "world"}))                    # no envelope: refused by the allow-list
    no_id = sample("person", identifiers__id="acme/event_person/2")
    del no_id["identifiers"]["id"]
    memq.publish(no_id)                                              # missing identifiers.id
    no_event = sample("person", identifiers__id="acme/event_person/3", identifiers__email="x3@example.com")
    del no_event["context"]["event_id"]
    memq.publish(no_event)                                           # missing context.event_id
    foreign = {"Type": "Notification", "MessageId": "foreign-1", "TopicArn": other_topic,
               "Message": json.dumps(sample("person", identifiers__id="acme/event_person/4",
                                            identifiers__email="x4@example.com"))}
    memq.send_raw(json.dumps(foreign))                               # a topic not allowed

    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert memq.depth() == 0

    lines = _messages(res.stderr)
    quarantined = [line for line in lines if line["outcome"] == "quarantined"]
    assert len(quarantined) == 5, lines
    fields = sorted(line.get("field") or "" for line in quarantined)
    assert fields == sorted(["body", "Type", "identifiers.id", "context.event_id", "TopicArn"]), fields
    for line in quarantined:
        if line["field"] in ("identifiers.id", "context.event_id", "Type"):
            assert line["field"] in line["reason"], line
        assert "connector replay --config" in line["replay"] and "--message-id" in line["replay"]
    by_field = {line["field"]: line["reason"] for line in quarantined}
    assert "not JSON" in by_field["body"]
    assert "allowed_topic_arns" in by_field["TopicArn"] and "someone-else" in by_field["TopicArn"]
    assert "raw_delivery" in by_field["Type"]

    # The good messages of the batch synced; none of the bad people landed.
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Lead")] == ["acme/event_person/48213"]
    assert len(emu.org.records("CampaignMember")) == 1

    doc = _status(cfg)
    q = doc["quarantined"]
    assert len(q) == 5
    assert sorted(x["field"] for x in q) == fields
    assert {x["message_id"] for x in q} == {line["message_id"] for line in quarantined}
    assert any(x["field"] == "TopicArn" and "allowed_topic_arns" in x["reason"] for x in q)


def test_unknown_type_and_skipped_instance_are_counted_not_quarantined(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq, jomablue__instances__skip=["other"])
    memq.publish({"resource_type": "vendor", "generated_at": "2025-09-11T00:00:00.000Z",
                 "identifiers": {"id": "acme/vendor/1"}, "data": {}})
    memq.publish(sample("person", identifiers__id="other/event_person/1", context__event_id="other/event/1",
                       identifiers__email="other@example.com"))
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert memq.depth() == 0
    lines = _messages(res.stderr)
    assert sorted(line["outcome"] for line in lines) == ["skipped", "skipped", "synced"]
    assert sorted(line["skip"] for line in lines if line["outcome"] == "skipped") == ["instance", "unknown_type"]
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Lead")] == ["acme/event_person/48213"]
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Campaign")] == ["acme/event/521"]
    doc = _status(cfg)
    assert doc["quarantined"] == []
    counts = doc["counts"]
    assert sum(v for k, v in counts.items() if "quarantined" in k) == 0
    assert sum(v for k, v in counts.items() if k.startswith("skipped")) == 2, counts


def test_ambiguous_email_is_quarantined_then_replayed_after_a_data_fix(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    c1 = emu.org.insert("Contact", {"LastName": "Doe", "Email": "dup@example.com"})
    emu.org.insert("Contact", {"LastName": "Doe2", "Email": "dup@example.com"})
    memq.publish(sample("event"))
    memq.publish(sample("person", identifiers__email="dup@example.com", identifiers__organisation_uid=""))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert memq.depth() == 0
    q = _status(cfg)["quarantined"]
    assert len(q) == 1, q
    assert "email" in (q[0]["reason"] + (q[0]["field"] or "")).lower()
    assert emu.org.records("CampaignMember") == []
    assert emu.org.records("Lead") == []

    # Still ambiguous: replay fails.
    res = cli("replay", "--config", str(cfg), "--message-id", q[0]["message_id"])
    assert res.returncode == 1, res.stdout + res.stderr

    # Fix the data in Salesforce, replay everything.
    others = [c["Id"] for c in emu.org.records("Contact") if c["Id"] != c1]
    emu.org.delete(others[0])
    res = cli("replay", "--config", str(cfg), "--all")
    assert res.returncode == 0, res.stdout + res.stderr
    members = emu.org.records("CampaignMember")
    assert len(members) == 1 and members[0]["ContactId"] == c1
    assert emu.org.records("Lead") == []
    assert _status(cfg)["quarantined"] == []
