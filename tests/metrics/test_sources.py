"""Where the numbers come from: SQS's SentTimestamp and the queue/DLQ depths (moto), the SNS
envelope's Timestamp, and the readiness parts SQS and the Salesforce login."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import boto3
from jbtest import attach_dlq, make_config, sample
from metricprobe import free_port, get

from connector.config import SqsConfig
from connector.metrics.run import RunMetrics, publish_time
from connector.queue import MemoryQueue, Received, SqsQueue
from connector.wiring import wire


def _sqs_with_dlq(endpoint: str) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="jb-" + uuid.uuid4().hex[:10])["QueueUrl"]
    return sqs, url, attach_dlq(sqs, url, 3)


def test_sqs_receives_carry_sent_timestamp_and_depths_read_the_dlq(moto_endpoint):
    sqs, url, dlq = _sqs_with_dlq(moto_endpoint)
    before = time.time()
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"body {n}")
    sqs.send_message(QueueUrl=dlq, MessageBody="dead")
    queue = SqsQueue(SqsConfig(queue_url=url, region="us-east-1", endpoint_url=moto_endpoint, wait_seconds=0))
    assert queue.depths() == (3, 0, 1)
    [first] = queue.receive(1, 0, 30)
    assert isinstance(first, Received) and first.sent_at is not None
    assert before - 5 <= first.sent_at <= time.time() + 5      # SentTimestamp is epoch milliseconds
    assert publish_time(first) == first.sent_at                 # a raw body: SQS's time
    assert queue.depths() == (2, 1, 1)


def test_a_queue_without_a_redrive_policy_has_no_dlq_depth(moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="jb-" + uuid.uuid4().hex[:10])["QueueUrl"]
    queue = SqsQueue(SqsConfig(queue_url=url, region="us-east-1", endpoint_url=moto_endpoint))
    assert queue.depths().dead_letter is None


def test_the_sns_timestamp_wins_over_sent_timestamp():
    envelope = sample("sns_envelope_person")
    ib = Received(handle="h", body=json.dumps(envelope), sent_at=1.0)
    assert envelope["Timestamp"] == "2025-09-10T23:04:51.302Z"
    assert publish_time(ib) == datetime(2025, 9, 10, 23, 4, 51, 302000, tzinfo=timezone.utc).timestamp()
    assert publish_time(Received(handle="h", body="not json {", sent_at=None)) is None


def test_readyz_names_sqs_and_the_salesforce_login(emu, tmp_path):
    class Unreachable(MemoryQueue):
        def depths(self) -> Any:
            raise ConnectionError("Could not connect to the endpoint URL")

    cfg = make_config(emu, tmp_path / "s.db", metrics__port=free_port(),
                      salesforce__auth__client_secret="not-the-secret")
    wired = wire(cfg)
    queue = Unreachable()
    metrics = RunMetrics.start(cfg, wired, queue, service=True)
    try:
        code, body = get(metrics.server.port, "/readyz")
    finally:
        metrics.close()
    assert code == 503
    failing = json.loads(body)["failing"]
    assert sorted(failing) == ["salesforce_login", "sqs"], failing
    assert "not-the-secret" not in body


def test_sqs_retries_are_counted():
    from connector.errors import QueueUnavailable
    from connector.metrics.registry import ConnectorMetrics

    queue = SqsQueue(SqsConfig(queue_url="http://127.0.0.1:9/123456789012/gone", region="us-east-1",
                               endpoint_url="http://127.0.0.1:9", retry_attempts=3, retry_base_seconds=0.01,
                               retry_max_wait_seconds=0.02))
    try:
        queue.receive(1, 0, 30)
    except QueueUnavailable:
        pass
    else:
        raise AssertionError("a closed port answered")
    assert queue.retries == 2                  # three attempts: two repeats
    m = ConnectorMetrics()
    m.read_sqs_retries(queue.retries)
    m.read_sqs_retries(queue.retries)          # read twice, counted once
    assert m.value("jomablue_connector_sqs_retries_total") == 2
