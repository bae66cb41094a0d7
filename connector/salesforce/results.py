"""Per-record results of Salesforce writes, classified once, here, into what the engine does next.

Salesforce answers an sObject Collections call with 200 and one result per record; a failed
record carries `statusCode`, `message` and `fields` (salesforce-recorded-responses.md §1b, §1c).
The stages never look at codes or message text: they switch on :class:`RowAction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RowAction(StrEnum):
    OK = "ok"
    RETRY_LATER = "retry_later"          # a row lock that outlasted the retries: the message waits
    CONVERTED_LEAD = "converted_lead"    # the Lead was converted: write to its Contact instead
    DUPLICATE_KEY = "duplicate_key"      # an external id (or another unique field) already taken
    ALREADY_A_MEMBER = "already_a_member"  # the person is already in that Campaign (a member made by hand)
    GONE = "gone"                        # a record written or referenced was deleted in Salesforce
    ORG_SETUP = "org_setup"              # the org refuses the mapping (field, access, restricted picklist)
    REJECT = "reject"                    # this record's data is refused: quarantine its messages
    # The org's own life (issue #16):
    RETRY_SMALLER = "retry_smaller"      # automation hit a per-transaction limit a smaller collection avoids
    NO_ACCESS = "no_access"              # record-level sharing: this one record may not be edited by us
    BAD_REFERENCE = "bad_reference"      # INVALID_CROSS_REFERENCE_KEY: gone only if a read confirms it
    ORG_FULL = "org_full"                # STORAGE_LIMIT_EXCEEDED: org-wide, stop the run (StorageFull)


# Codes that say the org's setup, not the message, is wrong: when they fail a whole object's
# writes, the run stops (exit 2) instead of quarantining message after message (issue #9).
ORG_SETUP_CODES = frozenset({
    "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INSUFFICIENT_ACCESS_OR_READONLY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "INVALID_TYPE", "NOT_FOUND",
})


# Of those, the codes no message's data can cause: one such refusal of an object's writes is
# enough to say the org refuses the mapping (a restricted picklist may be one message's odd value).
NEVER_DATA_CODES = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INSUFFICIENT_ACCESS_OR_READONLY",
                              "INVALID_TYPE", "NOT_FOUND"})


def classify(code: str | None, message: str, fields: tuple[str, ...] = ()) -> RowAction:
    """The one place that reads Salesforce's per-record error codes."""
    if code == "UNABLE_TO_LOCK_ROW":
        return RowAction.RETRY_LATER
    if code == "CANNOT_UPDATE_CONVERTED_LEAD":
        return RowAction.CONVERTED_LEAD
    if code == "DUPLICATE_VALUE":
        # "Already a campaign member." (salesforce-recorded-responses.md §1c): same code as a
        # taken external id, told apart only by its text.
        if "campaign member" in message.lower():
            return RowAction.ALREADY_A_MEMBER
        return RowAction.DUPLICATE_KEY
    # A real org answers a write naming a deleted record with ENTITY_IS_DELETED and an empty
    # `fields` list (recorded: sf-fx-runtime-java delete-already-deleted.json); a reference to
    # an id that is gone may also come back as INVALID_CROSS_REFERENCE_KEY.
    if code in ("ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"):
        return RowAction.GONE
    if code in ORG_SETUP_CODES:
        return RowAction.ORG_SETUP
    return RowAction.REJECT


@dataclass(frozen=True)
class WriteError:
    """Why Salesforce refused one record, and what to do about it."""

    code: str
    message: str
    fields: tuple[str, ...] = ()
    action: RowAction = RowAction.REJECT

    @classmethod
    def of(cls, code: str | None, message: str, fields: tuple[str, ...] = ()) -> WriteError:
        return cls(code or "UNKNOWN", message, fields, classify(code, message, fields))

    def describe(self) -> str:
        where = f" (field {', '.join(self.fields)})" if self.fields else ""
        return f"Salesforce {self.code}: {self.message}{where}"


@dataclass(frozen=True)
class RowResult:
    """The outcome of one record in a collections call."""

    ok: bool
    id: str | None = None
    created: bool | None = None
    error: WriteError | None = None

    @property
    def action(self) -> RowAction:
        return RowAction.OK if self.ok else (self.error.action if self.error else RowAction.REJECT)

    # Kept for readers of the raw code (logs, tests).
    @property
    def code(self) -> str | None:
        return self.error.code if self.error else None

    @property
    def message(self) -> str:
        return self.error.message if self.error else ""

    @property
    def fields(self) -> tuple[str, ...]:
        return self.error.fields if self.error else ()

    @classmethod
    def failed(cls, code: str, message: str, fields: tuple[str, ...] = ()) -> RowResult:
        return cls(False, error=WriteError.of(code, message, fields))

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RowResult:
        if item.get("success"):
            return cls(True, item.get("id"), item.get("created"))
        errs = item.get("errors") or [{}]
        first = errs[0]
        message = first.get("message", "")
        matches = duplicate_matches(first)
        if matches:
            # A duplicate rule blocked the save: name the records it matched, so an admin can
            # merge them or set the person's organisation_uid, then replay.
            message = f"{message} (matches {', '.join(matches)})"
        code = first.get("statusCode") or first.get("errorCode")
        return cls(False, item.get("id"), None, WriteError.of(code, message, tuple(first.get("fields") or ())))


def duplicate_matches(error: dict[str, Any]) -> list[str]:
    """Record ids in a DUPLICATES_DETECTED error's duplicate result.

    Real single-record bodies spell the key `duplicateResut` in some API versions (v50-v54,
    salesforce-recorded-responses.md §1d); others spell it `duplicateResult`: read both.
    """
    ids: list[str] = []
    block = error.get("duplicateResult") or error.get("duplicateResut") or {}
    for result in block.get("matchResults") or []:
        for match in result.get("matchRecords") or []:
            rid = (match.get("record") or {}).get("Id")
            if rid and rid not in ids:
                ids.append(rid)
    return ids
