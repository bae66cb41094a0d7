"""The one classifier: every failure Salesforce answers → what the connector does about it.

Two tables, read top to bottom, first match wins (in the spirit of simple-salesforce's
`util.exception_handler` status table, with the body's error code and the context added):

- :data:`REQUEST_TABLE`: a whole request failed (the top-level call, or one subrequest of a
  /composite call), keyed by HTTP status, error code, a message fragment where the code alone
  is ambiguous, and the context (top-level or subrequest, read or write). The answer is a
  :class:`Failure`; :func:`request_error` turns it into the connector's exception.
- :data:`ROW_TABLE`: one record of an sObject Collections call failed (HTTP 200, `success:
  false`), keyed by `statusCode` and message fragments → :class:`~connector.salesforce.results.RowAction`.

Callers switch on the answer; nothing else in `connector/` reads Salesforce's codes or texts.

Sources (public): REST API Developer Guide, "Status Codes and Error Responses"
(developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm): 403 with
REQUEST_LIMIT_EXCEEDED is an API limit, 5xx a server error; the daily limit answers
"TotalRequests Limit exceeded." (SalesforceLabs/OrgCheck #181, jetstreamapp/jetstream #868), the
concurrency limit "ConcurrentRequests (Concurrent API Requests) Limit exceeded." (Salesforce
Help 000389067; OrgCheck #432) or "ConcurrentPerOrgLongTxn Limit exceeded" (mautic/mautic #5006).
Help 000386264: a URI over 16,384 bytes answers 414, URI plus headers 431 (HTML bodies).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from connector.errors import (
    BudgetExhausted,
    ConnectorError,
    FatalError,
    StorageFull,
    TransientError,
)


class RowAction(StrEnum):
    """What the engine does with one record's result (re-exported by results.py)."""

    OK = "ok"
    RETRY_LATER = "retry_later"          # a row lock or timeout that outlasted the retries: the message waits
    CONVERTED_LEAD = "converted_lead"    # the Lead was converted: write to its Contact instead
    DUPLICATE_KEY = "duplicate_key"      # an external id (or another unique field) already taken
    ALREADY_A_MEMBER = "already_a_member"  # the person is already in that Campaign (a member made by hand)
    GONE = "gone"                        # a record written or referenced was deleted in Salesforce
    ORG_SETUP = "org_setup"              # the org refuses the mapping (field, restricted picklist, object)
    REJECT = "reject"                    # this record's data is refused: quarantine its messages
    # The org's own life (issue #16):
    RETRY_SMALLER = "retry_smaller"      # automation hit a per-transaction limit a smaller collection avoids
    NO_ACCESS = "no_access"              # record-level sharing: this one record may not be edited by us
    BAD_REFERENCE = "bad_reference"      # INVALID_CROSS_REFERENCE_KEY: gone only if a read confirms it
    ORG_FULL = "org_full"                # STORAGE_LIMIT_EXCEEDED: org-wide, stop the run (StorageFull)


# -- whole requests ------------------------------------------------------------------------


class Failure(StrEnum):
    """What to do about a whole request (or one composite subrequest) that failed."""

    RETRY = "retry"              # TransientError: send the same request again after a pause
    RENEW_SESSION = "renew"      # 401: a fresh token, then the same request once more
    BUDGET = "budget"            # BudgetExhausted: the org's daily API allocation is spent
    STORAGE_FULL = "storage"     # StorageFull: the org's data storage is full
    ABSENT = "absent"            # a read of something the org does not have (describe of a missing object)
    POISON = "poison"            # refused for what it carries: the batch is split to find the message
    FATAL = "fatal"              # refused for who sends it or what the org is: the run stops


class Scope(Enum):
    TOP_LEVEL = "top-level"
    SUBREQUEST = "subrequest"


