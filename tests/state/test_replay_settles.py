"""A replay settles the row it replayed, also when the engine records the message under another
key (a body quarantined before it could be parsed is keyed `sha256:<body hash>`, an imported
line by its origin): it no longer counts as quarantined."""

from __future__ import annotations

import json

from jbtest import cli, same_state, sample, write_config

from connector.state import rows as R


def _quarantine(store, key: str, body: str = '{"x": 1}') -> None:
    store.record_outcomes([{"message_key": key, "outcome": "quarantined", "reason": "unreadable", "field": None,
                            "body": body, "sqs_message_id": "s1", "resource_type": None, "resource_id": None,
                            "event_id": None, "detail": None}])


def _replay(key: str, outcome: str, replayed_as: str = "m1:abc") -> dict:
    return {"message_key": key, "replayed_as": replayed_as, "outcome": outcome, "reason": None, "field": None,
            "resource_type": "person", "resource_id": "acme/event_person/1", "event_id": "acme/event/1"}


def test_the_row_replayed_takes_the_replays_outcome_and_is_counted_once(store):
    for key in ("sha256:synced", "sha256:again", "sha256:retry", "same:key", "sha256:skipped"):
        _quarantine(store, key)
    store.settle_replayed([_replay("sha256:synced", "synced"), _replay("sha256:again", "quarantined"),
                           _replay("sha256:retry", "retry"), _replay("same:key", "synced", replayed_as="same:key"),
                           _replay("sha256:skipped", "skipped_unchanged"),
                           _replay("sha256:never-quarantined", "synced")])
    assert {q["message_key"] for q in store.quarantined()} == {"sha256:retry", "same:key"}
    assert store.outcome_counts() == {"quarantined": 2, R.REPLAYED: 1, "synced": 1, "skipped_unchanged": 1}
    rows = {r["message_key"]: r for r in store._query("select * from messages")}
    assert rows["sha256:synced"]["body"] is None and rows["sha256:synced"]["sqs_message_id"] is None
    assert rows["sha256:synced"]["resource_type"] == "person" and rows["sha256:synced"]["attempts"] == 2
    assert rows["sha256:again"]["body"] is None        # the real key's row holds it now
    assert "sha256:never-quarantined" not in rows      # only quarantined rows are settled
    assert store.drop_quarantined("sha256:synced", reason="r", who="w") is None


def test_replay_through_the_cli_settles_a_message_quarantined_before_it_parsed(tmp_path, emu, memq):
    # The cause: the topic is not allowed, so the envelope is refused before it is parsed.
    cfg = write_config(tmp_path, emu, memq, sqs__allowed_topic_arns=["arn:aws:sns:us-east-1:123456789012:other"])
    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    status = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    [q] = status["quarantined"]
    assert q["message_id"].startswith("sha256:") and "allowed_topic_arns" in q["reason"]

    # Fix the cause, replay that message by its id.
    cfg = write_config(tmp_path, emu, memq, sqs__allowed_topic_arns=[memq.topic_arn], **same_state(cfg))
    res = cli("replay", "--config", str(cfg), "--message-id", q["message_id"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(emu.org.records("Campaign")) == 1
    status = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert status["quarantined"] == [] and "quarantined" not in status["counts"]
    assert status["counts"]["synced"] == 2       # the row replayed and the message under its real key
