"""Per-record results of Salesforce writes, each with the action the engine takes next.

Salesforce answers an sObject Collections call with 200 and one result per record; a failed
record carries `statusCode`, `message` and `fields` (REST API Developer Guide, "sObject
Collections": UpsertResult / SaveResult; Object Reference, "UpsertResult"). The action comes
from the one classifier's row table (connector/salesforce/classify.py); the stages never look
at codes or message text: they switch on :class:`RowAction`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from connector.salesforce.classify import RowAction, classify_row

__all__ = ["RowAction", "RowResult", "WriteError", "duplicate_matches"]


@dataclass(frozen=True)
class WriteError:
    """Why Salesforce refused one record, and what to do about it."""

    code: str
    message: str
    fields: tuple[str, ...] = ()
    action: RowAction = RowAction.REJECT

    @classmethod
    def of(cls, code: str | None, message: str, fields: tuple[str, ...] = ()) -> WriteError:
        return cls(code or "UNKNOWN", message, fields, classify_row(code, message))

    def unshrinkable(self) -> WriteError:
        """The same refusal for a record already sent alone: what smaller collections cannot cure."""
        return replace(self, action=classify_row(self.code, self.message, shrinkable=False))

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
    def failed(cls, code: str, message: str, fields: tuple[str, ...] = (),
               action: RowAction | None = None) -> RowResult:
        error = WriteError.of(code, message, fields)
        return cls(False, error=error if action is None else replace(error, action=action))

    def unshrinkable(self) -> RowResult:
        return self if self.error is None else replace(self, error=self.error.unshrinkable())

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

    Real single-record bodies spell the key `duplicateResut` in some API versions (v50-v54, as
    recorded in public client fixtures); others spell it `duplicateResult` (Object Reference,
    "DuplicateResult"): read both.
    """
    ids: list[str] = []
    block = error.get("duplicateResult") or error.get("duplicateResut") or {}
    for result in block.get("matchResults") or []:
        for match in result.get("matchRecords") or []:
            rid = (match.get("record") or {}).get("Id")
            if rid and rid not in ids:
                ids.append(rid)
    return ids
