"""A dry run's plan in words: per message, what a real run would write and why.

    create Lead for acme/event_person/51486: no match on organisation_uid or email
    CampaignMember status Registered → Attended
"""

from __future__ import annotations

from typing import Any

_RUNG = {
    "organisation_uid": "organisation_uid is its id",
    "organisation_uid_field": "organisation_uid matched the configured field",
    "link": "linked before",
    "jomablue_id": "a record carries its Jomablue id",
    "email": "matched on email",
    "converted": "its Lead was converted",
}


def plan_lines(message_key: str, outcome_detail: dict[str, Any], planned: list[dict[str, Any]]) -> list[str]:
    """Sentences for one message, from its outcome detail and the writes planned for it."""
    lines: list[str] = []
    match = outcome_detail.get("match") or {}
    for write in planned:
        if message_key not in write.get("messages", ()):
            continue
        op, sobject, label = write["op"], write["sobject"], write.get("label") or ""
        if sobject in ("Lead", "Contact") and match.get("rung") == "create":
            lines.append(f"create {sobject} for {label.removeprefix(f'new {sobject} for ')}: "
                         "no match on organisation_uid or email")
        elif sobject in ("Lead", "Contact"):
            lines.append(f"update {label} ({_RUNG.get(match.get('rung', ''), match.get('rung', 'matched'))})")
        elif sobject == "CampaignMember":
            continue   # said below, with the status
        else:
            lines.append(f"{'create or update' if op == 'upsert' else op} {label or sobject}")
    member = outcome_detail.get("member")
    if member:
        if "was" in member and member["was"]:
            lines.append(f"CampaignMember status {member['was']} → {member['status']}")
        elif "was" in member:
            lines.append(f"CampaignMember {member['key']} with status {member['status']}")
    if not lines:
        lines.append("nothing to write" if match else "no Salesforce write")
    return lines
