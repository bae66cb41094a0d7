"""Reliability end to end: crashes, outages, the budget guard, token expiry, signals, raw delivery.

The real CLI in a subprocess, SNS → SQS on moto, the Salesforce emulator over HTTPS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from jbtest import AWS_ENV, Aws, log_lines, run_cli, sample, write_config

pytestmark = pytest.mark.e2e


def _person(n: int) -> dict:
    return sample("person", identifiers__id=f"acme/event_person/{1000 + n}",
                  identifiers__email=f"p{n}@example.com", identifiers__organisation_uid="",
                  identifiers__last_name=f"Person{n}")


def _publish_people(aws: Aws, n: int) -> set[str]:
    aws.publish(sample("event"))
    ids = set()
    for i in range(n):
        p = _person(i)
        aws.publish(p)
        ids.add(p["identifiers"]["id"])
    return ids


def _popen(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **AWS_ENV, "SF_CLIENT_SECRET": "emulator-secret", "PYTHONIOENCODING": "utf-8"}
    return subprocess.Popen([sys.executable, "-m", "connector", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, encoding="utf-8")


def _assert_exactly_once(emu, ids: set[str]) -> None:
    leads = Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))
    assert set(leads) == ids, set(leads) ^ ids
    assert max(leads.values()) == 1, [k for k, v in leads.items() if v > 1]
    members = Counter(r["Jomablue_Id__c"] for r in emu.org.records("CampaignMember"))
    assert set(members) == ids
    assert max(members.values()) == 1
    assert len(emu.org.records("Campaign")) == 1


def _drain_to_the_end(cfg, emu, aws, ids: set[str]):
    """A --drain run that must sync everything: exit 0, empty queue, each person exactly once."""
    res = run_cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert aws.depth() == 0
    _assert_exactly_once(emu, ids)
    return res


def _outcomes(stderr: str) -> Counter[str]:
    return Counter(line["outcome"] for line in log_lines(stderr) if line.get("event") == "message")


def _wait_visible(aws: Aws, timeout: float = 20) -> None:
    """Wait until no message is in flight (the killed run's visibility timeout ran out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url,
                                         AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        if int(a["ApproximateNumberOfMessagesNotVisible"]) == 0:
            return
        time.sleep(0.5)
    raise AssertionError("messages stayed in flight")


def test_sigkill_mid_run_loses_and_duplicates_nothing(tmp_path, emu, aws):
    ids = _publish_people(aws, 60)
    cfg = write_config(tmp_path, emu, aws, sqs__visibility_timeout=10, sqs__batch_messages=10)
    emu.faults.latency_ms = 50
    proc = _popen("run", "--config", str(cfg), "--drain")
    time.sleep(1.5)
    assert proc.poll() is None, "the run finished before it could be killed; raise the latency"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    half_done = len(emu.org.records("CampaignMember"))
    assert half_done < 60, "nothing left to do after the kill"
    assert aws.depth() > 0
    emu.faults.latency_ms = 0
    _wait_visible(aws)
    _drain_to_the_end(cfg, emu, aws, ids)


def test_short_503_storm_only_delays(tmp_path, emu, aws):
    ids = _publish_people(aws, 5)
    cfg = write_config(tmp_path, emu, aws)
    emu.faults.fail_next(4, 503)
    res = _drain_to_the_end(cfg, emu, aws, ids)
    assert _outcomes(res.stderr)["synced"] == 6


def test_storm_longer_than_retries_exits_75_and_a_later_run_syncs(tmp_path, emu, aws):
    ids = _publish_people(aws, 5)
    cfg = write_config(tmp_path, emu, aws, salesforce__retry_attempts=3)
    emu.faults.fail_next(1000, 503)
    res = run_cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert aws.depth() == 6
    assert emu.org.records("Lead") == []
    emu.faults.clear()
    _drain_to_the_end(cfg, emu, aws, ids)    # released at once: no visibility wait


def test_budget_guard_stops_with_messages_queued_and_duplicates_nothing(tmp_path, emu, aws):
    ids = _publish_people(aws, 20)
    cfg = write_config(tmp_path, emu, aws, sqs__batch_messages=5)
    emu.org.set_api_usage(79_999, 100_000)
    res = run_cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert aws.depth() > 0
    summary = [line for line in log_lines(res.stderr) if line.get("event") == "run_summary"][-1]
    assert "budget" in (summary.get("reason") or "")
    status = json.loads(run_cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert status["api_usage"]["max"] == 100_000 and status["api_usage"]["used"] >= 80_000
    # No duplicates from the partial work; a run after the budget resets finishes the job.
    leads = Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))
    assert not leads or max(leads.values()) == 1
    assert len(emu.org.records("Lead")) < 20
    # A run right after, while the org is still spent, looks once (/limits past the guard) and
    # stops without spending anything else.
    emu.reset_counters()
    res = run_cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert dict(emu.calls_by_kind) == {"limits": 1}
    # The window moved on: the next run does not trust the stored "spent" reading, it looks
    # again (issue 10) and finishes the job.
    emu.org.set_api_usage(0, 100_000)
    emu.reset_counters()
    res = _drain_to_the_end(cfg, emu, aws, ids)
    assert emu.calls_by_kind["limits"] == 1


def test_token_expiry_mid_run_with_client_credentials(tmp_path, emu, aws):
    ids = _publish_people(aws, 30)
    cfg = write_config(tmp_path, emu, aws, sqs__batch_messages=5)
    emu.faults.latency_ms = 30
    proc = _popen("run", "--config", str(cfg), "--drain")
    deadline = time.monotonic() + 10
    while not emu.org.records("Lead") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None
    tokens_before = len(emu._tokens)
    emu.faults.expire_tokens()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(emu._tokens) > tokens_before, "the connector never fetched a new token"
    assert aws.depth() == 0
    _assert_exactly_once(emu, ids)


def test_sigterm_without_drain_exits_0_and_releases_messages(tmp_path, emu, aws):
    ids = _publish_people(aws, 40)
    # A long visibility timeout: only an explicit release makes the messages visible quickly.
    cfg = write_config(tmp_path, emu, aws, sqs__visibility_timeout=300, sqs__batch_messages=10)
    emu.faults.latency_ms = 50
    proc = _popen("run", "--config", str(cfg))
    deadline = time.monotonic() + 10
    while not emu.org.records("Lead") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    emu.faults.latency_ms = 0
    assert aws.depth() > 0, "the run finished everything before SIGTERM"
    a = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url,
                                     AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert int(a["ApproximateNumberOfMessagesNotVisible"]) == 0
    _drain_to_the_end(cfg, emu, aws, ids)


def test_raw_message_delivery_works_the_same(tmp_path, emu, moto_endpoint):
    aws = Aws(moto_endpoint, raw=True)
    ids = _publish_people(aws, 3)
    aws.publish(_person(0))      # a redelivery, raw
    cfg = write_config(tmp_path, emu, aws)
    res = _drain_to_the_end(cfg, emu, aws, ids)
    assert _outcomes(res.stderr) == Counter(synced=4, skipped=1)


def test_max_messages_bounds_a_run(tmp_path, emu, aws):
    _publish_people(aws, 9)
    cfg = write_config(tmp_path, emu, aws)
    res = run_cli("run", "--config", str(cfg), "--drain", "--max-messages", "4")
    assert res.returncode == 0, res.stderr
    assert sum(_outcomes(res.stderr).values()) == 4
    assert aws.depth() == 6
