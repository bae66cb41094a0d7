"""Reliability end to end: crashes, outages, the budget guard, token expiry, signals, raw delivery.

The Salesforce emulator over HTTPS throughout. Outages, the budget and token expiry run the
`connector` command in process on the in-memory queue; what needs a real process (SIGKILL, SIGTERM)
runs the command in a subprocess against moto, and raw delivery goes through moto's SNS → SQS wire
with the command in process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from jbtest import AWS_ENV, Aws, MemSqs, cli, log_lines, sample, write_config

pytestmark = pytest.mark.e2e


def _person(n: int) -> dict:
    return sample("person", identifiers__id=f"acme/event_person/{1000 + n}",
                  identifiers__email=f"p{n}@example.com", identifiers__organisation_uid="",
                  identifiers__last_name=f"Person{n}")


def _publish_people(aws: Aws | MemSqs, n: int) -> set[str]:
    people = [_person(i) for i in range(n)]
    aws.publish_many([sample("event"), *people])
    return {p["identifiers"]["id"] for p in people}


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


def _drain_to_the_end(cfg, emu, aws: Aws | MemSqs, ids: set[str], command=cli):
    """A --drain run that must sync everything: exit 0, empty queue, each person exactly once.
    In process (`cli`) unless told otherwise; on moto (`Aws`) or the in-memory queue (`MemSqs`)."""
    res = command("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert aws.depth() == 0
    _assert_exactly_once(emu, ids)
    return res


def _wait_until_under_way(emu, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the run has written its first Lead (a batch is in flight), however slow its start-up."""
    deadline = time.monotonic() + timeout
    while not emu.org.records("Lead"):
        assert proc.poll() is None, "the run ended before it wrote anything"
        assert time.monotonic() < deadline, "the run wrote nothing"
        time.sleep(0.02)


def _outcomes(stderr: str) -> Counter[str]:
    return Counter(line["outcome"] for line in log_lines(stderr) if line.get("event") == "message")


@pytest.mark.process
def test_sigkill_mid_run_loses_and_duplicates_nothing(tmp_path, emu, aws):
    ids = _publish_people(aws, 30)
    cfg = write_config(tmp_path, emu, aws, sqs__visibility_timeout=10, sqs__batch_messages=10)
    emu.faults.latency_ms = 50
    proc = _popen("run", "--config", str(cfg), "--drain")
    _wait_until_under_way(emu, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    half_done = len(emu.org.records("CampaignMember"))
    assert half_done < 30, "nothing left to do after the kill"
    assert aws.depth() > 0
    emu.faults.latency_ms = 0
    aws.expire_visibility()          # the killed run's visibility timeout passes
    _drain_to_the_end(cfg, emu, aws, ids)   # the next run (in process) finds them all


def test_short_503_storm_only_delays(tmp_path, emu, memq):
    ids = _publish_people(memq, 5)
    cfg = write_config(tmp_path, emu, memq)
    emu.faults.fail_next(4, 503)
    res = _drain_to_the_end(cfg, emu, memq, ids)
    assert _outcomes(res.stderr)["synced"] == 6


def test_storm_longer_than_retries_exits_75_and_a_later_run_syncs(tmp_path, emu, memq):
    ids = _publish_people(memq, 5)
    cfg = write_config(tmp_path, emu, memq, salesforce__retry_attempts=3)
    emu.faults.fail_next(1000, 503)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert memq.depth() == 6
    assert emu.org.records("Lead") == []
    emu.faults.clear()
    _drain_to_the_end(cfg, emu, memq, ids)    # released at once: no visibility wait


def test_budget_guard_stops_with_messages_queued_and_duplicates_nothing(tmp_path, emu, memq):
    ids = _publish_people(memq, 20)
    cfg = write_config(tmp_path, emu, memq, sqs__batch_messages=5)
    emu.org.set_api_usage(79_999, 100_000)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert memq.depth() > 0
    summary = [line for line in log_lines(res.stderr) if line.get("event") == "run_summary"][-1]
    assert "budget" in (summary.get("reason") or "")
    status = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert status["api_usage"]["max"] == 100_000 and status["api_usage"]["used"] >= 80_000
    # No duplicates from the partial work; a run after the budget resets finishes the job.
    leads = Counter(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))
    assert not leads or max(leads.values()) == 1
    assert len(emu.org.records("Lead")) < 20
    # A run right after, while the org is still spent, looks once (/limits past the guard) and
    # stops without spending anything else.
    emu.reset_counters()
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert dict(emu.calls_by_kind) == {"limits": 1}
    # The window moved on: the next run does not trust the stored "spent" reading, it looks
    # again (issue 10) and finishes the job.
    emu.org.set_api_usage(0, 100_000)
    emu.reset_counters()
    res = _drain_to_the_end(cfg, emu, memq, ids)
    assert emu.calls_by_kind["limits"] == 1


def test_token_expiry_mid_run_with_client_credentials(tmp_path, emu, memq):
    ids = _publish_people(memq, 30)
    cfg = write_config(tmp_path, emu, memq, sqs__batch_messages=5)
    emu.faults.latency_ms = 30
    expired: dict[str, int] = {}

    def expire_once_the_run_is_under_way() -> None:
        deadline = time.monotonic() + 30
        while not emu.org.records("Lead") and time.monotonic() < deadline:
            time.sleep(0.02)
        expired.update(tokens=len(emu._tokens), leads=len(emu.org.records("Lead")))
        emu.faults.expire_tokens()

    watcher = threading.Thread(target=expire_once_the_run_is_under_way)
    watcher.start()
    res = cli("run", "--config", str(cfg), "--drain")
    watcher.join()
    assert res.returncode == 0, res.stderr
    assert 0 < expired["leads"] < len(ids), "the tokens did not expire in the middle of the run"
    assert len(emu._tokens) > expired["tokens"], "the connector never fetched a new token"
    assert memq.depth() == 0
    _assert_exactly_once(emu, ids)


@pytest.mark.process
def test_sigterm_without_drain_exits_0_and_releases_messages(tmp_path, emu, aws):
    ids = _publish_people(aws, 30)
    # A long visibility timeout: only an explicit release makes the messages visible quickly.
    # A service long-polls (wait_seconds 1) rather than spin on an empty queue.
    service = write_config(tmp_path, emu, aws, sqs__visibility_timeout=300, sqs__batch_messages=10,
                           sqs__wait_seconds=1)
    emu.faults.latency_ms = 50
    proc = _popen("run", "--config", str(service))
    _wait_until_under_way(emu, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    emu.faults.latency_ms = 0
    assert aws.depth() > 0, "the run finished everything before SIGTERM"
    assert aws.in_flight() == 0
    _drain_to_the_end(write_config(tmp_path, emu, aws), emu, aws, ids)     # same state, no long poll


def test_raw_message_delivery_works_the_same(tmp_path, emu, moto_endpoint):
    aws = Aws(moto_endpoint, raw=True)
    ids = _publish_people(aws, 3)
    aws.publish(_person(0))      # a redelivery, raw
    cfg = write_config(tmp_path, emu, aws)
    res = _drain_to_the_end(cfg, emu, aws, ids)
    assert _outcomes(res.stderr) == Counter(synced=4, skipped=1)


def test_max_messages_bounds_a_run(tmp_path, emu, memq):
    _publish_people(memq, 9)
    cfg = write_config(tmp_path, emu, memq)
    res = cli("run", "--config", str(cfg), "--drain", "--max-messages", "4")
    assert res.returncode == 0, res.stderr
    assert sum(_outcomes(res.stderr).values()) == 4
    assert memq.depth() == 6
