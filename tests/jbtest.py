"""Shared test helpers (import as `from jbtest import ...`; conftest.py holds the fixtures): the Salesforce emulator over HTTPS, a moto server over HTTP, configs, the CLI.

Real protocols only: the connector talks to moto with boto3 (endpoint URL) and to the emulator
with simple-salesforce over TLS, exactly as it talks to AWS and Salesforce in production.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from connector_devkit.emulator import Emulator
from connector_devkit.emulator.faults import Faults
from connector_devkit.emulator.org import Org

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = json.loads((FIXTURES / "jomablue-samples.json").read_text(encoding="utf-8"))
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    # requests lets these override Session.verify; AWS calls must never leave the machine.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)


def sample(kind: str, **changes: Any) -> dict[str, Any]:
    """A deep copy of a sample payload; changes are dotted paths → values."""
    msg = copy.deepcopy(SAMPLES[kind])
    for path, value in changes.items():
        node = msg
        parts = path.split("__")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return msg


@pytest.fixture(scope="session")
def emulator_server():
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(emulator_server):
    """The emulator with a brand-new org, no faults and zeroed counters."""
    emulator_server.org = Org(daily_limit=100_000)
    emulator_server.faults = Faults()
    emulator_server.reset_counters()
    return emulator_server


@pytest.fixture(scope="session")
def moto_endpoint():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Aws:
    """A fresh SNS topic → SQS queue pair on the moto server."""

    def __init__(self, endpoint: str, raw: bool = False) -> None:
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", **kw)
        self.sns = boto3.client("sns", **kw)
        name = "jb-" + uuid.uuid4().hex[:10]
        self.queue_url = self.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.topic_arn = self.sns.create_topic(Name=name)["TopicArn"]
        attrs = {"RawMessageDelivery": "true"} if raw else {}
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attrs)

    def publish(self, payload: dict[str, Any]) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(payload, ensure_ascii=False),
                         MessageAttributes={"resource_type": {"DataType": "String",
                                                              "StringValue": payload.get("resource_type", "")}})

    def send_raw(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def depth(self) -> int:
        """Messages still in the queue, visible or not."""
        a = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def aws(moto_endpoint):
    return Aws(moto_endpoint)


def write_config(tmp_path: Path, emu: Emulator, aws: Aws, **overrides: Any) -> Path:
    """A config file for the CLI pointing at the emulator and the moto queue."""
    cfg: dict[str, Any] = {
        "sqs": {"queue_url": aws.queue_url, "region": "us-east-1", "endpoint_url": aws.endpoint,
                "wait_seconds": 1, "visibility_timeout": 30},
        "salesforce": {
            "instance_url": emu.url, "api_version": "62.0", "ca_bundle": emu.ca_path,
            "auth": {"method": "client_credentials", "login_url": emu.url,
                     "client_id": emu.client_id, "client_secret": "${SF_CLIENT_SECRET}"},
            "requests_per_second": 200, "max_in_flight": 4, "daily_api_budget": 0.8,
            "retry_base_seconds": 0.05, "retry_max_wait_seconds": 0.5,
        },
        "state": {"path": "state/connector.db"},
    }
    if os.environ.get("CONNECTOR_TEST_STATE") == "postgres" and "state__path" not in overrides:
        # The same end-to-end tests against the shared store: CONNECTOR_TEST_STATE=postgres pytest tests/e2e
        cfg["state"] = {"url": _postgres_state_url()}
    for dotted, value in overrides.items():
        node = cfg
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `connector` command in a subprocess."""
    full_env = {**os.environ, **AWS_ENV, "SF_CLIENT_SECRET": "emulator-secret", "PYTHONIOENCODING": "utf-8"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, encoding="utf-8")


def log_lines(stderr: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


_PG_SCHEMAS: list[str] = []


def _postgres_state_url() -> str:
    """A fresh schema on the test PostgreSQL server (dropped when the test process exits)."""
    import atexit

    from pgtest import drop_schema, require_postgres, schema_url

    require_postgres()
    if not _PG_SCHEMAS:
        atexit.register(lambda: [drop_schema(s) for s in _PG_SCHEMAS])
    _PG_SCHEMAS.append("jbtest_" + uuid.uuid4().hex[:12])
    return schema_url(_PG_SCHEMAS[-1])
