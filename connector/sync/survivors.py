"""Records a write found gone: read them by Id through queryAll, and follow a person merged away
(or converted) to the record that survived (issue #16).

Salesforce deletes the losing record of a merge with `MasterRecordId` set to the record kept
(Lead and Contact object reference, field MasterRecordId: "If this record was deleted as the
result of a merge, this field contains the ID of the record that was kept";
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_lead.htm),
and moves its CampaignMembers to the survivor. A deleted record is still readable, with
`IsDeleted`, through the queryAll resource ("includes SOQL queries that return records that have
been deleted because of a merge or delete";
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm)
as long as it is in the Recycle Bin. A survivor may itself have been merged again (a chain) or,
for a Lead, converted: then its Contact (`ConvertedContactId`) is the person.

Every object's ids go in one `query_many` call (five queries to a composite request); each further
hop of a chain costs one more call, at most MERGE_HOPS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.salesforce.ids import to18
from connector.salesforce.soql import pack_or
from connector.sync.stage import Reader

MERGE_HOPS = 5   # a survivor merged again is followed this far
PERSON_OBJECTS = ("Lead", "Contact")
_TRACE_FIELDS = {"Lead": {"Id", "IsDeleted", "MasterRecordId", "IsConverted", "ConvertedContactId"},
                 "Contact": {"Id", "IsDeleted", "MasterRecordId"}}


@dataclass(frozen=True)
class Survivor:
    sobject: str
    sf_id: str
    record: Mapping[str, Any]     # the live record as read (the fields asked for)


@dataclass
class Trace:
    """What a read by Id found: each record as it is now (deleted ones too), and for each person
    id read, the live record it ended in (itself when not merged away)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)     # id18 → record (with _sobject)
    survivors: dict[str, Survivor | None] = field(default_factory=dict)  # person id18 → survivor; None: gone

    def gone(self, sf_id: str) -> bool:
        """Confirmed gone: not found even through queryAll, or deleted."""
        rec = self.records.get(to18(sf_id))
        return rec is None or bool(rec.get("IsDeleted"))

    def moved(self, sf_id: str) -> Survivor | None:
        """The other record a merged-away (or converted) person now is; None if not moved."""
        s = self.survivors.get(to18(sf_id))
        return s if s is not None and s.sf_id != to18(sf_id) else None


async def read_by_id(reader: Reader, ids: Mapping[str, Iterable[str]],
                     fields: Mapping[str, Iterable[str]] | None = None) -> dict[str, dict[str, Any]]:
    """id18 → record, every object in one call, deleted records included (queryAll)."""
    planned: list[tuple[str, str]] = []
    for sobject, wanted in sorted(ids.items()):
        columns = {"Id", "IsDeleted", *_TRACE_FIELDS.get(sobject, ()), *(fields or {}).get(sobject, ())}
        select = ", ".join(sorted(columns))
        planned += [(sobject, q) for q in pack_or(f"SELECT {select} FROM {sobject} WHERE ", [("Id", wanted)])]
    if not planned:
        return {}
    pages = await reader.query_many([q for _, q in planned], include_deleted=True)
    out: dict[str, dict[str, Any]] = {}
    for (sobject, _), page in zip(planned, pages, strict=True):
        for rec in page:
            out[to18(rec["Id"])] = {**rec, "Id": to18(rec["Id"]), "_sobject": sobject}
    return out


def _next(rec: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """Where a person record leads: its master when merged away, its Contact when a converted Lead."""
    if rec is None:
        return None
    if rec.get("IsDeleted"):
        return (rec["_sobject"], to18(rec["MasterRecordId"])) if rec.get("MasterRecordId") else None
    if rec["_sobject"] == "Lead" and rec.get("IsConverted") and rec.get("ConvertedContactId"):
        return "Contact", to18(rec["ConvertedContactId"])
    return None


async def trace(reader: Reader, ids: Mapping[str, Iterable[str]],
                fields: Mapping[str, Iterable[str]] | None = None) -> Trace:
    """Read `ids` (sobject → ids) through queryAll in one call and follow every Lead or Contact
    among them to its survivor (one more call per hop of a chain)."""
    out = Trace(records=await read_by_id(reader, ids, fields))
    at: dict[str, str] = {}   # person id read → the id its chain has reached
    for sobject in PERSON_OBJECTS:
        for sf_id in ids.get(sobject, ()):
            at[to18(sf_id)] = to18(sf_id)
    known = dict(out.records)
    for _ in range(MERGE_HOPS + 1):
        pending: dict[str, set[str]] = {}
        for start, now in list(at.items()):
            rec = known.get(now)
            nxt = _next(rec)
            if rec is not None and not rec.get("IsDeleted") and nxt is None:
                out.survivors[start] = Survivor(rec["_sobject"], now, rec)
                del at[start]
            elif nxt is None:
                out.survivors[start] = None          # deleted without a master, or never found
                del at[start]
            else:
                at[start] = nxt[1]
                if nxt[1] not in known:
                    pending.setdefault(nxt[0], set()).add(nxt[1])
        if not at:
            break
        if pending:
            known.update(await read_by_id(reader, pending, fields))
    for start in at:                                  # a chain longer than MERGE_HOPS
        out.survivors[start] = None
    return out
