"""Queues the connector consumes: SQS (boto3) and an in-memory one (tests, benchmark, replay).

Both speak the same four verbs; every boto3 detail lives in :class:`SqsQueue`.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.config import Config as BotoConfig

from connector.config import SqsConfig
from connector.errors import TransientError
from connector.sync.model import Inbound


class Queue(Protocol):
    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]: ...
    def delete(self, handles: list[Any]) -> list[Any]: ...
    def change_visibility(self, handles: list[Any], seconds: int) -> list[Any]: ...


class SqsQueue:
    def __init__(self, cfg: SqsConfig) -> None:
        kwargs: dict[str, Any] = {
            "region_name": cfg.region,
            # The HTTP read timeout must outlast the 20 s long poll.
            "config": BotoConfig(read_timeout=max(30, cfg.wait_seconds + 10), retries={"max_attempts": 5, "mode": "standard"}),
        }
        if cfg.endpoint_url:
            kwargs["endpoint_url"] = cfg.endpoint_url
        if cfg.access_key_id and cfg.secret_access_key:
            kwargs["aws_access_key_id"] = cfg.access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = cfg.secret_access_key.get_secret_value()
        self.client = boto3.client("sqs", **kwargs)
        self.url = cfg.queue_url

    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]:
        try:
            resp = self.client.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_timeout, MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except Exception as exc:  # botocore raises many shapes; all mean "try later"
            raise TransientError(f"SQS receive failed: {type(exc).__name__}") from None
        return [
            Inbound(handle=m["ReceiptHandle"], body=m["Body"], sqs_message_id=m["MessageId"],
                    receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)))
            for m in resp.get("Messages", [])
        ]

    def _batched(self, op: str, handles: list[Any], **extra: Any) -> list[Any]:
        failed: list[Any] = []
        for i in range(0, len(handles), 10):
            chunk = handles[i : i + 10]
            entries = [{"Id": str(n), "ReceiptHandle": h, **extra} for n, h in enumerate(chunk)]
            fn = getattr(self.client, op)
            resp = fn(QueueUrl=self.url, Entries=entries)
            # Batch calls answer 200 even when entries fail: read the Failed list.
            failed.extend(chunk[int(f["Id"])] for f in resp.get("Failed", []))
        return failed

    def delete(self, handles: list[Any]) -> list[Any]:
        return self._batched("delete_message_batch", handles)

    def change_visibility(self, handles: list[Any], seconds: int) -> list[Any]:
        return self._batched("change_message_visibility_batch", handles, VisibilityTimeout=seconds)


@dataclass
class _Held:
    body: str
    message_id: str
    receives: int = 0
    visible_at: float = 0.0


@dataclass
class MemoryQueue:
    """An in-memory queue with SQS's visibility semantics, for tests and the benchmark."""

    clock: Any = None
    _msgs: dict[str, _Held] = field(default_factory=dict)
    _order: deque[str] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _n: int = 0
    receive_calls: int = 0

    def _now(self) -> float:
        import time

        return self.clock() if self.clock else time.monotonic()

    def send(self, body: str) -> str:
        with self._lock:
            self._n += 1
            mid = f"m-{self._n}"
            self._msgs[mid] = _Held(body, mid)
            self._order.append(mid)
            return mid

    def __len__(self) -> int:
        return len(self._msgs)

    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]:
        with self._lock:
            self.receive_calls += 1
            now = self._now()
            out = []
            for mid in list(self._order):
                if len(out) >= max_messages:
                    break
                held = self._msgs.get(mid)
                if held is None or held.visible_at > now:
                    continue
                held.receives += 1
                held.visible_at = now + visibility_timeout
                out.append(Inbound(handle=(mid, held.receives), body=held.body, sqs_message_id=mid,
                                   receive_count=held.receives))
            return out

    def delete(self, handles: list[Any]) -> list[Any]:
        with self._lock:
            failed = []
            for mid, n in handles:
                held = self._msgs.get(mid)
                if held is None or held.receives != n:
                    failed.append((mid, n))
                    continue
                del self._msgs[mid]
                self._order.remove(mid)
            return failed

    def change_visibility(self, handles: list[Any], seconds: int) -> list[Any]:
        with self._lock:
            for mid, _n in handles:
                if mid in self._msgs:
                    self._msgs[mid].visible_at = self._now() + seconds
            return []
