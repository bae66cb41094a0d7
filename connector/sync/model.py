"""Plain data the sync engine passes between its stages."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from connector.payloads import Message


@dataclass(frozen=True)
class Inbound:
    """One received queue message, whatever the queue."""

    handle: Any              # the queue's own token (receipt handle, replay id...)
    body: str
    sqs_message_id: str = ""
    receive_count: int = 1


@dataclass
class Outcome:
    """What happened to one inbound message; decides whether it leaves the queue."""

    status: str              # synced | skipped | quarantined | retry
    reason: str | None = None
    field: str | None = None
    message_key: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    event_id: str | None = None
    detail: dict[str, Any] = dc_field(default_factory=dict)

    @property
    def leaves_queue(self) -> bool:
        return self.status != "retry"


@dataclass
class Work:
    """A message being applied: its outcome is built up stage by stage."""

    inbound: Inbound
    msg: Message
    failures: list[tuple[str, str | None]] = dc_field(default_factory=list)   # (reason, field)
    retry_reason: str | None = None
    detail: dict[str, Any] = dc_field(default_factory=dict)
    # older messages about the same resource in this batch, oldest first (only the newest is
    # applied, but their member statuses still count: a check-in or cancellation is never lost)
    superseded: list[Work] = dc_field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.retry_reason is None

    def fail(self, reason: str, field_: str | None = None) -> None:
        if (reason, field_) not in self.failures:
            self.failures.append((reason, field_))

    def retry(self, reason: str) -> None:
        self.retry_reason = self.retry_reason or reason


@dataclass
class Write:
    """One record to send, and the messages that depend on it."""

    sobject: str
    op: str                  # upsert | update | create
    record: dict[str, Any]
    works: list[Work]
    key: str = ""            # what the record is (for messages and state)
    label: str = ""          # human wording for errors: "Lead for acme/event_person/1"
    result_id: str | None = None
    created: bool | None = None
    error: tuple[str, str, tuple[str, ...]] | None = None   # (code, message, fields)

    def fail_all(self, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        self.error = (code, message, fields)
        where = f" (field {', '.join(fields)})" if fields else ""
        for w in self.works:
            w.fail(f"{self.label}: Salesforce {code}: {message}{where}", ",".join(fields) or None)
