"""Queues the connector consumes: SQS (boto3) and an in-memory one (tests, benchmark, replay).

Both speak the same verbs; every boto3 detail lives in :class:`SqsQueue`, and SQS failures are
classified here, once (issue 11):

- fatal (:class:`FatalError`, exit 1): the queue does not exist, access is denied, credentials
  are missing or refused, or SQS refuses the request as it stands. Retrying cannot help.
- transient: throttling, SQS 5xx, network errors. Retried here with exponential back-off;
  when the retries run out a receive raises :class:`QueueUnavailable` (a StopRun: exit 75
  under --drain, a pause in service mode).
- delete and visibility calls never raise: they return the entries that failed, each with
  its error code, and the message is left to SQS's redelivery (the state store makes a
  repeat cost nothing).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)

from connector import logs
from connector.config import SqsConfig
from connector.errors import FatalError, QueueUnavailable, TransientError
from connector.sync.model import Inbound

# Codes that say "this queue cannot be used as configured": no retry can help.
FATAL_CODES = frozenset({
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue",
    "AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException", "KmsAccessDenied",
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "IncompleteSignature",
    "MissingAuthenticationToken", "InvalidAccessKeyId", "ExpiredToken", "InvalidSecurity",
    "OptInRequired", "KMS.DisabledException", "KmsDisabled",
})
# Codes worth the same request again after a pause (AWS's own retry lists, SQS's throttles).
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "RequestThrottled", "Throttling", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "SlowDown", "ServiceUnavailable", "InternalError", "InternalFailure",
    "RequestTimeout", "RequestTimeoutException", "KMS.ThrottlingException", "KmsThrottled",
})


@dataclass(frozen=True)
class Received(Inbound):
    """A message as the queue delivered it: `sent_at` (epoch seconds) is SQS's SentTimestamp, the
    publish-to-commit lag's start when the body carries no SNS envelope Timestamp (metrics)."""

    sent_at: float | None = None


class Depths(NamedTuple):
    """Messages waiting in the queue and in its dead-letter queue (None: the queue has none)."""

    visible: int
    in_flight: int
    dead_letter: int | None


class Failed(NamedTuple):
    """One entry a delete or visibility call could not apply."""

    handle: Any
    code: str
    fatal: bool = False


class SqsProblem(NamedTuple):
    code: str
    fatal: bool
    message: str


