"""Refs: values a mapping rule can take from what the engine learned (`ref: campaign.id`).

The mapping compiler accepts exactly the names of :data:`REF_NAMES`; the engine builds the
values with :func:`refs`, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REF_NAMES = (
    "campaign.id", "session_campaign.id", "person.id", "person.lead_id", "person.contact_id",
    "status", "categories.names", "event.timezone",
)
ID_REFS = frozenset({"campaign.id", "session_campaign.id", "person.id", "person.lead_id", "person.contact_id"})


def refs(*, campaign_id: str | None = None, session_campaign_id: str | None = None,
         person: tuple[str, str] | None = None, status: str | None = None,
         category_names: Sequence[str] | None = None, event_timezone: str | None = None) -> dict[str, Any]:
    """The refs of one message; `person` is (sobject, Id) of the person's Lead or Contact."""
    out: dict[str, Any] = {"event.timezone": event_timezone}
    if campaign_id is not None:
        out["campaign.id"] = campaign_id
    if session_campaign_id is not None:
        out["session_campaign.id"] = session_campaign_id
    if person is not None:
        sobject, sf_id = person
        out.update({"person.id": sf_id, "person.lead_id": sf_id if sobject == "Lead" else None,
                    "person.contact_id": sf_id if sobject == "Contact" else None})
    if status is not None:
        out["status"] = status
    if category_names is not None:
        out["categories.names"] = list(category_names)
    return out
