"""Hostile bodies end to end: `connector run` (in process) against moto (SNS → SQS) and the emulator.

One run drains a queue holding valid messages and hostile ones delivered every way they can
arrive (through the allowed SNS topic, straight into the queue, 1 MiB bodies): exit 0, the queue is
empty, each hostile body is quarantined with its field and the replay command, the valid ones sync.
"""

from __future__ import annotations

import json

import pytest
from jbtest import cli, log_lines, sample, write_config

from .corpus import corpus, envelope, person, text

pytestmark = pytest.mark.e2e

# Jomablue-level cases published through SNS (SNS refuses messages over 256 KiB).
THROUGH_SNS = ["nested 10,000 deep", "nested 300 deep inside data", "integer of 5,000 digits", "NaN constant",
               "generated_at year 1 with offset", "generated_at year 9999", "check-in year 9999 with offset",
               "categories a number", "categories a boolean", "email a number", "event_id null",
               "100 KB email", "truncated JSON", "JSON list", "lone surrogate in a name", "right-to-left text",
               "SOQL metacharacters", "escaped control characters"]


def _messages(stderr: str) -> list[dict]:
    return [line for line in log_lines(stderr) if line.get("event") == "message"]


def test_hostile_bodies_through_the_cli_are_quarantined_and_the_rest_syncs(tmp_path, emu, aws):
    cfg = write_config(tmp_path, emu, aws, sqs__allowed_topic_arns=[aws.topic_arn])
    cases = {c.name: c for c in corpus()}
    aws.publish(sample("event"))
    aws.publish(person(200))
    expected: dict[str, str | None] = {}          # case → field (None: must sync)
    for name in THROUGH_SNS:
        aws.sns.publish(TopicArn=aws.topic_arn, Message=cases[name].body)
        # Inside an envelope, a problem with the text as a whole names the SNS Message, not the body.
        expected[name] = "Message" if cases[name].field == "body" else cases[name].field
    # Straight into the queue: no envelope (refused: allow-list without raw_delivery), a lower-case
    # Type, a foreign topic, and bodies of 1 MiB.
    aws.send_raw(text(person(201)))
    aws.send_raw(envelope(text(person(202)), topic=aws.topic_arn, Type="notification"))
    aws.send_raw(envelope(text(person(203)), topic=aws.topic_arn + "-other"))
    aws.send_raw(envelope(cases["1 MiB body"].body[: (1 << 20) - 400], topic=aws.topic_arn))
    aws.send_raw(cases["1 MiB body"].body)
    aws.publish(person(204))

    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr[-3000:]
    assert aws.depth() == 0

    lines = _messages(res.stderr)
    quarantined = [m for m in lines if m["outcome"] == "quarantined"]
    fields = sorted(m["field"] for m in quarantined)
    # raw person, lower-case Type, foreign topic, 1 MiB envelope, 1 MiB raw body (no envelope: refused first)
    want = sorted([f for f in expected.values() if f] + ["Type", "Type", "TopicArn", "Message", "Type"])
    assert fields == want, fields
    for m in quarantined:
        assert m["field"] in m["reason"], m
        assert m["replay"].endswith(f"--message-id {m['message_id']}"), m
    leads = {r["Jomablue_Id__c"]: r for r in emu.org.records("Lead")}
    synced_cases = {cases[n].jid for n, f in expected.items() if f is None}
    assert set(leads) == {"acme/event_person/h200", "acme/event_person/h204"} | synced_cases
    assert leads["acme/event_person/h61"]["FirstName"] == "Jane\ufffd"
    summary = [line for line in log_lines(res.stderr) if line.get("event") == "run_summary"][0]
    assert summary["counts"]["quarantined"] == len(quarantined)

    status = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert sorted(q["field"] for q in status["quarantined"]) == want

    # A rerun on the drained queue is clean, and the quarantined ones stay put (still bad on replay).
    again = cli("run", "--config", str(cfg), "--drain")
    assert again.returncode == 0, again.stderr[-2000:]
    one = status["quarantined"][0]["message_id"]
    rep = cli("replay", "--config", str(cfg), "--message-id", one)
    assert rep.returncode == 1 and "quarantined" in rep.stdout, rep.stdout + rep.stderr


def test_raw_delivery_with_an_allow_list_is_refused_until_configured_then_replayed(tmp_path, emu, memq):
    memq.raw = True      # what a RawMessageDelivery subscription puts in the queue: the payload itself
    strict = write_config(tmp_path, emu, memq, sqs__allowed_topic_arns=[memq.topic_arn])
    memq.publish(sample("event"))
    res = cli("run", "--config", str(strict), "--drain")
    assert res.returncode == 0, res.stderr[-2000:]
    [line] = _messages(res.stderr)
    assert line["outcome"] == "quarantined" and line["field"] == "Type" and "raw_delivery" in line["reason"]

    (tmp_path / "config.yaml").rename(tmp_path / "strict.yaml")
    relaxed = write_config(tmp_path, emu, memq, sqs__allowed_topic_arns=[memq.topic_arn], sqs__raw_delivery=True)
    memq.publish(person(210))
    res = cli("run", "--config", str(relaxed), "--drain")
    assert res.returncode == 0, res.stderr[-2000:]
    assert [m["outcome"] for m in _messages(res.stderr)] == ["synced"]
    # The operator fixed the configuration: the quarantined event replays.
    rep = cli("replay", "--config", str(relaxed), "--all")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Campaign")] == ["acme/event/521"]
