"""`reconcile --fix`: repair what drifted, through the gateway (so within the rate limit and the
daily budget guard), in the order the records depend on each other:

1. people merged away or converted: the state store follows them to the surviving record
2. deleted event Campaigns, then session Campaigns: created again by upsert on their external
   id with what the connector last wrote, with the mapping's member statuses
3. deleted members: created again (upsert) in the Campaign and with the person they belong to now
4. fields changed by hand: set back to what the connector wrote
5. deleted lead captures: created again

A person deleted in Salesforce is not brought back (it may have been deleted on purpose); what
could not be repaired keeps `fixed: false` and a note saying why.
"""

from __future__ import annotations

from typing import Any

from connector.errors import StopRun
from connector.reconcile.check import Reconciler
from connector.reconcile.model import Finding
from connector.salesforce.ids import looks_like_id, to18
from connector.salesforce.results import RowAction, RowResult

_CREATE_ONLY = ("Id", "CampaignId", "LeadId", "ContactId")


async def fix(rc: Reconciler) -> None:
    idmap: dict[str, str] = {}    # old record id → the record that stands for it now
    try:
        _relink(rc, idmap)
        await _recreate_campaigns(rc, "campaign", idmap)
        await _recreate_campaigns(rc, "session", idmap)
        await _recreate_members(rc, idmap)
        await _restore_fields(rc, idmap)
        await _recreate_captures(rc, idmap)
    except StopRun as exc:
        for f in rc.findings:
            if f.fixable and not f.fixed and not f.note:
                f.note = f"not fixed: {exc}"


def _todo(rc: Reconciler, *kinds: str) -> list[Finding]:
    return [f for f in rc.findings if f.kind in kinds and f.fixable and not f.fixed]


def _named(value: str | None, f: Finding, what: str) -> str:
    """What a finding of this kind always names (the record of a merge, the field of a *_field)."""
    if value is None:
        raise ValueError(f"a {f.kind} finding without its {what}")
    return value


def _remap(value: Any, idmap: dict[str, str]) -> Any:
    if isinstance(value, str) and looks_like_id(value):
        return idmap.get(to18(value), value)
    return value


def _rewrite(rc: Reconciler, f: Finding, idmap: dict[str, str]) -> dict[str, Any]:
    """The fields the connector last wrote to the finding's record, ids pointed at recreated records."""
    written = (rc.written.get(f.record_id or "") or {}).get("fields") or {}
    return {k: _remap(v, idmap) for k, v in written.items() if v is not None and k != "Id"}


def _failed(f: Finding, r: RowResult) -> None:
    f.note = f"not fixed: Salesforce {r.code}: {r.message}"


def _relink(rc: Reconciler, idmap: dict[str, str]) -> None:
    for f in _todo(rc, "person_merged", "lead_converted"):
        survivor = rc.context[id(f)]["survivor"]
        sobject = "Contact" if f.kind == "lead_converted" else f.object
        old = _named(f.record_id, f, "record id")
        rc.state.relink_person(old, sobject, survivor)
        idmap[old] = survivor
        f.fixed = True
        f.note = f"the connector now writes to {sobject} {survivor}"


async def _recreate_campaigns(rc: Reconciler, role: str, idmap: dict[str, str]) -> None:
    todo = _todo(rc, f"{role}_deleted")
    if not todo:
        return
    rtype = "event" if role == "campaign" else "session_participation"
    rm = rc.mappings.for_type(rtype)
    mapping = (rm.campaign if role == "campaign" else rm.session_campaign) if rm else None
    key_field = mapping.upsert_key if mapping else "Jomablue_Id__c"
    records = []
    for f in todo:
        fields = _rewrite(rc, f, idmap)
        fields.setdefault(key_field, f.jomablue_id)
        fields.setdefault("Name", f.name)
        parent = fields.get("ParentId")
        if parent and (parent not in idmap.values()) and any(
                x.record_id == parent and not x.fixed for x in rc.findings if x.kind == "campaign_deleted"):
            fields.pop("ParentId")      # its parent is gone and could not be recreated
        records.append(fields)
    results = await rc.gateway.upsert("Campaign", key_field, records, serial=True)
    created = []
    for f, r in zip(todo, results, strict=True):
        if not r.ok or not r.id:
            _failed(f, r)
            continue
        new = to18(r.id)
        idmap[_named(f.record_id, f, "record id")] = new
        f.fixed, f.related_id, f.related_object = True, new, "Campaign"
        f.note = f"created again as Campaign {new}"
        if role == "campaign":
            rc.state.put_event(_named(f.event_id, f, "event id"), campaign_id=new)
        else:
            rc.state.put_record(f.jomablue_id, "Campaign", new)
        created.append(new)
    await _statuses(rc, created)


