"""What a reconciliation found: findings (one per drifted record or field), per-event summaries
and the report that every renderer (table, JSON, CSV, HTML) shows the same way.

The JSON keys are a stable interface (README "Reconcile report"); add keys, never rename them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Kinds of drift, in the order reports show them, with the words an admin reads.
KINDS: dict[str, str] = {
    "campaign_deleted": "Event Campaigns deleted in Salesforce",
    "campaign_field": "Event Campaigns changed in Salesforce (renamed, dates, parent...)",
    "session_deleted": "Session Campaigns deleted in Salesforce",
    "session_field": "Session Campaigns changed in Salesforce",
    "person_deleted": "People deleted in Salesforce",
    "person_merged": "People merged into another record",
    "lead_converted": "Leads converted to Contacts",
    "person_field": "People changed in Salesforce",
    "member_deleted": "Campaign members deleted in Salesforce",
    "member_field": "Campaign members changed in Salesforce (status, categories...)",
    "capture_deleted": "Lead captures deleted in Salesforce",
    "capture_field": "Lead captures changed in Salesforce",
}


@dataclass
class Finding:
    """One thing Salesforce holds differently from what the connector wrote."""

    kind: str                      # a key of KINDS
    event_id: str | None
    object: str                    # Salesforce object: Lead, Contact, Campaign, CampaignMember...
    record_id: str | None          # the record the connector wrote (18-char id)
    jomablue_id: str               # what it stands for in Jomablue (registration, event, member...)
    name: str                      # what an admin calls it: a person's name, a Campaign's name
    field: str | None = None       # *_field kinds: the field
    expected: Any = None           # what the connector wrote
    actual: Any = None             # what Salesforce holds
    related_id: str | None = None  # the survivor of a merge, the Contact of a conversion, a recreated record
    related_object: str | None = None
    fixable: bool = True
    fixed: bool = False
    note: str = ""                 # what --fix did, or why it cannot

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EventSummary:
    event_id: str
    name: str
    campaign_id: str | None
    people_synced: int = 0
    members_expected: int = 0
    members_present: int = 0
    quarantined: int = 0
    last_message_at: str | None = None
    drift: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    generated_at: str
    org: str                        # the instance URL
    events: list[EventSummary]
    findings: list[Finding]
    api_calls: int = 0              # Salesforce API calls this reconciliation cost
    fix: bool = False
    checked: dict[str, int] = field(default_factory=dict)   # records compared, by object
    unattributed: int = 0           # findings that belong to no known event

    @property
    def unfixed(self) -> int:
        return sum(1 for f in self.findings if not f.fixed)

    def by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return {k: out[k] for k in KINDS if k in out}

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "org": self.org,
            "fix": self.fix,
            "api_calls": self.api_calls,
            "summary": {"events": len(self.events), "checked": self.checked,
                        "findings": len(self.findings), "fixed": len(self.findings) - self.unfixed,
                        "unfixed": self.unfixed, "by_kind": self.by_kind()},
            "events": [e.as_dict() for e in self.events],
            "findings": [f.as_dict() for f in self.findings],
        }
