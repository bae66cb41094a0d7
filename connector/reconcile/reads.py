"""Batched reads of what Salesforce holds: ids packed into `IN` lists that fit the URL, the
queries sent five per `/composite` call, through queryAll so deleted and merged-away records
come back too (IsDeleted, MasterRecordId) while they are in the Recycle Bin.

An event of 20,000 members costs about 34 member queries and as many person queries: 14
composite calls, not thousands.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from connector.salesforce.gateway import SalesforceGateway
from connector.salesforce.ids import looks_like_id, to18
from connector.salesforce.soql import pack_or

# What reconcile reads of each object besides the fields the connector wrote.
BASE_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": ("Id", "IsDeleted", "MasterRecordId", "IsConverted", "ConvertedContactId", "FirstName", "LastName",
             "Email"),
    "Contact": ("Id", "IsDeleted", "MasterRecordId", "FirstName", "LastName", "Email"),
    "Campaign": ("Id", "IsDeleted", "Name", "ParentId"),
    "CampaignMember": ("Id", "IsDeleted", "CampaignId", "LeadId", "ContactId", "Status"),
}


def packed_in(sobject: str, fields: Iterable[str], ids: Iterable[str]) -> list[str]:
    """`SELECT fields FROM sobject WHERE Id IN (...)` packed into as few queries as Salesforce
    accepts (the one SOQL builder, connector/salesforce/soql.py)."""
    return pack_or(f"SELECT {', '.join(sorted(set(fields)))} FROM {sobject} WHERE ", [("Id", ids)])


async def fetch(gateway: SalesforceGateway, wanted: dict[str, tuple[set[str], set[str]]]) -> dict[str, dict[str, Any]]:
    """{sobject: (fields, ids)} → {18-char id: record (with "_sobject")}, every query of every
    object in one list, five per composite call."""
    planned: list[tuple[str, str]] = []
    for sobject, (fields, ids) in wanted.items():
        if ids:
            planned += [(sobject, q) for q in packed_in(sobject, fields, ids)]
    results = await gateway.query_many([q for _, q in planned], include_deleted=True) if planned else []
    out: dict[str, dict[str, Any]] = {}
    for (sobject, _), records in zip(planned, results, strict=True):
        for rec in records:
            rec["_sobject"] = sobject
            out[to18(rec["Id"])] = rec
    return out


# -- comparing values ------------------------------------------------------------------------
def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or v == []


def _instant(v: str) -> _dt.datetime | None:
    try:
        d = _dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace("+0000", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)


def same(expected: Any, actual: Any) -> bool:
    """Whether Salesforce holds what was written, allowing for how it formats values
    (2025-09-11T00:30:00Z vs 2025-09-11T00:30:00.000+0000, 15- vs 18-char ids, 1 vs 1.0)."""
    if _blank(expected) and _blank(actual):
        return True
    if _blank(expected) or _blank(actual):
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    if isinstance(expected, (int, float)) or isinstance(actual, (int, float)):
        try:
            return float(expected) == float(actual)
        except (TypeError, ValueError):
            return False
    e, a = str(expected).replace("\r\n", "\n"), str(actual).replace("\r\n", "\n")
    if e == a:
        return True
    if looks_like_id(e) and looks_like_id(a):
        return to18(e) == to18(a)
    if "@" in e and " " not in e and e.casefold() == a.casefold():
        return True      # an email address: its case carries no meaning
    if "T" in e and "T" in a:
        ie, ia = _instant(e), _instant(a)
        if ie is not None and ia is not None:
            return ie == ia
    return False
