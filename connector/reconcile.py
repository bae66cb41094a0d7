"""`connector reconcile`: compare what the connector synced (state store) with what Salesforce holds.

Drift kinds: a Campaign or CampaignMember that is gone, a member whose Status or category names
differ from what the connector last wrote. `--fix` re-pushes those (update by Id, or upsert
by Jomablue id for members that were deleted) in sObject Collections.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

from simple_salesforce import format_soql

from connector.mapping import MappingSet
from connector.salesforce.gateway import SalesforceGateway
from connector.salesforce.ids import to18
from connector.state.base import StateStore


@dataclass
class Drift:
    kind: str            # campaign_missing | member_missing | status | categories
    event_id: str
    key: str             # the Jomablue id of the record
    salesforce_id: str | None
    expected: str | None
    actual: str | None
    fixed: bool = False


async def reconcile(gateway: SalesforceGateway, state: StateStore, mappings: MappingSet,
                    event_id: str | None = None, fix: bool = False) -> dict[str, Any]:
    rows = state.all_events(event_id)
    mm = mappings.for_type("person").membership if mappings.for_type("person") else None
    cat_field = mm.field_for_ref("categories.names") if mm else None
    key_field = mm.upsert_key if mm else "Jomablue_Id__c"
    drift: list[Drift] = []
    checked = {"campaigns": 0, "members": 0}
    for ev in rows:
        eid, cid = ev["event_id"], ev["campaign_id"]
        if not cid:
            continue
        members = state.members_of_event(eid)
        campaigns = sorted({cid, *(m["campaign_id"] for m in members if m.get("campaign_id"))})
        found_campaigns = {to18(r["Id"]) for r in await gateway.query(
            format_soql("SELECT Id FROM Campaign WHERE Id IN {}", campaigns))}
        checked["campaigns"] += len(campaigns)
        for c in campaigns:
            if c not in found_campaigns:
                drift.append(Drift("campaign_missing", eid, eid if c == cid else c, c, "present", "missing"))
        fields = ["Id", "Status", key_field] + ([cat_field] if cat_field else [])
        sf: dict[str, dict[str, Any]] = {}
        live = sorted(c for c in campaigns if c in found_campaigns)
        for i in range(0, len(live), 100):
            soql = format_soql(f"SELECT {', '.join(fields)} FROM CampaignMember WHERE CampaignId IN {{}}", live[i:i + 100])
            for r in await gateway.query(soql):
                sf[to18(r["Id"])] = r
        for m in members:
            if m["campaign_id"] not in found_campaigns:
                continue
            checked["members"] += 1
            got = sf.get(m["cm_id"])
            if got is None:
                drift.append(Drift("member_missing", eid, m["member_key"], m["cm_id"], m["status"], None))
                continue
            if m.get("status") and got.get("Status") != m["status"]:
                drift.append(Drift("status", eid, m["member_key"], m["cm_id"], m["status"], got.get("Status")))
            if cat_field and (got.get(cat_field) or None) != (m.get("categories_text") or None):
                drift.append(Drift("categories", eid, m["member_key"], m["cm_id"], m.get("categories_text"),
                                   got.get(cat_field)))
    if fix and drift:
        await _fix(gateway, state, drift, cat_field, key_field)
    return {"events": len(rows), "checked": checked, "drift": [asdict(d) for d in drift],
            "unfixed": sum(1 for d in drift if not d.fixed)}


async def _fix(gateway: SalesforceGateway, state: StateStore, drift: list[Drift], cat_field: str | None,
               key_field: str) -> None:
    members = state.members({d.key for d in drift})
    updates, upserts = [], []
    for d in drift:
        m = members.get(d.key)
        if d.kind in ("status", "categories") and m:
            rec: dict[str, Any] = {"Id": m["cm_id"], "Status": m["status"]}
            if cat_field:
                rec[cat_field] = m.get("categories_text")
            updates.append((d, rec))
        elif d.kind == "member_missing" and m:
            who = "ContactId" if (m.get("person_sf_id") or "").startswith("003") else "LeadId"
            rec = {key_field: d.key, "CampaignId": m["campaign_id"], who: m["person_sf_id"], "Status": m["status"]}
            if cat_field and m.get("categories_text"):
                rec[cat_field] = m["categories_text"]
            upserts.append((d, rec))
    if updates:
        res = await gateway.update("CampaignMember", [r for _, r in updates], serial=True)
        for (d, _), r in zip(updates, res, strict=True):
            d.fixed = r.ok
    if upserts:
        res = await gateway.upsert("CampaignMember", key_field, [r for _, r in upserts], serial=True)
        for (d, _rec), r in zip(upserts, res, strict=True):
            d.fixed = r.ok
            if r.ok and r.id:
                state.put_member(d.key, cm_id=to18(r.id))


def render(report: dict[str, Any], fmt: str) -> str:
    rows = report["drift"]
    cols = ["kind", "event_id", "key", "salesforce_id", "expected", "actual", "fixed"]
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "html":
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c] if r[c] is not None else ''))}</td>" for c in cols)
                       + "</tr>" for r in rows)
        head = "".join(f"<th>{c}</th>" for c in cols)
        return (f"<!doctype html><meta charset='utf-8'><title>Reconciliation</title>"
                f"<h1>Reconciliation</h1><p>{report['events']} events, {report['checked']['members']} members checked, "
                f"{len(rows)} drifted, {report['unfixed']} unfixed</p><table border=1><tr>{head}</tr>{body}</table>")
    lines = [f"Reconciliation: {report['events']} events, {report['checked']['campaigns']} campaigns, "
             f"{report['checked']['members']} members checked; {len(rows)} drifted, {report['unfixed']} unfixed"]
    for r in rows:
        lines.append(f"  {r['kind']:<17} {r['key']:<40} expected {r['expected']!r:<20} Salesforce {r['actual']!r}"
                     + ("  (fixed)" if r["fixed"] else ""))
    return "\n".join(lines)