async def _statuses(rc: Reconciler, campaign_ids: list[str]) -> None:
    """A recreated Campaign gets the mapping's member statuses before members go back into it."""
    recs: list[dict[str, Any]] = []
    for cid in campaign_ids:
        for n, s in enumerate(rc.mappings.statuses):
            rec = {"CampaignId": cid, "Label": s.label, "HasResponded": s.responded,
                   "SortOrder": 10 + (s.sort_order if s.sort_order is not None else n)}
            if s.default:
                rec["IsDefault"] = True
            recs.append(rec)
    if not recs:
        return
    results = await rc.gateway.create("CampaignMemberStatus", recs)
    rc.state.add_campaign_statuses([(rec["CampaignId"], rec["Label"]) for rec, r in zip(recs, results, strict=True)
                                    if r.ok or r.action is RowAction.DUPLICATE_KEY])


async def _recreate_members(rc: Reconciler, idmap: dict[str, str]) -> None:
    todo, records = [], []
    lost_campaigns = {f.record_id for f in rc.findings if f.kind in ("campaign_deleted", "session_deleted")
                      and not f.fixed}
    for f in _todo(rc, "member_deleted"):
        ctx = rc.context[id(f)]
        m, person_id = ctx["member"], _remap(ctx["person_id"], idmap)
        cid = _remap(m.get("campaign_id"), idmap)
        if not cid or cid in lost_campaigns:
            f.note = "not recreated: its Campaign is deleted and could not be created again"
            continue
        fields = {k: v for k, v in _rewrite(rc, f, idmap).items() if k not in _CREATE_ONLY}
        fields.update({rc.member_key: m["member_key"], "CampaignId": cid,
                       ("ContactId" if person_id.startswith("003") else "LeadId"): person_id})
        if m.get("status"):
            fields["Status"] = m["status"]
        if rc.cat_field:
            fields[rc.cat_field] = m.get("categories_text")
        todo.append((f, m, cid, person_id))
        records.append({k: v for k, v in fields.items() if v is not None})
    if not records:
        return
    order = sorted(range(len(records)), key=lambda i: records[i]["CampaignId"])   # members lock their Campaign
    todo, records = [todo[i] for i in order], [records[i] for i in order]
    results = await rc.gateway.upsert("CampaignMember", rc.member_key, records, serial=True)
    for (f, m, cid, person_id), r in zip(todo, results, strict=True):
        if not r.ok or not r.id:
            _failed(f, r)
            continue
        new = to18(r.id)
        if f.record_id:
            idmap[f.record_id] = new
        rc.state.put_member(m["member_key"], cm_id=new, campaign_id=cid, person_sf_id=person_id)
        f.fixed, f.related_id, f.related_object = True, new, "CampaignMember"
        f.note = f"created again as CampaignMember {new}"


async def _restore_fields(rc: Reconciler, idmap: dict[str, str]) -> None:
    by_record: dict[tuple[str, str], list[Finding]] = {}
    for f in _todo(rc, "campaign_field", "session_field", "person_field", "member_field", "capture_field"):
        if f.record_id in idmap:     # created again just now, with every field
            f.fixed, f.note = True, "written with the record created again"
            continue
        by_record.setdefault((f.object, f.record_id or ""), []).append(f)
    by_object: dict[str, list[tuple[dict[str, Any], list[Finding]]]] = {}
    for (sobject, rid), findings in by_record.items():
        rec: dict[str, Any] = {"Id": rid}
        for f in findings:
            value = _remap(rc.context[id(f)]["value"], idmap)
            field = _named(f.field, f, "field")
            if value is None or value == "":
                rec.setdefault("fieldsToNull", []).append(field)
            else:
                rec[field] = value
        by_object.setdefault(sobject, []).append((rec, findings))
    for sobject, items in by_object.items():
        results = await rc.gateway.update(sobject, [rec for rec, _ in items], serial=sobject == "CampaignMember")
        for (_rec, findings), r in zip(items, results, strict=True):
            for f in findings:
                if r.ok:
                    f.fixed, f.note = True, "set back to what the connector wrote"
                else:
                    _failed(f, r)


async def _recreate_captures(rc: Reconciler, idmap: dict[str, str]) -> None:
    keys = {}
    for rm in rc.mappings.resources.values():
        if rm.capture is not None:
            keys[rm.capture.object] = rm.capture.upsert_key
    by_object: dict[str, list[tuple[Finding, dict[str, Any]]]] = {}
    for f in _todo(rc, "capture_deleted"):
        key_field = keys.get(f.object, "Jomablue_Id__c")
        fields = _rewrite(rc, f, idmap)
        fields.setdefault(key_field, f.jomablue_id)
        by_object.setdefault(f.object, []).append((f, fields))
    for sobject, items in by_object.items():
        key_field = keys.get(sobject, "Jomablue_Id__c")
        results = await rc.gateway.upsert(sobject, key_field, [rec for _, rec in items])
        for (f, _rec), r in zip(items, results, strict=True):
            if not r.ok or not r.id:
                _failed(f, r)
                continue
            new = to18(r.id)
            rc.state.put_record(f.jomablue_id, sobject, new)
            f.fixed, f.related_id, f.related_object = True, new, sobject
            f.note = f"created again as {sobject} {new}"
