"""`connector status --check`: one line per breached threshold and exit 1, or `ok` and exit 0;
`--format json` says the same; no Salesforce credentials needed. SQS (queue and dead-letter
queue, from the queue's RedrivePolicy) is moto's."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import boto3
import pytest
from jbtest import attach_dlq, cli, open_config_state, write_config

from connector.metrics.check import parse_duration


@dataclass
class Queues:
    queue_url: str
    dlq_url: str
    endpoint: str
    client: object


@pytest.fixture
def queues(moto_endpoint) -> Queues:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="jb-" + uuid.uuid4().hex[:10])["QueueUrl"]
    return Queues(url, attach_dlq(sqs, url, 5), moto_endpoint, sqs)


def _config(tmp_path, emu, queues, **overrides):
    return write_config(tmp_path, emu, queues, **overrides)


def check(cfg, *flags: str):
    # SF_CLIENT_SECRET unset (None removes it): --check needs no Salesforce credentials, like status.
    return cli("status", "--config", str(cfg), "--check", *flags, env={"SF_CLIENT_SECRET": None})


def test_all_within_prints_ok(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues)
    res = check(cfg)
    assert (res.returncode, res.stdout) == (0, "ok\n"), res.stderr
    res = check(cfg, "--format", "json")
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and doc["ok"] is True and doc["lines"] == ["ok"]
    assert doc["values"]["dlq"] == 0 and doc["values"]["quarantined"] == 0


def test_quarantined_over_the_limit(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues)
    queues.client.send_message(QueueUrl=queues.queue_url, MessageBody="this is { not json")
    run = cli("run", "--config", str(cfg), "--drain")
    assert run.returncode == 0, run.stderr
    res = check(cfg)
    assert res.returncode == 1
    [line] = res.stdout.splitlines()
    assert line.startswith("quarantined: 1 messages (more than 0)")
    assert check(cfg, "--max-quarantined", "1").returncode == 0


def test_dead_letter_queue_over_the_limit(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues)
    for n in range(2):
        queues.client.send_message(QueueUrl=queues.dlq_url, MessageBody=f"dead {n}")
    res = check(cfg)
    assert res.returncode == 1
    [line] = res.stdout.splitlines()
    assert line.startswith("dlq: 2 messages in the dead-letter queue (more than 0)") and queues.dlq_url in line
    assert check(cfg, "--max-dlq", "2").stdout == "ok\n"


def test_last_success_older_than_max_age(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues)
    res = check(cfg, "--max-age", "30m")
    assert res.returncode == 1 and res.stdout == "age: no successful run or handled message yet\n"
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0   # an empty queue: a clean run
    assert check(cfg, "--max-age", "30m").stdout == "ok\n"
    res = check(cfg, "--max-age", "0s")
    assert res.returncode == 1 and res.stdout.startswith("age: last success ")


def test_budget_over_the_limit(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues)
    state = open_config_state(cfg)
    state.put_api_usage(85_000, 100_000)
    state.close()
    res = check(cfg)
    assert res.returncode == 1
    assert res.stdout == f"budget: 85,000/100,000 daily API requests used (85%, more than 80%) at {_seen(cfg)}\n"
    assert check(cfg, "--max-budget", "0.9").returncode == 0


def test_every_breach_is_one_line_and_json_says_the_same(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues)
    queues.client.send_message(QueueUrl=queues.dlq_url, MessageBody="dead")
    state = open_config_state(cfg)
    state.put_api_usage(99_000, 100_000)
    state.close()
    res = check(cfg, "--max-age", "1h")
    assert res.returncode == 1
    assert [line.split(":")[0] for line in res.stdout.splitlines()] == ["dlq", "age", "budget"]
    doc = json.loads(check(cfg, "--max-age", "1h", "--format", "json").stdout)
    assert doc["ok"] is False and [b["check"] for b in doc["breaches"]] == ["dlq", "age", "budget"]
    assert doc["lines"] == res.stdout.splitlines()


def test_an_unreadable_queue_is_a_breach_not_a_crash(tmp_path, emu, queues):
    cfg = _config(tmp_path, emu, queues, sqs__endpoint_url="http://127.0.0.1:9")
    res = check(cfg)
    assert res.returncode == 1 and res.stdout.startswith("dlq: cannot read the queue's depth")


def test_a_bad_duration_is_a_usage_error(tmp_path, emu, queues):
    res = check(_config(tmp_path, emu, queues), "--max-age", "soon")
    assert res.returncode == 2 and "not a duration" in res.stderr


def test_durations():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("45") == timedelta(seconds=45)
    with pytest.raises(ValueError):
        parse_duration("-1m")


def _seen(cfg) -> str:
    state = open_config_state(cfg)
    try:
        return state.api_usage()["seen_at"]
    finally:
        state.close()
