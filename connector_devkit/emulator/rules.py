"""Org automation the connector meets in customer orgs: duplicate rules and Lead assignment rules.

Both are off in a new emulator org and switched on by a test (``org.add_duplicate_rule``,
``org.set_lead_assignment_rule``); both apply only to API requests (``Org.insert`` and friends
seed data without them), and they read the request's headers through :class:`RequestOptions`.

Sources (REST API Developer Guide, "Assignment Rule Header" and "Duplicate Rule Header"; the
captures named below):

- ``Sforce-Auto-Assign`` defaults to TRUE over REST: the active Lead assignment rule runs on
  every create and update unless the header says FALSE (an assignment rule id picks that rule).
- Duplicate rules set to Alert block API saves too, unless ``Sforce-Duplicate-Rule-Header:
  allowSave=true``; rules set to Block cannot be bypassed.
- Single-record REST answers ``[{"duplicateResut": {...}, "errorCode": "DUPLICATES_DETECTED",
  "message": ...}]`` (sic, no ``fields``; v50-v54 captures: the
  rudderlabs/rudder-server enterprise/reporting error-extractor tests, clients reading
  ``duplicateResut``); sObject Collections rows carry
  ``{"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": []}``
  with no match details (REST API Developer Guide, "Create Records Using sObject Collections";
  jetstreamapp/jetstream #482). Other API versions spell the key
  ``duplicateResult``: ``collection_detail`` lets a test have the rows carry either spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_ALERT = "Use one of these records?"


@dataclass
class RequestOptions:
    """What the current API request's headers ask of the org's automation."""

    api: bool = False  # False: a direct Org call from a test (no automation runs)
    auto_assign: str | bool = True  # True/False, or an AssignmentRule id
    allow_save: bool = False
    version: str = "62.0"

    @classmethod
    def from_headers(cls, headers: Any, version: str = "62.0") -> RequestOptions:
        assign_header = (headers.get("Sforce-Auto-Assign") or "").strip()
        auto_assign: str | bool = True
        if assign_header.lower() in ("false", "0"):
            auto_assign = False
        elif assign_header and assign_header.lower() not in ("true", "1"):
            auto_assign = assign_header  # an assignment rule id
        allow = False
        for part in (headers.get("Sforce-Duplicate-Rule-Header") or "").split(";"):
            key, _, value = part.partition("=")
            if key.strip().lower() == "allowsave":
                allow = value.strip().lower() == "true"
        return cls(api=True, auto_assign=auto_assign, allow_save=allow, version=version)


@dataclass
class DuplicateRule:
    """An active duplicate rule matching records of ``sobject`` on ``match_fields`` (any case)."""

    sobject: str
    developer_name: str
    action: str = "alert"  # alert: allowSave bypasses it; block: nothing does
    match_fields: tuple[str, ...] = ("Email",)
    on_edit: bool = True
    message: str = DEFAULT_ALERT
    collection_detail: str = "none"  # none | duplicateResult | duplicateResut
    match_rule: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if self.action not in ("alert", "block"):
            raise ValueError("action must be 'alert' or 'block'")
        if self.collection_detail not in ("none", "duplicateResult", "duplicateResut"):
            raise ValueError("collection_detail must be none, duplicateResult or duplicateResut")
        if not self.match_rule:
            self.match_rule = f"Standard_{self.sobject}_Match_Rule_v1_0"

    def key(self, record: dict[str, Any]) -> tuple | None:
        values = []
        for name in self.match_fields:
            value = record.get(name)
            if value in (None, ""):
                return None
            values.append(value.lower() if isinstance(value, str) else value)
        return tuple(values)


@dataclass
class AssignmentRule:
    """The org's active Lead assignment rule: every Lead it runs on goes to ``owner_id``."""

    name: str
    owner_id: str
    id: str = ""


@dataclass
class Automation:
    duplicate_rules: list[DuplicateRule] = field(default_factory=list)
    lead_assignment: AssignmentRule | None = None


def duplicate_result(rule: DuplicateRule, matches: list[tuple[str, str]], version: str) -> dict[str, Any]:
    """The duplicateResult object of a DUPLICATES_DETECTED error, key order as in the v54 captures."""
    return {
        "allowSave": rule.action == "alert",
        "duplicateRule": rule.developer_name,
        "duplicateRuleEntityType": rule.sobject,
        "errorMessage": rule.message,
        "matchResults": [{
            "entityType": rule.sobject,
            "errors": [],
            "matchEngine": "FuzzyMatchEngine",
            "matchRecords": [{
                "additionalInformation": [],
                "fieldDiffs": [],
                "matchConfidence": 100.0,
                "record": {"attributes": {"type": sobject,
                                          "url": f"/services/data/v{version}/sobjects/{sobject}/{rid}"},
                           "Id": rid},
            } for sobject, rid in matches],
            "rule": rule.match_rule,
            "size": len(matches),
            "success": True,
        }],
    }
