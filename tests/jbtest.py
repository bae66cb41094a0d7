"""Shared test helpers (import as `from jbtest import ...`; conftest.py holds the fixtures).

- `sample(kind, **changes)`: the one samples loader (tests/fixtures/jomablue-samples.json).
- `config_dict` / `make_config` / `write_config`: the one test configuration (dict, model, file).
- `emu`: the Salesforce emulator over HTTPS (one server per session, a fresh org per test).
- `memq` + `cli(...)`: the `connector` command in this process, consuming an in-memory queue.
  Most end-to-end tests use these: the same code from argv to exit code, no interpreter start.
- `aws` / `moto_endpoint`: SNS → SQS on one moto server per session (in this process), for what
  needs SQS's own behaviour (error codes, receive counts, redrive, queue depths) or SNS; with
  `cli(...)` the command still runs in process. These tests get the `process` marker (conftest.py).
- `run_cli(...)`: the real command in a subprocess, only for signals, crashes and the one smoke test.

Salesforce is always reached over HTTPS with simple-salesforce, SQS with boto3 over HTTP (moto),
exactly as in production; only the `memq` tests swap SQS for the in-memory queue.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import structlog
import yaml
from click.testing import CliRunner

from connector.cli import main as connector_main
from connector.config import Config
from connector.queue import ManualClock, MemoryQueue
from connector_devkit.emulator import Emulator
from connector_devkit.emulator.faults import Faults
from connector_devkit.emulator.org import Org

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = json.loads((FIXTURES / "jomablue-samples.json").read_text(encoding="utf-8"))
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


_running: dict[str, Any] = {}    # the test being run (run_cli reads its markers)


class SubprocessOutsideProcessTier(UserWarning):
    """A test outside the `process` tier started the connector in a subprocess."""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, request):
    _running["node"] = request.node
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


@pytest.fixture(scope="session", autouse=True)
def _mappings_compiled_once():
    """Each distinct mapping folder is compiled once per session, not at every wiring.

    Compiling parses the YAML with pure-Python PyYAML (about 0.1 s of CPU) and the suite wires the
    connector a few hundred times. The key is the folder and the bytes of its YAML files, so an
    edited copy is compiled afresh; errors are never cached. tests/mapping covers the compiler itself.
    """
    import connector.wiring as wiring
    from connector.mapping import default_mapping_folder

    real = getattr(wiring, "load_mapping_set", None)
    if real is None:        # wiring no longer loads mappings by this name: nothing to speed up
        yield
        return
    compiled: dict[Any, Any] = {}

    def load_once(folder: Any = None, **kwargs: Any) -> Any:
        if kwargs:
            return real(folder, **kwargs)
        path = Path(folder) if folder is not None else default_mapping_folder()
        key = (str(path.resolve()), tuple((f.name, f.read_bytes()) for f in sorted(path.glob("*.y*ml"))))
        if key not in compiled:
            compiled[key] = real(folder)
        return compiled[key]

    wiring.load_mapping_set = load_once
    yield
    wiring.load_mapping_set = real


@pytest.fixture(scope="session", autouse=True)
def _mapping_yaml_parsed_once():
    """Each distinct mapping YAML text is parsed once per session; every caller gets its own copy.

    The mapping tests, `mapping validate` and preflight compile folders outside the wiring cache
    above: hundreds of parses with pure-Python PyYAML, several seconds of the suite. The same text
    always parses to the same tree (lines included); a deep copy costs a tenth of a parse. Syntax
    errors are raised every time, never cached; tests/mapping covers the loader itself.
    """
    import connector.mapping.compiler as compiler

    real = getattr(compiler, "load_yaml", None)
    if real is None:        # the compiler no longer parses by this name: nothing to speed up
        yield
        return
    parsed: dict[str, Any] = {}

    def load_once(text: str) -> Any:
        if text not in parsed:
            parsed[text] = real(text)
        return copy.deepcopy(parsed[text])

    compiler.load_yaml = load_once
    yield
    compiler.load_yaml = real


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
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        arn = attrs["Attributes"]["QueueArn"]
        self.topic_arn = self.sns.create_topic(Name=name)["TopicArn"]
        attrs = {"RawMessageDelivery": "true"} if raw else {}
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attrs)

    def publish(self, payload: dict[str, Any]) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(payload, ensure_ascii=False),
                         MessageAttributes={"resource_type": {"DataType": "String",
                                                              "StringValue": payload.get("resource_type", "")}})

    def publish_many(self, payloads: list[dict[str, Any]]) -> None:
        """Like `publish` for each, ten to an SNS PublishBatch call."""
        for start in range(0, len(payloads), 10):
            self.sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=[
                {"Id": str(n), "Message": json.dumps(payload, ensure_ascii=False),
                 "MessageAttributes": {"resource_type": {"DataType": "String",
                                                         "StringValue": payload.get("resource_type", "")}}}
                for n, payload in enumerate(payloads[start:start + 10])])

    def send_raw(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def depth(self) -> int:
        """Messages still in the queue, visible or not."""
        a = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def in_flight(self) -> int:
        """Messages received and neither deleted nor visible again."""
        a = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                          AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessagesNotVisible"])

    def expire_visibility(self) -> None:
        """Let the visibility timeout of every in-flight message run out now, as SQS does once it has
        passed: the moto server runs in this process, so the test moves its clock instead of waiting."""
        from moto.sqs.models import sqs_backends

        account, name = self.queue_url.rstrip("/").split("/")[-2:]
        for message in sqs_backends[account]["us-east-1"].queues[name]._messages:
            message.change_visibility(0)


@pytest.fixture
def aws(moto_endpoint):
    return Aws(moto_endpoint)


# The queue's own virtual clock: its long polls move time instead of waiting.
FakeClock = ManualClock


class MemSqs:
    """The in-memory queue with the `Aws` helper's verbs: `publish` wraps the payload in the SNS
    notification envelope SNS delivers (the real SNS → SQS path is covered by the `process` tests);
    with `raw=True` it puts the payload itself, as a subscription with RawMessageDelivery does."""

    def __init__(self, raw: bool = False) -> None:
        self.raw = raw
        self.clock = FakeClock()
        self.queue = MemoryQueue(clock=self.clock)
        self.queue_url = "mem://jb-" + uuid.uuid4().hex[:10]
        self.endpoint = None
        self.topic_arn = "arn:aws:sns:us-east-1:123456789012:" + self.queue_url.removeprefix("mem://")

    def publish(self, payload: dict[str, Any]) -> None:
        """What SNS puts in the queue: the sample notification envelope around this payload."""
        if self.raw:
            self.queue.send(json.dumps(payload, ensure_ascii=False))
            return
        envelope = sample("sns_envelope_person")
        envelope.update(MessageId=str(uuid.uuid4()), TopicArn=self.topic_arn,
                        Message=json.dumps(payload, ensure_ascii=False),
                        MessageAttributes={"resource_type": {"Type": "String",
                                                             "Value": payload.get("resource_type", "")}})
        self.queue.send(json.dumps(envelope, ensure_ascii=False))

    def publish_many(self, payloads: list[dict[str, Any]]) -> None:
        for payload in payloads:
            self.publish(payload)

    def send_raw(self, body: str) -> None:
        self.queue.send(body)

    def depth(self) -> int:
        """Messages still in the queue, visible or not."""
        return len(self.queue)


@pytest.fixture
def memq(monkeypatch):
    """A fresh in-memory queue that `connector run` (in process, see `cli`) consumes instead of SQS."""
    q = MemSqs()
    monkeypatch.setattr("connector.wiring.build_queue", lambda *args, **kwargs: q.queue)
    # `status` still asks SQS for depths: a closed loopback port answers at once (an error entry)
    # instead of a lookup of the public endpoint, and no AWS call leaves the machine.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")
    return q


def attach_dlq(sqs: Any, queue_url: str, max_receives: int) -> str:
    """A dead-letter queue for `queue_url` (its RedrivePolicy set): the DLQ's URL."""
    dlq = sqs.create_queue(QueueName=queue_url.rsplit("/", 1)[1] + "-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})})
    return str(dlq)


def config_dict(emu: Emulator, queue: Any = None, *, state_path: str | Path = "state/connector.db",
                secret: str = "${SF_CLIENT_SECRET}", **overrides: Any) -> dict[str, Any]:
    """The one test configuration: the emulator, a queue (moto `Aws`, `MemSqs` or None: an unused
    in-memory URL) and short retry waits, so a retried call costs milliseconds, not seconds.

    Overrides are dotted paths with `__` (``sqs__batch_messages=5``); a value of None removes the key.
    """
    cfg: dict[str, Any] = {
        # No long poll: a --drain run ends on its first empty receive instead of waiting for one.
        "sqs": {"queue_url": getattr(queue, "queue_url", "mem://queue"), "region": "us-east-1",
                "wait_seconds": 0, "visibility_timeout": 30},
        "salesforce": {
            "instance_url": emu.url, "api_version": "62.0", "ca_bundle": emu.ca_path,
            "auth": {"method": "client_credentials", "login_url": emu.url,
                     "client_id": emu.client_id, "client_secret": secret},
            "requests_per_second": 1000, "max_in_flight": 4, "daily_api_budget": 0.8,
            "retry_base_seconds": 0.01, "retry_max_wait_seconds": 0.1,
        },
        "state": {"path": str(state_path)},
    }
    if getattr(queue, "endpoint", None):
        cfg["sqs"]["endpoint_url"] = queue.endpoint
    if os.environ.get("CONNECTOR_TEST_STATE") == "postgres" and "state__path" not in overrides:
        # The same end-to-end tests against the shared store: CONNECTOR_TEST_STATE=postgres pytest tests/e2e
        cfg["state"] = {"url": _postgres_state_url()}
    for dotted, value in overrides.items():
        node = cfg
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return cfg


def make_config(emu: Emulator, state_path: str | Path, queue: Any = None, **overrides: Any) -> Config:
    """The test configuration as the validated model (for wiring in process, no file)."""
    return Config.model_validate(config_dict(emu, queue, state_path=state_path, secret=emu.client_secret,
                                             **overrides))


def write_config(tmp_path: Path, emu: Emulator, aws: Any, **overrides: Any) -> Path:
    """The test configuration as a file for the CLI (state under tmp_path/state/, the secret from the env)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(emu, aws, **overrides), allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class CliResult:
    """What a `connector` command did: the fields of subprocess.CompletedProcess the tests read."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """The `connector` command run in this process (click's runner): same code from argv to exit code,
    without an interpreter start. An exception that escapes the command fails the test (a crash is
    never an exit code)."""
    full_env = {**AWS_ENV, "SF_CLIENT_SECRET": "emulator-secret", **(env or {})}
    try:
        result = CliRunner().invoke(connector_main, list(args), env=full_env, catch_exceptions=False)
    finally:
        structlog.reset_defaults()    # the command bound its logger to the runner's (now closed) stderr
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `connector` command in a subprocess (the `process` tier: prefer `cli` + `memq`)."""
    node = _running.get("node")
    if node is not None and node.get_closest_marker("process") is None:
        warnings.warn(f"{node.nodeid} starts an interpreter (1-3 s a command): use cli() with memq, "
                      "or mark the test `process`", SubprocessOutsideProcessTier, stacklevel=2)
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


def open_config_state(config_path: Path) -> Any:
    """The state store a test configuration file names, opened past the CLI (to seed or inspect
    it): its SQLite file, or its PostgreSQL schema under CONNECTOR_TEST_STATE=postgres."""
    from connector.state import open_state

    state = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))["state"]
    if state.get("url"):
        return open_state(state["url"])
    path = Path(state.get("path", "state/connector.db"))
    return open_state(path if path.is_absolute() else Path(config_path).parent / path)


def same_state(config_path: Path) -> dict[str, str]:
    """write_config overrides naming the store `config_path` names (its SQLite file, or its
    PostgreSQL schema under CONNECTOR_TEST_STATE=postgres): a second configuration, one store."""
    state = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))["state"]
    if state.get("url"):
        return {"state__url": state["url"]}
    path = Path(state.get("path", "state/connector.db"))
    return {"state__path": str(path if path.is_absolute() else Path(config_path).parent / path)}
