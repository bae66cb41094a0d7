"""The connector's exception tree, grouped by what the caller should do.

    ConnectorError
    ├── ConfigError            bad configuration file or mapping: exit 2, nothing touched
    │   └── MappingRejected    the org refuses a mapped field for a whole object (found while writing)
    ├── FatalError             the run cannot go on (auth refused, a bug-class 400): exit 1
    ├── StopRun                stop taking messages, keep the rest queued: exit 75
    │   ├── BudgetExhausted    the org's daily API budget (our fraction of it) is reached
    │   ├── SalesforceUnavailable   retries exhausted on transient failures, or a dead access token
    │   ├── StorageFull        the org's data storage is full (STORAGE_LIMIT_EXCEEDED): an admin frees space
    │   ├── StateUnavailable   the state store cannot be reached or written (disk full, database down)
    │   └── QueueUnavailable   SQS kept throttling or could not be reached (retries exhausted)
    ├── TransientError         worth retrying the same request (5xx, transport, lock, concurrency)
    └── MessageError           one message cannot be processed as it is: quarantine it
        └── AmbiguousMatch     identity ladder found several candidates

Failures are classified once, at the edge that sees them: Salesforce's answers by the one table
in connector/salesforce/classify.py (whole requests → these exceptions, one record → a RowAction),
SQS's in connector/queue.py, message bodies in connector/payloads.py. Above the edges, code
switches on the exception type or the RowAction: `status` and `code` travel for messages, for
comparing two failures, and for `classify.is_poison` (the engine asks it, it does not read them).
(`doctor` alone reads composite subrequest statuses, to report each automation query it may not
read as a warning beside the ones it could.)
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of everything the connector raises on purpose.

    A whole-request failure from an adapter carries the HTTP `status` and the service's error
    `code` (e.g. 400, "MALFORMED_QUERY"), so callers never parse the text.
    """

    def __init__(self, *args: object, status: int | None = None, code: str | None = None) -> None:
        super().__init__(*args)
        self.status = status
        self.code = code


class ConfigError(ConnectorError):
    """Configuration (or mapping) is invalid; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class MappingRejected(ConfigError):
    """The org refuses what the mapping writes (a missing field, no access, a value its restricted
    picklist lacks) for a whole object: exit 2, messages stay queued, fix the mapping or the org."""


class FatalError(ConnectorError):
    """The run cannot continue."""


class StopRun(ConnectorError):
    """Stop receiving; messages in flight are released and stay queued (exit 75)."""


class BudgetExhausted(StopRun):
    """Usage reached the configured fraction of the org's daily API allocation."""


class SalesforceUnavailable(StopRun):
    """Salesforce kept failing transiently, or the session cannot be renewed."""


class StorageFull(StopRun):
    """The org's data storage is full: every create fails until an admin frees space. An org-wide
    condition like the daily budget, so the run stops and keeps its messages (exit 75)."""


class StateUnavailable(StopRun):
    """The state store could not be opened, read or written (a backend's own error, wrapped once
    at the store's edge). Carries `location` (the store actually configured, password masked)."""

    def __init__(self, message: str, *, location: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.location = location
        self.cause = cause


class QueueUnavailable(StopRun):
    """SQS kept throttling or could not be reached through every retry."""


class TransientError(ConnectorError):
    """A failure worth retrying unchanged after a pause."""


class MessageError(ConnectorError):
    """One message cannot be processed as it stands: it is quarantined with this reason."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class AmbiguousMatch(MessageError):
    """More than one Salesforce record matched; an admin must decide."""

    def __init__(self, reason: str, candidates: list[str]) -> None:
        super().__init__(reason, field="identifiers.email")
        self.candidates = candidates
