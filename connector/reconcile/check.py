"""Compare what the connector wrote (state store + write journal) with what Salesforce holds.

For every event in the state store: its Campaign and session Campaigns, the people of its
members (deleted, merged away, converted, fields changed), the members (deleted, status and
categories, other fields) and the lead captures that point at its Campaign. Only the fields a
mapping writes on every update (`overwrite: always`) are compared: `if_empty` and `on_create`
fields are the org's to change, and a placeholder the connector wrote for an empty required
value may be replaced by a real one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from connector.mapping import MappingSet
from connector.reconcile.model import EventSummary, Finding, Report
from connector.reconcile.reads import BASE_FIELDS, fetch, same
from connector.redact import NO_REDACTION, Redactor
from connector.salesforce.gateway import SalesforceGateway
from connector.salesforce.ids import to18
from connector.state.base import StateStore

MERGE_HOPS = 5   # a survivor merged again is followed this far


class UnknownEvent(LookupError):
    """--event names an event the connector has never synced."""


def _policy(mappings: MappingSet) -> tuple[dict[str, set[str]], dict[str, dict[str, Any]]]:
    """Per object: the fields some mapping writes on every update, and the placeholder values."""
    always: dict[str, set[str]] = {}
    placeholders: dict[str, dict[str, Any]] = {}
    for rm in mappings.resources.values():
        for rec in rm.records():
            always.setdefault(rec.object, set()).update(r.field for r in rec.rules if r.overwrite == "always")
            placeholders.setdefault(rec.object, {}).update(rec.placeholder_values())
    return always, placeholders


def _person_name(rec: dict[str, Any] | None) -> str | None:
    if not rec:
        return None
    name = " ".join(str(rec[k]) for k in ("FirstName", "LastName") if rec.get(k))
    return name or rec.get("Email") or None


class Reconciler:
    """One reconciliation: gather, compare (:meth:`check`), then optionally repair (fix.py)."""

    def __init__(self, gateway: SalesforceGateway, state: StateStore, mappings: MappingSet, *,
                 redactor: Redactor = NO_REDACTION) -> None:
        self.gateway = gateway
        self.state = state
        self.mappings = mappings
        self.redact = redactor
        self.always, self.placeholders = _policy(mappings)
        person = mappings.for_type("person")
        mm = person.membership if person else None
        self.member_key = mm.upsert_key if mm else "Jomablue_Id__c"
        self.cat_field = mm.field_for_ref("categories.names") if mm else None
        self.findings: list[Finding] = []
        self.context: dict[int, dict[str, Any]] = {}     # id(finding) → what --fix needs
        self.snap: dict[str, dict[str, Any]] = {}         # Salesforce records by id
        self.written: dict[str, dict[str, Any]] = {}      # journal rows by id
        self._seen: set[tuple[str, str | None, str | None]] = set()

    # -- gathering ---------------------------------------------------------------------------
    async def check(self, event_id: str | None = None) -> Report:
        calls_before = self.gateway.stats.calls
        events = self.state.all_events(event_id)
        if event_id is not None and not events:
            raise UnknownEvent(event_id)
        members = self.state.all_members_of_events(ev["event_id"] for ev in events)
        people = self.state.people({m["person_key"] for rows in members.values() for m in rows if m.get("person_key")})
        records = self.state.all_records()
        sessions = {r["sf_id"]: r for r in records if r["sobject"] == "Campaign"}
        event_campaigns = {ev["campaign_id"]: ev["event_id"] for ev in events if ev.get("campaign_id")}
        session_ids = {m["campaign_id"] for rows in members.values() for m in rows
                       if m.get("campaign_id") and m["campaign_id"] not in event_campaigns}
        captures = [r for r in records if r["sobject"] != "Campaign"]
        ids = set(event_campaigns) | session_ids | {p["sf_id"] for p in people.values() if p.get("sf_id")} \
            | {m["cm_id"] for rows in members.values() for m in rows if m.get("cm_id")} | {r["sf_id"] for r in captures}
        self.written = self.state.written(ids)
        # Captures belong to the event whose Campaign they point at (Campaign__c, WhatId...).
        capture_event: dict[str, str | None] = {}
        for r in captures:
            fields = (self.written.get(r["sf_id"]) or {}).get("fields") or {}
            capture_event[r["sf_id"]] = next((event_campaigns[v] for v in fields.values()
                                              if isinstance(v, str) and v in event_campaigns), None)
        if event_id is not None:
            captures = [r for r in captures if capture_event.get(r["sf_id"]) == event_id]

        wanted: dict[str, tuple[set[str], set[str]]] = {}

        def want(sobject: str, rid: str | None) -> None:
            if not rid:
                return
            fields, idset = wanted.setdefault(sobject, (set(BASE_FIELDS.get(sobject, ("Id", "IsDeleted"))), set()))
            idset.add(rid)
            fields.update(self._expected(rid, sobject).keys())

        for cid in set(event_campaigns) | session_ids:
            want("Campaign", cid)
        for p in people.values():
            want(p["sobject"], p.get("sf_id"))
        for rows in members.values():
            for m in rows:
                want("CampaignMember", m.get("cm_id"))
        if "CampaignMember" in wanted:     # compared from the member row, not the journal
            wanted["CampaignMember"][0].update(f for f in (self.cat_field, self._member_key_compared()) if f)
        for r in captures:
            want(r["sobject"], r["sf_id"])
        self.snap = await fetch(self.gateway, wanted)
        await self._follow_survivors()

        stats = self.state.message_stats_by_event()
        summaries = []
        for ev in events:
            summaries.append(self._check_event(ev, members[ev["event_id"]], people, sessions, stats))
        for r in captures:
            self._check_capture(r, capture_event.get(r["sf_id"]))
        for s in summaries:
            s.drift = {}
        by_event = {s.event_id: s for s in summaries}
        for f in self.findings:
            if f.event_id in by_event:
                d = by_event[f.event_id].drift
                d[f.kind] = d.get(f.kind, 0) + 1
        checked = {obj: len(idset) for obj, (_f, idset) in sorted(wanted.items())}
        return Report(generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      org=self.gateway.instance_url, events=summaries, findings=self.findings,
                      api_calls=self.gateway.stats.calls - calls_before, checked=checked,
                      unattributed=sum(1 for f in self.findings if f.event_id is None))

    async def _follow_survivors(self) -> None:
        """Records merged away (or Leads converted) point at others: read those too, for their
        names and to follow a survivor that was merged again."""
        for _ in range(MERGE_HOPS):
            wanted: dict[str, tuple[set[str], set[str]]] = {}
            for rec in list(self.snap.values()):
                nxt = rec.get("MasterRecordId") or (rec.get("ConvertedContactId") if rec.get("IsConverted") else None)
                if nxt and to18(nxt) not in self.snap:
                    obj = "Contact" if rec.get("IsConverted") else rec["_sobject"]
                    wanted.setdefault(obj, (set(BASE_FIELDS[obj]), set()))[1].add(to18(nxt))
            if not wanted:
                return
            self.snap.update(await fetch(self.gateway, wanted))

    def survivor(self, rid: str) -> str | None:
        """The live record a merged-away record ended in (None if it is gone too)."""
        seen = set()
        rec = self.snap.get(rid)
        while rec is not None and rec.get("IsDeleted") and rec.get("MasterRecordId") and rid not in seen:
            seen.add(rid)
            rid = to18(rec["MasterRecordId"])
            rec = self.snap.get(rid)
        return rid if rec is not None and not rec.get("IsDeleted") else None

    # -- expected values ---------------------------------------------------------------------
    def _expected(self, rid: str, sobject: str) -> dict[str, Any]:
        """The fields compared for a record: what the journal says the connector last wrote,
        limited to `overwrite: always` fields, without placeholders."""
        fields = (self.written.get(rid) or {}).get("fields") or {}
        always = self.always.get(sobject, set())
        ph = self.placeholders.get(sobject, {})
        return {k: v for k, v in fields.items() if k in always and not (k in ph and v == ph[k])}

    def _add(self, f: Finding, **context: Any) -> Finding | None:
        key = (f.kind, f.record_id, f.field)
        if f.record_id and key in self._seen:    # one person in several events: reported once
            return None
        self._seen.add(key)
        self.findings.append(f)
        self.context[id(f)] = context
        return f

    def _fields(self, kind: str, event_id: str | None, sobject: str, rid: str, jid: str, name: str,
                expected: dict[str, Any], personal: bool = False) -> None:
        rec = self.snap[rid]
        for field_name in sorted(expected):
            want, got = expected[field_name], rec.get(field_name)
            if same(want, got):
                continue
            if personal:
                want, got = self.redact.field(field_name, want), self.redact.field(field_name, got)
            else:
                want, got = self.redact.text(want) if isinstance(want, str) else want, \
                    self.redact.text(got) if isinstance(got, str) else got
            self._add(Finding(kind, event_id, sobject, rid, jid, name, field=field_name, expected=want, actual=got),
                      value=expected[field_name])

    # -- per event -----------------------------------------------------------------------------
    def _campaign_name(self, cid: str | None, fallback: str) -> str:
        """The name the connector gave the Campaign (an admin renaming it is what we report)."""
        rec = self.snap.get(cid or "")
        journal = ((self.written.get(cid or "") or {}).get("fields") or {})
        return journal.get("Name") or (rec or {}).get("Name") or fallback

    def _check_event(self, ev: dict[str, Any], members: list[dict[str, Any]], people: dict[str, dict[str, Any]],
                     sessions: dict[str, dict[str, Any]], stats: dict[str, dict[str, Any]]) -> EventSummary:
        eid, cid = ev["event_id"], ev.get("campaign_id")
        name = ev.get("name") or self._campaign_name(cid, eid)
        st = stats.get(eid, {})
        summary = EventSummary(eid, name, cid, quarantined=st.get("quarantined", 0),
                               last_message_at=st.get("last_message_at"))
        if not cid:
            # The connector noticed the Campaign deleted and forgot it (healing); its members still
            # name the old one: the one whose journal carries the event's id is the event's.
            cid = next((c for c in sorted({m["campaign_id"] for m in members if m.get("campaign_id")})
                        if eid in ((self.written.get(c) or {}).get("fields") or {}).values()), None)
        if not cid:
            self._add(Finding("campaign_deleted", eid, "Campaign", None, eid, name, fixable=False,
                              note="the connector found it deleted and forgot it: the next message about this "
                                   "event creates it again (or re-publish the event in Jomablue)"))
        else:
            self._check_campaign("campaign", eid, cid, eid, name, parent=None, event_row=ev)
        for scid in sorted({m["campaign_id"] for m in members if m.get("campaign_id") and m["campaign_id"] != cid}):
            journal = (self.written.get(scid) or {}).get("fields") or {}
            sid = (sessions.get(scid) or {}).get("jomablue_id") or journal.get("Jomablue_Id__c") or scid
            self._check_campaign("session", eid, scid, sid, self._campaign_name(scid, sid), parent=cid, event_row=ev)
        person_keys: set[str] = set()
        checked: set[str] = set()
        for m in members:
            person = people.get(m.get("person_key") or "")
            if m.get("person_key"):
                person_keys.add(m["person_key"])
            if person and person.get("sf_id") and person["sf_id"] not in checked:
                checked.add(person["sf_id"])
                self._check_person(eid, person)
            summary.members_expected += 1
            summary.members_present += self._check_member(eid, m, person)
        summary.people_synced = len(person_keys)
        return summary

    def _check_campaign(self, role: str, eid: str, cid: str, jid: str, name: str, parent: str | None,
                        event_row: dict[str, Any]) -> None:
        rec = self.snap.get(cid)
        if rec is None or rec.get("IsDeleted"):
            self._add(Finding(f"{role}_deleted", eid, "Campaign", cid, jid, name,
                              actual="deleted" if rec else "not found (deleted and emptied from the Recycle Bin)"),
                      role=role, event_row=event_row, parent=parent)
            return
        expected = self._expected(cid, "Campaign")
        if role == "session" and "ParentId" in expected and parent:
            expected["ParentId"] = parent      # the event's Campaign now, should it have been recreated
        self._fields(f"{role}_field", eid, "Campaign", cid, jid, name, expected)

    def _check_person(self, eid: str, person: dict[str, Any]) -> None:
        rid, sobject, jid = person["sf_id"], person["sobject"], person["jomablue_id"]
        rec = self.snap.get(rid)
        journal = (self.written.get(rid) or {}).get("fields") or {}
        name = self.redact.name(_person_name(rec) or _person_name(journal) or jid) or jid
        if rec is None or (rec.get("IsDeleted") and not rec.get("MasterRecordId")):
            self._add(Finding("person_deleted", eid, sobject, rid, jid, name, fixable=False,
                              actual="deleted" if rec else "not found (deleted and emptied from the Recycle Bin)",
                              note="not restored: a person deleted in Salesforce may have been deleted on purpose "
                                   "(a data-protection request); restore it from the Recycle Bin, or the next "
                                   "message about them creates it again"))
            return
        if rec.get("IsDeleted"):
            final = self.survivor(rid)
            survivor = self.snap.get(final or "")
            self._add(Finding("person_merged", eid, sobject, rid, jid, name, related_id=final, related_object=sobject,
                              actual=f"merged into {self.redact.name(_person_name(survivor)) or final}",
                              fixable=final is not None,
                              note="" if final else "the record it was merged into is gone too"),
                      person=person, survivor=final)
            return
        if sobject == "Lead" and rec.get("IsConverted"):
            contact = to18(rec["ConvertedContactId"]) if rec.get("ConvertedContactId") else None
            self._add(Finding("lead_converted", eid, "Lead", rid, jid, name, related_id=contact,
                              related_object="Contact", actual="converted",
                              fixable=contact is not None,
                              note="" if contact else "converted without a Contact"),
                      person=person, survivor=contact)
            return
        self._fields("person_field", eid, sobject, rid, jid, name, self._expected(rid, sobject), personal=True)

    def _person_of_member(self, person: dict[str, Any] | None) -> tuple[str | None, str]:
        """The person record a member should point at now, and whether it can (ok | deleted | unknown)."""
        if person is None or not person.get("sf_id"):
            return None, "unknown"
        rid = person["sf_id"]
        rec = self.snap.get(rid)
        if rec is None:
            return None, "deleted"
        if rec.get("IsDeleted"):
            final = self.survivor(rid)
            return final, "ok" if final else "deleted"
        if rec.get("IsConverted") and rec.get("ConvertedContactId"):
            return to18(rec["ConvertedContactId"]), "ok"
        return rid, "ok"

    def _check_member(self, eid: str, m: dict[str, Any], person: dict[str, Any] | None) -> int:
        cm_id, key = m.get("cm_id"), m["member_key"]
        sf_id = (person or {}).get("sf_id") or ""
        who = self.redact.name(_person_name(self.snap.get(sf_id)) or
                               _person_name((self.written.get(sf_id) or {}).get("fields"))) \
            or m.get("person_key") or key
        name = f"{who} in {self._campaign_name(m.get('campaign_id'), eid)}"
        rec = self.snap.get(cm_id or "")
        if not cm_id or rec is None or rec.get("IsDeleted"):
            person_id, ok = self._person_of_member(person)
            note = {"deleted": "not recreated: its person is deleted in Salesforce",
                    "unknown": "not recreated: the connector does not know its person"}.get(ok, "")
            self._add(Finding("member_deleted", eid, "CampaignMember", cm_id, key, name, expected=m.get("status"),
                              actual="deleted" if rec or cm_id else "deleted (noticed by the connector)",
                              fixable=ok == "ok", note=note),
                      member=m, person_id=person_id)
            return 0
        expected = {k: v for k, v in self._expected(cm_id, "CampaignMember").items()}
        # What the member row holds is not journaled twice (reconcile/journal.py): its Jomablue id.
        if self._member_key_compared():
            expected[self.member_key] = key
        if m.get("status"):
            expected["Status"] = m["status"]
        if self.cat_field:
            expected[self.cat_field] = m.get("categories_text")
        self._fields("member_field", eid, "CampaignMember", cm_id, key, name, expected)
        return 1

    def _member_key_compared(self) -> str | None:
        """The members' upsert key field, when a mapping writes it on every update."""
        return self.member_key if self.member_key in self.always.get("CampaignMember", set()) else None

    def _check_capture(self, r: dict[str, Any], eid: str | None) -> None:
        rid, sobject, jid = r["sf_id"], r["sobject"], r["jomablue_id"]
        rec = self.snap.get(rid)
        if rec is None or rec.get("IsDeleted"):
            self._add(Finding("capture_deleted", eid, sobject, rid, jid, jid,
                              actual="deleted" if rec else "not found"), record=r)
            return
        self._fields("capture_field", eid, sobject, rid, jid, jid, self._expected(rid, sobject))

