"""The operator's console end to end (issue 10): status with no Salesforce credentials (queue
and dead-letter depth, unreadable bodies named by their key), quarantine list/show/drop on
real quarantined messages, replay after a drop, and personal data redacted when configured."""

from __future__ import annotations

import json

import pytest
from jbtest import attach_dlq, cli, log_lines, same_state, sample, write_config

pytestmark = pytest.mark.e2e

NO_SECRET = {"salesforce__auth__client_secret": "${SF_SECRET_NOBODY_SET}"}


def _with_dlq(aws) -> str:
    return attach_dlq(aws.sqs, aws.queue_url, 5)


def test_status_and_quarantine_without_salesforce_credentials(tmp_path, emu, aws):
    # On moto: status reads the queue's and the dead-letter queue's depths from SQS itself.
    cfg = write_config(tmp_path, emu, aws)
    dlq = _with_dlq(aws)
    aws.sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    emu.org.insert("Contact", {"LastName": "Doe", "Email": "dup@example.com"})
    second = emu.org.insert("Contact", {"LastName": "Doe2", "Email": "dup@example.com"})
    aws.publish(sample("event"))
    aws.publish(sample("person", identifiers__email="dup@example.com", identifiers__organisation_uid=""))
    aws.send_raw("this is { not json")
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0

    (tmp_path / "offline").mkdir()
    offline = write_config(tmp_path / "offline", emu, aws, **same_state(cfg), **NO_SECRET)
    assert cli("run", "--config", str(offline), "--drain").returncode == 2   # run still needs them
    res = cli("status", "--config", str(offline))
    assert res.returncode == 0, res.stderr
    assert "Dead-letter queue: 1 waiting" in res.stdout and "Queue: 0 waiting" in res.stdout
    assert "- :" not in res.stdout
    doc = json.loads(cli("status", "--config", str(offline), "--format", "json").stdout)
    assert doc["sqs"]["dead_letter_queue"]["visible"] == 1 and doc["sqs"]["queue"]["max_receive_count"] == 5
    assert doc["runs"] and doc["runs"][0]["exit_code"] == 0
    unreadable = next(q for q in doc["quarantined"] if q["resource_type"] is None)
    ambiguous = next(q for q in doc["quarantined"] if q["resource_type"] == "person")
    assert unreadable["message_id"].startswith("sha256:")
    assert f"{unreadable['message_id']}  unreadable body [body]: body is not JSON" in res.stdout

    listed = cli("quarantine", "list", "--config", str(offline))
    assert listed.returncode == 0 and ambiguous["message_id"] in listed.stdout
    shown = cli("quarantine", "show", ambiguous["message_id"], "--config", str(offline))
    assert shown.returncode == 0, shown.stderr
    assert "dup@example.com" in shown.stdout and '"resource_type": "person"' in shown.stdout, shown.stdout
    assert "2 Contacts match email" in shown.stdout and "connector replay" in shown.stdout
    assert cli("quarantine", "show", "no-such-id", "--config", str(offline)).returncode == 1
    bad = cli("quarantine", "drop", "no-such-id", "--reason", "x", "--config", str(offline))
    assert bad.returncode == 1 and "not a quarantined message" in bad.stderr

    # Replay: the unreadable body can never succeed and the ambiguous person still fails.
    assert cli("replay", "--config", str(cfg), "--all").returncode == 1
    history = cli("quarantine", "show", ambiguous["message_id"], "--config", str(offline)).stdout
    assert "Attempts    2" in history
    dropped = cli("quarantine", "drop", unreadable["message_id"], "--reason", "vendor test message",
                      "--config", str(offline))
    assert dropped.returncode == 0, dropped.stderr
    assert "vendor test message" in dropped.stdout
    after = json.loads(cli("quarantine", "list", "--config", str(offline), "--format", "json").stdout)
    assert [q["message_id"] for q in after["quarantined"]] == [ambiguous["message_id"]]
    audit = after["dropped"][0]
    assert audit["message_key"] == unreadable["message_id"] and audit["dropped_reason"] == "vendor test message"
    assert audit["dropped_by"] and audit["dropped_at"] and audit["quarantine_reason"].startswith("body is not JSON")
    assert cli("quarantine", "show", unreadable["message_id"], "--config", str(offline)).returncode == 1

    # After a data fix, replay --all no longer includes the dropped message and succeeds.
    emu.org.delete(second)
    res = cli("replay", "--config", str(cfg), "--all")
    assert res.returncode == 0, res.stdout + res.stderr
    assert unreadable["message_id"] not in res.stdout
    final = json.loads(cli("status", "--config", str(offline), "--format", "json").stdout)
    assert final["quarantined"] == [] and final["dropped"] == 1 and final["counts"]["dropped"] == 1


def test_personal_data_is_redacted_in_logs_reasons_and_reports(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq, logging__redact_personal_data=True)
    emu.org.insert("Contact", {"LastName": "Doe", "Email": "dup@example.com"})
    emu.org.insert("Contact", {"LastName": "Doe2", "Email": "dup@example.com"})
    memq.publish(sample("event"))
    memq.publish(sample("person", identifiers__email="dup@example.com", identifiers__organisation_uid=""))
    memq.publish(sample("person", identifiers__id="acme/event_person/7", identifiers__email="ann@example.com",
                       identifiers__first_name="Ann", identifiers__last_name="Lee", identifiers__organisation_uid=""))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0
    assert "dup@example.com" not in res.stderr
    reasons = [line["reason"] for line in log_lines(res.stderr) if line.get("outcome") == "quarantined"]
    assert len(reasons) == 1 and "email:" in reasons[0]

    status = cli("status", "--config", str(cfg), "--format", "json")
    q = json.loads(status.stdout)["quarantined"][0]
    assert "dup@example.com" not in status.stdout and "email:" in q["reason"]
    # The same address gives the same hash in every place and on every run.
    token = next(w for w in q["reason"].replace("'", " ").split() if w.startswith("email:"))
    assert token in reasons[0]
    shown = cli("quarantine", "show", q["message_id"], "--config", str(cfg)).stdout
    assert "dup@example.com" not in shown and "Jane" not in shown and token in shown
    assert "dup@example.com" in cli("quarantine", "show", q["message_id"], "--config", str(cfg),
                                        "--reveal").stdout

    lead = next(r for r in emu.org.records("Lead") if r["Jomablue_Id__c"] == "acme/event_person/7")
    emu.org.update(lead["Id"], {"LastName": "Changed"})
    rec = cli("reconcile", "--config", str(cfg), "--format", "json")
    assert rec.returncode == 1
    assert "Ann" not in rec.stdout and "Lee" not in rec.stdout and "Changed" not in rec.stdout
    finding = json.loads(rec.stdout)["findings"][0]
    assert finding["name"].startswith("name:") and finding["expected"].startswith("name:")