def classify(exc: BaseException) -> SqsProblem:
    """Name an SQS failure and say whether retrying can help."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "Unknown")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = str(err.get("Message") or "")[:200]
        if code in FATAL_CODES or err.get("QueryErrorCode") in FATAL_CODES:
            return SqsProblem(code, True, message)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return SqsProblem(code, False, message)
        # Any other 4xx: SQS refuses the request as it stands; sending it again changes nothing.
        return SqsProblem(code, True, message)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return SqsProblem(type(exc).__name__, True, "no AWS credentials found (environment, profile or role)")
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError...
        return SqsProblem(type(exc).__name__, False, str(exc)[:200])
    if isinstance(exc, BotoCoreError):
        # Credential retrieval, region, parameter validation: configuration, not weather.
        return SqsProblem(type(exc).__name__, True, str(exc)[:200])
    return SqsProblem(type(exc).__name__, False, str(exc)[:200])


class SqsFatal(FatalError):
    def __init__(self, url: str, op: str, problem: SqsProblem) -> None:
        super().__init__(f"SQS queue {url}: {problem.code} on {op}: {problem.message}")
        self.problem = problem


class _Transient(TransientError):
    def __init__(self, problem: SqsProblem) -> None:
        super().__init__(f"{problem.code}: {problem.message}")
        self.problem = problem


class Queue(Protocol):
    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]: ...
    def delete(self, handles: list[Any]) -> list[Failed]: ...
    def change_visibility(self, handles: list[Any], seconds: int) -> list[Failed]: ...
    def max_receive_count(self) -> int | None: ...
    def interrupt(self) -> None: ...


class SqsQueue:
    def __init__(self, cfg: SqsConfig) -> None:
        kwargs: dict[str, Any] = {
            "region_name": cfg.region,
            # The HTTP read timeout must outlast the 20 s long poll. botocore's own retries are off:
            # the retries below classify first and can be interrupted by a stop request.
            "config": BotoConfig(read_timeout=max(30, cfg.wait_seconds + 10), connect_timeout=10,
                                 retries={"total_max_attempts": 1, "mode": "standard"}),
        }
        if cfg.endpoint_url:
            kwargs["endpoint_url"] = cfg.endpoint_url
        if cfg.access_key_id and cfg.secret_access_key:
            kwargs["aws_access_key_id"] = cfg.access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = cfg.secret_access_key.get_secret_value()
        self.client = boto3.client("sqs", **kwargs)
        self.url = cfg.queue_url
        self.cfg = cfg
        self.log = logs.get()
        self._interrupted = threading.Event()
        self._dlq_url: str | None = None
        self.retries = 0           # SQS requests repeated after a transient failure (metrics)

    def interrupt(self) -> None:
        """A stop was requested: cut retry back-offs short (the call in flight still finishes)."""
        self._interrupted.set()

    def _pause(self, seconds: float) -> None:
        self._interrupted.wait(seconds)

    def _call(self, op: str, **params: Any) -> Any:
        """One SQS request with back-off on transient failures; fatal ones raise FatalError at once."""

        def attempt() -> Any:
            try:
                return getattr(self.client, op)(QueueUrl=self.url, **params)
            except Exception as exc:  # botocore raises many shapes; classify() names them
                problem = classify(exc)
                if problem.fatal:
                    raise SqsFatal(self.url, op, problem) from None
                raise _Transient(problem) from None

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.retries += 1
            self.log.warning("sqs_retry", op=op, queue=self.url, attempt=state.attempt_number,
                             error_code=getattr(getattr(exc, "problem", None), "code", None),
                             wait_seconds=round(state.upcoming_sleep, 2))

        retrying = Retrying(
            stop=stop_after_attempt(self.cfg.retry_attempts) | stop_when_event_set(self._interrupted),
            wait=wait_exponential_jitter(multiplier=self.cfg.retry_base_seconds, jitter=self.cfg.retry_base_seconds,
                                         max=self.cfg.retry_max_wait_seconds),
            retry=retry_if_exception_type(_Transient), reraise=True, before_sleep=before_sleep,
            sleep=self._pause,    # an interruptible sleep: a stop ends the back-off
        )
        return retrying(attempt)

    def _call_or_stop(self, op: str, **params: Any) -> Any:
        """A call the run cannot go on without: out of retries, stop the run (75 under --drain)."""
        try:
            return self._call(op, **params)
        except _Transient as exc:
            raise QueueUnavailable(
                f"SQS queue {self.url}: {exc.problem.code} on {op}, "
                f"still failing after {self.cfg.retry_attempts} attempts") from None

    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]:
        resp = self._call_or_stop(
            "receive_message", MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return [
            Received(handle=m["ReceiptHandle"], body=m["Body"], sqs_message_id=m["MessageId"],
                     receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                     sent_at=_epoch_ms(m.get("Attributes", {}).get("SentTimestamp")))
            for m in resp.get("Messages", [])
        ]

    def depths(self) -> Depths:
        """One look at the queue and its dead-letter queue (from the RedrivePolicy), no retries:
        for readiness (cached 15 s) and the depth gauges (at most once a minute). Raises on failure."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "RedrivePolicy"]
        attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        dead = None
        if attrs.get("RedrivePolicy"):
            arn = str(json.loads(attrs["RedrivePolicy"]).get("deadLetterTargetArn", ""))
            parts = arn.split(":")     # arn:aws:sqs:REGION:ACCOUNT:NAME
            if len(parts) == 6:
                dlq_url = self._dlq_url or self.client.get_queue_url(
                    QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
                self._dlq_url = dlq_url
                dead = int(self.client.get_queue_attributes(
                    QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
                    .get("ApproximateNumberOfMessages", 0))
        return Depths(int(attrs.get(names[0], 0)), int(attrs.get(names[1], 0)), dead)

    def approximate_depth(self) -> int | None:
        """ApproximateNumberOfMessages: messages available to receive (None when SQS does not say)."""
        try:
            attrs = self._call("get_queue_attributes", AttributeNames=["ApproximateNumberOfMessages"])
        except _Transient:
            return None
        value = attrs.get("Attributes", {}).get("ApproximateNumberOfMessages")
        return int(value) if value is not None else None

    def max_receive_count(self) -> int | None:
        """The redrive policy's maxReceiveCount (None: the queue has no dead-letter queue)."""
        attrs = self._call_or_stop("get_queue_attributes", AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        policy = attrs.get("RedrivePolicy")
        if not policy:
            return None
        return int(json.loads(policy)["maxReceiveCount"])

    def _batched(self, op: str, handles: list[Any], **extra: Any) -> list[Failed]:
        failed: list[Failed] = []
        for i in range(0, len(handles), 10):
            chunk = handles[i : i + 10]
            entries = [{"Id": str(n), "ReceiptHandle": h, **extra} for n, h in enumerate(chunk)]
            try:
                resp = self._call(op, Entries=entries)
            except SqsFatal as exc:
                failed.extend(Failed(h, exc.problem.code, True) for h in chunk)
                continue
            except _Transient as exc:
                failed.extend(Failed(h, exc.problem.code) for h in chunk)
                continue
            # Batch calls answer 200 even when entries fail: read the Failed list.
            failed.extend(Failed(chunk[int(f["Id"])], str(f.get("Code", "Unknown"))) for f in resp.get("Failed", []))
        return failed

    def delete(self, handles: list[Any]) -> list[Failed]:
        return self._batched("delete_message_batch", handles)

    def change_visibility(self, handles: list[Any], seconds: int) -> list[Failed]:
        return self._batched("change_message_visibility_batch", handles, VisibilityTimeout=seconds)


def _epoch_ms(value: str | None) -> float | None:
    return int(value) / 1000 if value and value.isdigit() else None


class ManualClock:
    """Virtual time for tests: a MemoryQueue long poll on it returns at once, moving the time on."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@dataclass
class _Held:
    body: str
    message_id: str
    receives: int = 0
    visible_at: float = 0.0
    sent_at: float = field(default_factory=time.time)    # wall clock, like SQS's SentTimestamp


@dataclass
class MemoryQueue:
    """An in-memory queue with SQS's semantics, for tests and the benchmark.

    Visibility, delivery delays, long polls (answering as soon as one message is visible) and
    a redrive policy (`max_receives`: a receive after that many moves the message to
    `dead_letters`). With a :class:`ManualClock` a long poll moves virtual time instead of waiting.
    """

    clock: Any = None
    max_receives: int | None = None
    _msgs: dict[str, _Held] = field(default_factory=dict)
    _order: deque[str] = field(default_factory=deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _n: int = 0
    _interrupted: bool = False
    receive_calls: int = 0
    dead_letters: list[str] = field(default_factory=list)

    def _now(self) -> float:
        return self.clock() if self.clock else time.monotonic()

    def send(self, body: str, delay_seconds: float = 0) -> str:
        with self._cond:
            self._n += 1
            mid = f"m-{self._n}"
            self._msgs[mid] = _Held(body, mid, visible_at=self._now() + delay_seconds)
            self._order.append(mid)
            self._cond.notify_all()
            return mid

    def __len__(self) -> int:
        return len(self._msgs)

    def approximate_depth(self) -> int:
        """Messages visible now, like SQS's ApproximateNumberOfMessages."""
        with self._cond:
            now = self._now()
            return sum(1 for h in self._msgs.values() if h.visible_at <= now)

    def interrupt(self) -> None:
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def max_receive_count(self) -> int | None:
        return self.max_receives

    def depths(self) -> Depths:
        with self._cond:
            now = self._now()
            visible = sum(1 for h in self._msgs.values() if h.visible_at <= now)
            return Depths(visible, len(self._msgs) - visible,
                          len(self.dead_letters) if self.max_receives is not None else None)

    def _take(self, max_messages: int, visibility_timeout: int) -> list[Inbound]:
        now = self._now()
        out: list[Inbound] = []
        for mid in list(self._order):
            if len(out) >= max_messages:
                break
            held = self._msgs.get(mid)
            if held is None or held.visible_at > now:
                continue
            if self.max_receives is not None and held.receives >= self.max_receives:
                del self._msgs[mid]          # SQS's redrive: moved instead of delivered
                self._order.remove(mid)
                self.dead_letters.append(mid)
                continue
            held.receives += 1
            held.visible_at = now + visibility_timeout
            out.append(Received(handle=(mid, held.receives), body=held.body, sqs_message_id=mid,
                                receive_count=held.receives, sent_at=held.sent_at))
        return out

    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]:
        with self._cond:
            self.receive_calls += 1
            deadline = self._now() + wait_seconds
            while True:
                out = self._take(max_messages, visibility_timeout)
                left = deadline - self._now()
                if out or left <= 0 or self._interrupted:
                    return out
                if isinstance(self.clock, ManualClock):
                    upcoming = [h.visible_at for h in self._msgs.values() if h.visible_at > self._now()]
                    self.clock.advance(min([deadline, *upcoming]) - self._now())
                else:
                    self._cond.wait(timeout=min(left, 0.5))

    def delete(self, handles: list[Any]) -> list[Failed]:
        with self._cond:
            failed = []
            for mid, n in handles:
                held = self._msgs.get(mid)
                if held is None or held.receives != n:
                    failed.append(Failed((mid, n), "ReceiptHandleIsInvalid"))
                    continue
                del self._msgs[mid]
                self._order.remove(mid)
            return failed

    def change_visibility(self, handles: list[Any], seconds: int) -> list[Failed]:
        with self._cond:
            for mid, _n in handles:
                if mid in self._msgs:
                    self._msgs[mid].visible_at = self._now() + seconds
            if seconds == 0:
                self._cond.notify_all()
            return []
