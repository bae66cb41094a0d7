"""The write journal: what the connector last sent to each Salesforce record.

The state store keeps the fields last sent to each record id, merged write after write, so
reconcile can compare a record with what the connector wrote, field by field, without the message
bodies (which are not kept once synced). A run's writes reach it in the batch's ChangeSet (one
transaction with everything else the batch learned); reconcile's own repairs, made outside a
batch, through :class:`WriteJournal` on the gateway's ``on_written`` hook.

What is journaled is what reconcile needs and nothing twice (issue 18: the journal was the
store's largest kind of row, two per person): of the records written once per person (Lead,
Contact, CampaignMember) only the fields a mapping overwrites on every update (``overwrite:
always``, the only ones reconcile compares), and of a CampaignMember nothing its member row
holds already (its Campaign, person, status, categories and Jomablue id: reconcile and --fix
take those from the row). Campaigns and lead captures, a few per event, keep every field:
--fix creates them again from the journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector import logs
from connector.state.base import StateStore

if TYPE_CHECKING:
    from connector.mapping import MappingSet

# Records whose contents reconcile never compares: not worth a row each.
_NOT_JOURNALED = {"CampaignMemberStatus"}
# What a CampaignMember's member row holds (campaign_id, person_sf_id, status).
MEMBER_ROW_FIELDS = frozenset({"CampaignId", "LeadId", "ContactId", "Status"})
# Written once per person: journaled as far as reconcile compares them.
_PER_PERSON = ("Lead", "Contact", "CampaignMember")

Rows = list[tuple[str, str, dict[str, Any]]]


def journal_fields(mappings: MappingSet) -> dict[str, frozenset[str]]:
    """Per object written once per person: the fields journaled (see the module's docstring)."""
    kept: dict[str, set[str]] = {}
    from_row: set[str] = set(MEMBER_ROW_FIELDS)
    for rm in mappings.resources.values():
        for rec in rm.records():
            if rec.object in _PER_PERSON:
                kept.setdefault(rec.object, set()).update(r.field for r in rec.rules if r.overwrite == "always")
        if rm.membership is not None:
            from_row.add(rm.membership.upsert_key)      # the member row's member_key
    person = mappings.for_type("person")
    cat_field = person.membership.field_for_ref("categories.names") if person and person.membership else None
    if cat_field:
        from_row.add(cat_field)                         # the member row's categories_text
    if "CampaignMember" in kept:
        kept["CampaignMember"] -= from_row
    return {k: frozenset(v) for k, v in kept.items()}


def journaled(rows: Rows, mappings: MappingSet | None = None) -> Rows:
    """The rows worth keeping: (18-char Id, sobject, fields) of objects reconcile compares, with
    the fields it needs (all of an object's fields when no mapping says which)."""
    kept = journal_fields(mappings) if mappings is not None else {}
    out: Rows = []
    for sf_id, sobject, fields in rows:
        if sobject in _NOT_JOURNALED:
            continue
        if sobject == "CampaignMember":
            fields = {k: v for k, v in fields.items() if k not in MEMBER_ROW_FIELDS}
        if sobject in kept:
            fields = {k: v for k, v in fields.items() if k in kept[sobject]}
        if fields:
            out.append((sf_id, sobject, fields))
    return out


class WriteJournal:
    def __init__(self, state: StateStore, mappings: MappingSet | None = None) -> None:
        self.state = state
        self.mappings = mappings

    def __call__(self, rows: Rows) -> None:
        rows = journaled(rows, self.mappings)
        if not rows:
            return
        try:
            self.state.put_written(rows)
        except Exception as exc:  # the sync must not fail because its bookkeeping for reconcile did
            logs.get().warning("write_journal_failed", error=f"{type(exc).__name__}: {exc}", records=len(rows),
                               note="reconcile may report these records as drifted until they are written again")
