"""A bad queue is never a success: SQS failures are classified once, each class ends the way the
operator contract says (fatal 1, back off then 75, or logged and left to redelivery), never in a
traceback. Against a real moto server over HTTP (the command in process); the unreachable endpoint is
a closed loopback port."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from jbtest import cli, log_lines, make_config, sample, write_config

from connector.config import Config
from connector.errors import FatalError, QueueUnavailable
from connector.queue import MemoryQueue, SqsQueue, classify
from connector.runner import Runner
from connector.wiring import wire

FAST_RETRIES = {"sqs__retry_attempts": 3, "sqs__retry_base_seconds": 0.01, "sqs__retry_max_wait_seconds": 0.05}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "ReceiveMessage")


@pytest.mark.parametrize("exc,fatal", [
    (_client_error("AWS.SimpleQueueService.NonExistentQueue", 400), True),
    (_client_error("AccessDenied", 403), True),
    (_client_error("InvalidClientTokenId", 403), True),
    (_client_error("InvalidParameterValue", 400), True),
    (_client_error("ThrottlingException", 400), False),
    (_client_error("RequestThrottled", 403), False),
    (_client_error("InternalError", 500), False),
    (NoCredentialsError(), True),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), False),
])
def test_every_sqs_failure_is_classified(exc, fatal):
    assert classify(exc).fatal is fatal


def test_a_queue_that_does_not_exist_is_fatal_naming_the_url_and_the_code(tmp_path, emu, aws):
    url = aws.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    cfg = write_config(tmp_path, emu, aws, sqs__queue_url=url)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 1, res.stderr
    assert url in res.stderr and "AWS.SimpleQueueService.NonExistentQueue" in res.stderr
    assert "Traceback" not in res.stderr
    assert any(line.get("level") == "error" for line in log_lines(res.stderr))


def test_an_unreachable_endpoint_backs_off_then_exits_75_under_drain(tmp_path, emu, aws):
    cfg = write_config(tmp_path, emu, aws, sqs__endpoint_url=f"http://127.0.0.1:{_closed_port()}", **FAST_RETRIES)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert "EndpointConnectionError" in res.stderr and "Traceback" not in res.stderr
    retries = [line for line in log_lines(res.stderr) if line.get("event") == "sqs_retry"]
    assert [r["attempt"] for r in retries] == [1, 2]          # three attempts, two back-offs


def test_missing_credentials_are_fatal(tmp_path, emu, aws, monkeypatch):
    cfg = write_config(tmp_path, emu, aws)
    # As in a new process: boto3's default session has no credentials resolved (it keeps the first ones).
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)
    res = cli("run", "--config", str(cfg), "--drain", env={
        "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true"})
    assert res.returncode == 1, res.stderr
    assert "NoCredentialsError" in res.stderr and aws.queue_url in res.stderr
    assert "Traceback" not in res.stderr


def test_drain_reports_success_only_after_a_receive(tmp_path, emu):
    cfg = make_config(emu, tmp_path / "s.db")
    w = wire(cfg)
    assert asyncio.run(Runner(w.engine, MemoryQueue(), cfg.sqs, drain=True).run()).exit_code == 0
    # Bounded to nothing: no receive happened, so "the queue is empty" is not known.
    result = asyncio.run(Runner(w.engine, MemoryQueue(), cfg.sqs, drain=True, max_seconds=0).run())
    assert result.exit_code == 75 and "no receive" in result.reason


def _sqs_queue(url: str, endpoint: str) -> SqsQueue:
    return SqsQueue(Config.model_validate({
        "sqs": {"queue_url": url, "region": "us-east-1", "endpoint_url": endpoint, "retry_attempts": 2,
                "retry_base_seconds": 0.01, "retry_max_wait_seconds": 0.02},
        "salesforce": {"instance_url": "https://x", "auth": {"method": "access_token", "access_token": "t"}},
    }).sqs)


def test_queue_calls_classify_at_the_adapter(aws):
    q = _sqs_queue(aws.queue_url, aws.endpoint)
    aws.send_raw("{}")
    [m] = q.receive(10, 1, 30)
    failed = q.delete([m.handle, "not-a-receipt-handle"])
    assert [(f.handle, f.code, f.fatal) for f in failed] == [("not-a-receipt-handle", "ReceiptHandleIsInvalid", False)]
    assert aws.depth() == 0
    gone = _sqs_queue(aws.queue_url + "-gone", aws.endpoint)
    with pytest.raises(FatalError, match="NonExistentQueue"):
        gone.receive(1, 0, 30)
    [f] = gone.change_visibility(["h"], 0)           # never raises: the code, marked fatal
    assert f.fatal and "NonExistentQueue" in f.code
    dead = _sqs_queue(aws.queue_url, f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(QueueUnavailable, match="EndpointConnectionError"):
        dead.receive(1, 0, 30)
    assert [f.code for f in dead.delete(["h1", "h2"])] == ["EndpointConnectionError"] * 2


def test_a_failed_delete_is_logged_and_left_to_redelivery(tmp_path, emu, aws):
    """The SQS endpoint goes away while Salesforce works on a batch: the batch lands, the delete
    fails with a warning (count and code), the drain ends 75, and the messages are still queued."""
    import logging

    from moto.server import ThreadedMotoServer
    from structlog.testing import capture_logs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)   # moto's state is per process
    server.start()
    host, port = server.get_host_and_port()
    aws.send_raw(json.dumps(sample("event")))
    aws.send_raw(json.dumps(sample("person")))
    cfg = Config.model_validate({
        "sqs": {"queue_url": aws.queue_url, "region": "us-east-1", "endpoint_url": f"http://{host}:{port}",
                "wait_seconds": 1, "retry_attempts": 2, "retry_base_seconds": 0.01, "retry_max_wait_seconds": 0.02},
        "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                       "auth": {"method": "client_credentials", "login_url": emu.url,
                                "client_id": emu.client_id, "client_secret": emu.client_secret},
                       "requests_per_second": 1000},
        "state": {"path": str(tmp_path / "s.db")},
    })
    w = wire(cfg)
    process = w.engine.process

    async def process_then_lose_sqs(batch):
        outcomes = await process(batch)
        server.stop()
        return outcomes

    w.engine.process = process_then_lose_sqs
    with capture_logs() as lines:
        result = asyncio.run(Runner(w.engine, SqsQueue(cfg.sqs), cfg.sqs, drain=True).run())
    assert result.exit_code == 75 and "EndpointConnectionError" in result.reason
    assert result.counts["synced"] == 2 and len(emu.org.records("CampaignMember")) == 1
    [warning] = [line for line in lines if line.get("event") == "delete_failed"]
    assert (warning["log_level"], warning["count"], warning["error_code"]) == ("warning", 2, "EndpointConnectionError")
    assert aws.depth() == 2                                  # left to redelivery


def test_a_service_pauses_on_an_unreachable_queue_instead_of_spinning_or_dying(tmp_path, emu):
    from structlog.testing import capture_logs

    cfg = Config.model_validate({
        "sqs": {"queue_url": "http://127.0.0.1/123456789012/q", "region": "us-east-1",
                "endpoint_url": f"http://127.0.0.1:{_closed_port()}", "wait_seconds": 1,
                "retry_attempts": 2, "retry_base_seconds": 0.01, "retry_max_wait_seconds": 0.02},
        "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                       "auth": {"method": "client_credentials", "login_url": emu.url,
                                "client_id": emu.client_id, "client_secret": emu.client_secret}},
        "state": {"path": str(tmp_path / "s.db")},
    })
    w = wire(cfg)

    async def serve():
        runner = Runner(w.engine, SqsQueue(cfg.sqs), cfg.sqs, drain=False)
        runner.outage_pause_seconds = 0.05
        task = asyncio.create_task(runner.run())
        while sum(1 for x in lines if x["event"] == "paused") < 2:
            await asyncio.sleep(0.05)
        runner.stop.set()
        return await asyncio.wait_for(task, timeout=30)

    with capture_logs() as lines:
        result = asyncio.run(asyncio.wait_for(serve(), timeout=60))
    assert result.exit_code == 0                       # stopped cleanly, as asked
    paused = [x for x in lines if x["event"] == "paused"]
    assert "EndpointConnectionError" in paused[0]["reason"] and paused[0]["log_level"] == "warning"
    # Each pause follows a full round of back-off: two attempts, one retry line, per round.
    assert sum(1 for x in lines if x["event"] == "sqs_retry") >= 2
