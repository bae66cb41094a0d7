"""What a stage decided about each message: quarantine reasons, a retry, notes for its outcome.

Stages never write into the messages they are given (issue #17): each returns its
:class:`Verdicts` in its ``StageResult``, like its facts and changes, and the engine folds them
into one per batch. A message is keyed by its resource key, which is unique among the messages a
batch applies (the engine keeps only the newest message per resource).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.salesforce.results import RowAction
from connector.sync.model import Work, Write

# Actions that mean "the same write may succeed later": the message waits in the queue. A full
# org (ORG_FULL) normally stops the run before any stage sees it (StorageFull); should one row
# still carry it, its message waits too: storage is never a reason to quarantine a message.
RETRY_ACTIONS = frozenset({RowAction.RETRY_LATER, RowAction.RETRY_SMALLER, RowAction.ORG_FULL})


@dataclass
class Verdicts:
    failures: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)  # key → (reason, field)
    retries: dict[str, str] = field(default_factory=dict)                             # key → why it waits
    details: dict[str, dict[str, Any]] = field(default_factory=dict)                  # key → outcome detail

    # -- recording ---------------------------------------------------------------------------
    def fail(self, work: Work, reason: str, field_: str | None = None) -> None:
        found = self.failures.setdefault(work.msg.resource_key, [])
        if (reason, field_) not in found:
            found.append((reason, field_))

    def retry(self, work: Work, reason: str) -> None:
        self.retries.setdefault(work.msg.resource_key, reason)

    def note(self, work: Work, name: str, value: Any) -> None:
        """Something the message's outcome detail should say (its match, its member, a refusal)."""
        self.details.setdefault(work.msg.resource_key, {})[name] = value

    def fail_write(self, write: Write) -> None:
        """Every message behind a refused write fails with the org's own words."""
        assert write.error is not None
        for w in write.works:
            self.fail(w, f"{write.label}: {write.error.describe()}", ",".join(write.error.fields) or None)

    def settle(self, write: Write) -> None:
        """A write that failed and was not handled otherwise: a transient refusal (a row lock that
        outlasted the retries) makes its messages wait; anything else fails them, unless they
        already wait for a retry."""
        if write.error is None:
            return
        if write.action in RETRY_ACTIONS:
            for w in write.works:
                self.retry(w, f"{write.label}: Salesforce {write.error.code} after retries")
        elif not any(self.waits(w) for w in write.works):
            self.fail_write(write)

    # -- reading -----------------------------------------------------------------------------
    def ok(self, work: Work) -> bool:
        key = work.msg.resource_key
        return key not in self.failures and key not in self.retries

    def waits(self, work: Work) -> bool:
        return work.msg.resource_key in self.retries

    def detail(self, work: Work) -> dict[str, Any]:
        return self.details.get(work.msg.resource_key, {})

    def merge(self, other: Verdicts) -> Verdicts:
        for key, found in other.failures.items():
            mine = self.failures.setdefault(key, [])
            mine.extend(f for f in found if f not in mine)
        for key, reason in other.retries.items():
            self.retries.setdefault(key, reason)
        for key, detail in other.details.items():
            self.details.setdefault(key, {}).update(detail)
        return self
