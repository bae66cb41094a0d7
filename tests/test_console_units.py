"""Units of the operator's console (issue 10): redaction, offline config loading, the state
store's quarantine audit, reason history and write journal, reconcile's value comparison."""

from __future__ import annotations

import json

import pytest

from connector.config import load_config
from connector.errors import ConfigError
from connector.reconcile.reads import packed_in, same
from connector.redact import Redactor
from connector.salesforce.soql import MAX_IN_LIST, MAX_SOQL
from connector.state import SqliteStateStore
from connector.wiring import build_gateway


def test_redactor_hashes_are_stable_keyed_and_typed():
    r, other = Redactor(b"k1"), Redactor(b"k2")
    assert r.email("Jane.Doe@Example.com") == r.email("jane.doe@example.com").lower()
    assert r.email("a@example.com").startswith("email:") and len(r.email("a@example.com")) == len("email:") + 12
    assert r.email("a@example.com") != other.email("a@example.com")
    assert r.text("2 match email 'a@example.com' and b@x.io") == (
        f"2 match email '{r.email('a@example.com')}' and {r.email('b@x.io')}")
    assert r.field("FirstName", "Jane").startswith("name:") and r.field("Phone", "+61 4").startswith("phone:")
    assert r.field("Status", "Attended") == "Attended"
    body = json.dumps({"Type": "Notification", "Message": json.dumps(
        {"identifiers": {"first_name": "Jane", "email": "j@example.com", "id": "acme/event_person/1"}})})
    out = r.body(body)
    assert "Jane" not in out and "j@example.com" not in out and "acme/event_person/1" in out
    off = Redactor(None)
    assert off.text("a@example.com") == "a@example.com" and off.body(body) == body


CONFIG = """sqs: {queue_url: q, region: r}
salesforce:
  instance_url: https://x
  auth: {method: client_credentials, login_url: https://x, client_id: c, client_secret: '${SF_UNSET_X}'}
"""


def test_offline_config_tolerates_missing_salesforce_secrets_only(tmp_path, monkeypatch):
    monkeypatch.delenv("SF_UNSET_X", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any("SF_UNSET_X" in p for p in exc.value.problems)
    cfg = load_config(path, offline=True)
    assert cfg.offline and cfg.salesforce.auth.client_secret is None
    with pytest.raises(ConfigError):
        build_gateway(cfg)      # an offline config cannot talk to Salesforce
    path.write_text(CONFIG.replace("region: r", "region: '${SQS_UNSET_X}'"), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path, offline=True)     # only the Salesforce credentials may be missing
    assert any("SQS_UNSET_X" in p for p in exc.value.problems)
    path.write_text(CONFIG + "logging: {redact_personal_data: true, colour: no}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path, offline=True)
    assert any("logging.colour: unknown key" in p for p in exc.value.problems)


def test_drop_keeps_an_audit_row_and_takes_the_message_out_of_replay(tmp_path):
    s = SqliteStateStore(tmp_path / "s.db")
    s.record_outcomes([{"message_key": "m1", "outcome": "quarantined", "reason": "first", "field": "a", "body": "B1"},
                       {"message_key": "m2", "outcome": "quarantined", "reason": "other", "body": "B2"}])
    s.record_outcomes([{"message_key": "m1", "outcome": "quarantined", "reason": "second", "field": "b", "body": "B1"}])
    s.record_outcomes([{"message_key": "m1", "outcome": "quarantined", "reason": "second", "field": "b", "body": "B1"}])
    row = s.quarantined(["m1"])[0]
    assert [h["reason"] for h in json.loads(row["reasons"])] == ["first", "second"] and row["attempts"] == 3
    assert s.drop_quarantined("nope", reason="x", who="me") is None
    audit = s.drop_quarantined("m1", reason="test data", who="alice")
    assert audit["dropped_by"] == "alice" and audit["dropped_reason"] == "test data" and audit["attempts"] == 3
    assert audit["quarantine_reason"] == "second" and len(audit["body_sha256"]) == 64
    assert [r["message_key"] for r in s.quarantined()] == ["m2"]
    assert s.quarantined(["m1"]) == [] and s.drop_quarantined("m1", reason="again", who="bob") is None
    assert s.outcome_counts() == {"dropped": 1, "quarantined": 1}
    assert [d["message_key"] for d in s.dropped()] == ["m1"]


def test_the_write_journal_merges_fields_and_relink_follows_a_merge(tmp_path):
    s = SqliteStateStore(tmp_path / "s.db")
    s.put_written([("00Q1", "Lead", {"FirstName": "A", "LastName": "B"})])
    s.put_written([("00Q1", "Lead", {"LastName": "C", "Title": None})])
    assert s.written(["00Q1"])["00Q1"]["fields"] == {"FirstName": "A", "LastName": "C", "Title": None}
    s.put_people({"p1": {"sobject": "Contact", "sf_id": "003A"}})
    s.put_members({"m1": {"event_id": "e", "campaign_id": "701A", "cm_id": "00vA", "person_sf_id": "003A"}})
    s.relink_person("003A", "Contact", "003B")
    assert s.people(["p1"])["p1"]["sf_id"] == "003B" and s.members(["m1"])["m1"]["person_sf_id"] == "003B"
    assert s.setting("k", "v1") == "v1" and s.setting("k", "v2") == "v1"


@pytest.mark.parametrize("expected,actual,equal", [
    ("2025-09-10T23:04:49.880Z", "2025-09-10T23:04:49.880+0000", True),
    ("2025-09-10T23:04:49Z", "2025-09-10T23:04:50.000+0000", False),
    ("0035g00000XyZ12", "0035g00000XyZ12AAF", True),
    (1, 1.0, True), (True, True, True), (True, False, False),
    (None, "", True), ("a\r\nb", "a\nb", True), ("Lee", "Lea", False), ("x", None, False),
    ("Jane@Example.com", "jane@example.com", True), ("Lee", "lee", False),
])
def test_values_compare_as_salesforce_formats_them(expected, actual, equal):
    assert same(expected, actual) is equal


def test_in_lists_are_packed_to_the_soql_limits():
    ids = [f"00v{i:015d}" for i in range(3000)]
    queries = packed_in("CampaignMember", ["Id", "Status"], ids)
    assert all(len(q) <= MAX_SOQL and q.count("'00v") <= MAX_IN_LIST for q in queries)
    assert len(queries) == 6
    assert sum(q.count("'00v") for q in queries) == 3000
