"""Plain data the sync engine passes around: a received message, its outcome, a message being
applied (Work) and a record to send (Write)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum
from typing import Any

from connector.payloads import Message
from connector.salesforce.results import RowAction, WriteError


class OutcomeStatus(StrEnum):
    SYNCED = "synced"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"
    RETRY = "retry"               # left in the queue: a later delivery tries again


class SkipReason(StrEnum):
    DUPLICATE = "duplicate"       # the same content twice in one batch
    STALE = "stale"               # older than what was applied (or than a newer one in the batch)
    UNCHANGED = "unchanged"       # the same content as last applied: costs no call
    UNKNOWN_TYPE = "unknown_type"  # a resource_type this connector does not know
    INSTANCE = "instance"         # a Jomablue instance the configuration skips
    UNMAPPED = "unmapped"         # no mapping file for that resource type


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

    status: OutcomeStatus
    reason: str | None = None
    field: str | None = None
    message_key: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    event_id: str | None = None
    detail: dict[str, Any] = dc_field(default_factory=dict)
    planned: bool = False    # a dry run's outcome: what would happen

    @property
    def leaves_queue(self) -> bool:
        return self.status != OutcomeStatus.RETRY

    @property
    def label(self) -> str:
        """The outcome as counted and stored: `skipped_<reason>` for skips, `would_...` in a dry run."""
        label = f"skipped_{self.detail.get('skip', 'other')}" if self.status == OutcomeStatus.SKIPPED \
            else str(self.status)
        return f"would_{label}" if self.planned else label


@dataclass(eq=False)
class Work:
    """A message being applied. Stages only read it: what they decide about it (a failure, a
    retry, a note) comes back in their ``StageResult.verdicts`` (connector/sync/verdicts.py)."""

    inbound: Inbound
    msg: Message
    version: str = ""        # content hash + mapping version: what "unchanged" compares
    # older messages about the same resource in this batch, oldest first (only the newest is
    # applied, but their member statuses still count: a check-in or cancellation is never lost)
    superseded: list[Work] = dc_field(default_factory=list)


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
    error: WriteError | None = None
    # the Jomablue people (or members) this one record stands for, when several merged into it
    stands_for: list[str] = dc_field(default_factory=list)

    @property
    def action(self) -> RowAction:
        return self.error.action if self.error else RowAction.OK

    def add_works(self, works: Iterable[Work]) -> None:
        self.works.extend(w for w in works if w not in self.works)

    def take_answer(self, sent: Write | None) -> bool:
        """The same write already sent and answered (with the people's writes, issue #18): take
        its answer instead of a call. False, nothing taken, when `sent` is none or differs."""
        if sent is None or sent.op != self.op or sent.record != self.record:
            return False
        self.result_id, self.created, self.error = sent.result_id, sent.created, sent.error
        return True


def mapping_error(field_name: str) -> WriteError:
    """A record the mapping could not key: its upsert field is empty."""
    return WriteError("MAPPING", f"the upsert key {field_name} has no value", (field_name,), RowAction.REJECT)