class Verb(Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class RequestRule:
    failure: Failure
    statuses: tuple[int | None, ...] | range | None = None   # None: any; (None,): no HTTP answer at all
    code: str | None = None
    message: str | None = None        # a fragment of the message (case-insensitive)
    scope: Scope | None = None
    verb: Verb | None = None

    def matches(self, status: int | None, code: str, message: str, scope: Scope, verb: Verb) -> bool:
        return ((self.statuses is None or status in self.statuses)
                and (self.code is None or code == self.code)
                and (self.message is None or self.message.lower() in message.lower())
                and (self.scope is None or scope is self.scope)
                and (self.verb is None or verb is self.verb))


_SERVER = range(500, 600)
_CARRIED = (400, 413, 414, 431)   # what the request carries: its URL, headers or body

REQUEST_TABLE: tuple[RequestRule, ...] = (
    # No HTTP answer at all (connection reset, timeout, a truncated body): try again.
    RequestRule(Failure.RETRY, statuses=(None,)),
    # The daily allocation: a pause of hours, not seconds (errorcodes.htm; OrgCheck #181).
    RequestRule(Failure.BUDGET, code="REQUEST_LIMIT_EXCEEDED", message="TotalRequests"),
    # Any other REQUEST_LIMIT_EXCEEDED is a concurrency limit (Help 000389067): retried with
    # backoff, inside a composite as on top (issue #17: the composite path used to stop the run).
    RequestRule(Failure.RETRY, code="REQUEST_LIMIT_EXCEEDED"),
    # Storage is org-wide: every create fails until an admin frees space (restforce's
    # ErrorCode::StorageLimitExceeded; SOAP API StatusCode STORAGE_LIMIT_EXCEEDED).
    RequestRule(Failure.STORAGE_FULL, code="STORAGE_LIMIT_EXCEEDED"),
    # 5xx: the server's trouble, retried, inside a composite as on top (errorcodes.htm: 500,
    # 503 "the server is unavailable").
    RequestRule(Failure.RETRY, statuses=_SERVER),
    # An expired token on the top-level call (simple-salesforce: SalesforceExpiredSession).
    RequestRule(Failure.RENEW_SESSION, statuses=(401,), scope=Scope.TOP_LEVEL),
    # 404 on a read: the org has no such object or record; the caller decides what absence means.
    RequestRule(Failure.ABSENT, statuses=(404,), verb=Verb.READ),
    # API access switched off for the org or the user: no split of the batch helps.
    RequestRule(Failure.FATAL, code="API_DISABLED_FOR_ORG"),
    RequestRule(Failure.FATAL, code="API_CURRENTLY_DISABLED"),
    # A query too long, a body Salesforce cannot read, a URL past 16,384 bytes (Help 000386264):
    # refused for what it carries, so splitting the batch finds the message behind it.
    RequestRule(Failure.POISON, statuses=_CARRIED),
    # Everything else (401 inside a composite, 403 refusals, 404 on a write, 3xx...): stop.
    RequestRule(Failure.FATAL),
)


def request_rule(status: int | None, code: str | None, message: str, *,
                 scope: Scope = Scope.TOP_LEVEL, verb: Verb = Verb.READ) -> RequestRule:
    """The first row of :data:`REQUEST_TABLE` that matches (the last row matches everything)."""
    for rule in REQUEST_TABLE:
        if rule.matches(status, code or "", message or "", scope, verb):
            return rule
    raise AssertionError("REQUEST_TABLE ends with a catch-all row")  # pragma: no cover


def classify_request(status: int | None, code: str | None, message: str, *,
                     scope: Scope = Scope.TOP_LEVEL, verb: Verb = Verb.READ) -> Failure:
    return request_rule(status, code, message, scope=scope, verb=verb).failure


def first_error(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a Salesforce error body: `[{"errorCode": ..., "message": ...}]`
    (REST guide, "Status Codes and Error Responses"); an HTML page (414/431) gives its text."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    if isinstance(content, dict) and "errorCode" in content:
        return str(content.get("errorCode", "")), str(content.get("message", ""))
    return "", str(content)[:200]


def request_error(failure: Failure, what: str, status: int | None, code: str, message: str) -> ConnectorError:
    """The exception a caller raises for `failure`; `what` names the call (kind and path)."""
    kw: dict[str, Any] = {"status": status, "code": code or None}
    if failure is Failure.RETRY:
        shown = f"HTTP {status} " if status else ""
        return TransientError(f"{what}: {shown}{code or ''} {message[:200]}".strip(), **kw)
    if failure is Failure.BUDGET:
        return BudgetExhausted(f"Salesforce daily API limit exceeded ({message}); messages stay queued", **kw)
    if failure is Failure.STORAGE_FULL:
        return StorageFull(STORAGE_FULL_REASON, **kw)
    if failure is Failure.ABSENT:
        return FatalError(f"{what}: not found ({code}: {message})", **kw)
    return FatalError(f"{what}: HTTP {status} {code}: {message}", **kw)


STORAGE_FULL_REASON = ("the org's data storage is full (Salesforce STORAGE_LIMIT_EXCEEDED): free space or raise "
                       "the limit in Setup → Storage Usage; messages stay queued and the next run continues")


def is_poison(exc: ConnectorError) -> bool:
    """A whole request refused for what it carries (a query too long, a body Salesforce cannot
    read), not for who sends it: splitting the batch finds the messages behind it."""
    return isinstance(exc, FatalError) and exc.status is not None and classify_request(
        exc.status, exc.code, "", scope=Scope.TOP_LEVEL, verb=Verb.WRITE) is Failure.POISON


# -- one record of a collections call -----------------------------------------------------


@dataclass(frozen=True)
class RowRule:
    action: RowAction
    code: str
    message: tuple[str, ...] = ()     # any of these fragments (case-insensitive); () matches any text
    shrinkable: bool | None = None    # None: either; True: only while the collection can get smaller


# CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY carries what the org's trigger or flow threw, in its
# message: "LeadTrigger: execution of AfterInsert caused by: System.DmlException: ... first
# error: UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record"
# (SFDO-Community/declarative-lookup-rollup-summaries #847, #1241). A lock or a timeout passes
# when tried again. Governor limits are per transaction, and a collection of up to 200 records
# is one transaction for the triggers it fires (Apex Developer Guide, "Execution Governors and
# Limits": 100 SOQL queries, 10,000 ms CPU per synchronous transaction; "Triggers and Order of
# Execution": records are processed in chunks of 200), so "Too many SOQL queries: 101" and
# "Apex CPU time limit exceeded" pass with fewer records a call.
_AUTOMATION = "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
_LOCKED = ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")
_TIMED_OUT = ("Request timed out", "timed out", "timeout")
_TOO_MUCH = ("Too many SOQL queries", "Apex CPU time limit exceeded", "Too many query rows",
             "Too many DML rows")
_CPU = ("Apex CPU time limit exceeded",)

ROW_TABLE: tuple[RowRule, ...] = (
    # A row lock that outlasted Salesforce's ~10 s wait (errorcodes: UNABLE_TO_LOCK_ROW).
    RowRule(RowAction.RETRY_LATER, "UNABLE_TO_LOCK_ROW"),
    RowRule(RowAction.RETRY_LATER, _AUTOMATION, _LOCKED),
    RowRule(RowAction.RETRY_LATER, _AUTOMATION, _TIMED_OUT),
    RowRule(RowAction.RETRY_SMALLER, _AUTOMATION, _TOO_MUCH, shrinkable=True),
    # One record alone still runs out of CPU: the org is busy, try later; one record alone
    # still needs 101 queries: the automation's own fault for this record, quarantined.
    RowRule(RowAction.RETRY_LATER, _AUTOMATION, _CPU, shrinkable=False),
    # Anything else the automation threw (a flow's fault, addError) is this record's: REJECT
    # with the org's own message. So are validation rules (FIELD_CUSTOM_VALIDATION_EXCEPTION,
    # the rule's message and `fields`) and a flow that cannot run (CANNOT_EXECUTE_FLOW_TRIGGER).
    RowRule(RowAction.REJECT, _AUTOMATION),
    RowRule(RowAction.REJECT, "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
    RowRule(RowAction.REJECT, "CANNOT_EXECUTE_FLOW_TRIGGER"),
    RowRule(RowAction.CONVERTED_LEAD, "CANNOT_UPDATE_CONVERTED_LEAD"),
    # "Already a campaign member." has the same code as a taken external id, told apart only
    # by its text (Salesforce's CampaignMember duplicate answer).
    RowRule(RowAction.ALREADY_A_MEMBER, "DUPLICATE_VALUE", ("campaign member",)),
    RowRule(RowAction.DUPLICATE_KEY, "DUPLICATE_VALUE"),
    # A write naming a deleted record: ENTITY_IS_DELETED with an empty `fields` list
    # (forcedotcom/sf-fx-runtime-java, delete-already-deleted.json).
    RowRule(RowAction.GONE, "ENTITY_IS_DELETED"),
    # Also answered for a record type or owner the user may not use ("Record Type ID: this ID
    # value isn't valid for the user", fields ["RecordTypeId"]): gone only when a read says so.
    RowRule(RowAction.BAD_REFERENCE, "INVALID_CROSS_REFERENCE_KEY"),
    # Record-level sharing: "insufficient access rights on object id" for one record another
    # user owns (SalesforceFoundation/NPSP #1628). Object-level refusal is preflight's (describe).
    RowRule(RowAction.NO_ACCESS, "INSUFFICIENT_ACCESS_OR_READONLY"),
    RowRule(RowAction.ORG_FULL, "STORAGE_LIMIT_EXCEEDED"),
    *(RowRule(RowAction.ORG_SETUP, c) for c in (
        "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_TYPE", "NOT_FOUND")),
)

# Of the org-setup codes, those no message's data can cause: one refusal of an object's writes
# is enough to say the org refuses the mapping (a restricted picklist may be one message's odd
# value). Record-level refusals (NO_ACCESS, BAD_REFERENCE) are one record's, never org-wide.
_NEVER_DATA = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE", "NOT_FOUND"})


def row_rule(code: str | None, message: str, *, shrinkable: bool = True) -> RowRule | None:
    """The first row of :data:`ROW_TABLE` for this record's error, if any."""
    text = (message or "").lower()
    for rule in ROW_TABLE:
        if rule.code != code or (rule.shrinkable is not None and rule.shrinkable != shrinkable):
            continue
        if not rule.message or any(m.lower() in text for m in rule.message):
            return rule
    return None


def classify_row(code: str | None, message: str, *, shrinkable: bool = True) -> RowAction:
    """What to do with one failed record; REJECT (quarantine its messages) when no row matches.
    `shrinkable`: whether the record could still go in a smaller collection."""
    rule = row_rule(code, message, shrinkable=shrinkable)
    return rule.action if rule else RowAction.REJECT


def never_data(action: RowAction, code: str) -> bool:
    """Whether one refusal like this says the org (not a message's data) refuses the mapping."""
    return action is RowAction.ORG_SETUP and code in _NEVER_DATA
