"""The sync engine: one batch of queue messages → Salesforce → state, each with its own outcome.

parse → dedupe (unchanged / stale cost nothing) → stages, each batched per object:
  campaigns (events, placeholders, metadata drift) → member statuses → session campaigns →
  people (identity ladder) → campaign members → lead captures → category fan-out
→ one state transaction → outcomes. The runner deletes from SQS only after this returns.
StopRun (budget, Salesforce down) propagates: nothing of the batch is committed or deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from simple_salesforce import format_soql

from connector.config import InstanceFilter
from connector.errors import MessageError
from connector.mapping import MappingSet, ResourceMapping
from connector.payloads import Message, Unrecognised, parse_body, parse_utc
from connector.salesforce.gateway import SalesforceGateway
from connector.sfids import to18
from connector.sync.model import Inbound, Outcome, Work, Write
from connector.sync.people import PeopleStage, PersonResult
from connector.sync.writer import Writer, merge_writes


def _h(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _category_ids(payload: dict[str, Any]) -> list[str]:
    cats = (payload.get("data") or {}).get("categories") or []
    return [str(c["id"]) for c in cats if isinstance(c, dict) and c.get("id")]


class SyncEngine:
    def __init__(self, gateway: SalesforceGateway, state: Any, mappings: MappingSet, *,
                 instances: InstanceFilter | None = None, allowed_topic_arns: list[str] | None = None,
                 dry_run: bool = False) -> None:
        self.gateway = gateway
        self.state = state
        self.mappings = mappings
        self.instances = instances or InstanceFilter()
        self.allowed_topic_arns = allowed_topic_arns or []
        self.dry_run = dry_run
        self.writer = Writer(gateway, dry_run=dry_run)
        self.notes: list[str] = []          # run-summary sentences (category renames...)
        self.status_labels = [s.label for s in mappings.statuses]
        # Policies that share the event Campaign's members; a session's members are its own.
        self.policies = [rm.membership.status for rt in ("person", "lead", "session_participation")
                         if (rm := mappings.for_type(rt)) and rm.membership and not rm.session_campaign]

    # ---------------------------------------------------------------------------------
    async def process(self, inbounds: list[Inbound]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(inbounds)
        works: list[tuple[int, Work]] = []
        for i, ib in enumerate(inbounds):
            try:
                parsed = parse_body(ib.body, self.allowed_topic_arns)
            except MessageError as exc:
                outcomes[i] = Outcome("quarantined", exc.reason, exc.field,
                                      message_key=_body_key(ib))
                continue
            if isinstance(parsed, Unrecognised):
                outcomes[i] = Outcome("skipped", f"unknown resource_type {parsed.resource_type!r}",
                                      message_key=parsed.message_key, resource_type=parsed.resource_type,
                                      detail={"skip": "unknown_type"})
                continue
            base = dict(message_key=parsed.message_key, resource_type=parsed.resource_type,
                        resource_id=parsed.resource_id, event_id=parsed.event_id)
            if not self.instances.allows(parsed.instance):
                outcomes[i] = Outcome("skipped", f"instance {parsed.instance!r} is skipped by configuration",
                                      detail={"skip": "instance"}, **base)
                continue
            if self.mappings.for_type(parsed.resource_type) is None:
                outcomes[i] = Outcome("skipped", f"no mapping for {parsed.resource_type}",
                                      detail={"skip": "unmapped"}, **base)
                continue
            works.append((i, Work(ib, parsed)))
        live = self._dedupe(works, outcomes)
        if live:
            await self._apply(live)
            self._commit(live, inbounds, outcomes)
        for i, w in works:
            if outcomes[i] is None:
                outcomes[i] = self._outcome_of(w)
        if not self.dry_run:
            self._record_others(inbounds, outcomes, {i for i, _ in works if outcomes[i] and outcomes[i].status == "synced"})
        return [o for o in outcomes if o is not None]

    # -- dedupe: identical or older messages cost zero calls ------------------------------
    def _dedupe(self, works: list[tuple[int, Work]], outcomes: list[Outcome | None]) -> list[Work]:
        groups: dict[str, list[tuple[int, Work]]] = defaultdict(list)
        for i, w in works:
            groups[f"{w.msg.resource_type}:{w.msg.resource_id}"].append((i, w))
        stored = self.state.resources(groups.keys())
        live = []
        for key, items in groups.items():
            items.sort(key=lambda t: t[1].msg.generated_at)
            win_i, winner = items[-1]
            for i, w in items[:-1]:
                same = w.msg.content_hash == winner.msg.content_hash
                outcomes[i] = self._skip(w, "duplicate" if same else "stale",
                                         "duplicate of another message in this batch" if same
                                         else "stale: superseded by a newer message in this batch")
            winner.detail["version"] = _h([winner.msg.content_hash, self.mappings.version])
            prev = stored.get(key)
            last = parse_utc(prev["generated_at"]) if prev and prev["generated_at"] else None
            winner.superseded = [w for _, w in items[:-1] if last is None or w.msg.generated_at > last]
            if prev and prev["content_hash"] == winner.detail["version"]:
                outcomes[win_i] = self._skip(winner, "unchanged", "unchanged: same content as last applied")
            elif prev and prev["generated_at"] and winner.msg.generated_at < parse_utc(prev["generated_at"]):
                outcomes[win_i] = self._skip(winner, "stale", f"stale: older than the last applied ({prev['generated_at']})")
            else:
                live.append(winner)
        return live

    @staticmethod
    def _skip(w: Work, kind: str, reason: str) -> Outcome:
        m = w.msg
        return Outcome("skipped", reason, message_key=m.message_key, resource_type=m.resource_type,
                       resource_id=m.resource_id, event_id=m.event_id, detail={"skip": kind})

    @staticmethod
    def _outcome_of(w: Work) -> Outcome:
        m = w.msg
        base = dict(message_key=m.message_key, resource_type=m.resource_type, resource_id=m.resource_id,
                    event_id=m.event_id, detail=w.detail)
        if w.failures:
            reason = "; ".join(r for r, _ in w.failures)
            return Outcome("quarantined", reason, w.failures[0][1], **base)
        if w.retry_reason:
            return Outcome("retry", w.retry_reason, **base)
        return Outcome("synced", None, **base)

    # -- stages ---------------------------------------------------------------------------
    async def _apply(self, live: list[Work]) -> None:
        self.b = _Batch()
        await self._campaigns(live)
        await self._sessions([w for w in live if w.msg.resource_type == "session_participation" and w.ok])
        await self._statuses(set(self.b.campaign_ids.values()) | set(self.b.session_ids.values()))
        people = await PeopleStage(self.mappings, self.writer, self.state).run([w for w in live if w.ok])
        self.b.people = people
        await self._members([w for w in live if w.ok], people)
        await self._captures([w for w in live if w.ok and w.msg.resource_type == "lead"], people)
        await self._fan_out_categories()

    def _rm(self, w: Work) -> ResourceMapping:
        rm = self.mappings.for_type(w.msg.resource_type)
        assert rm is not None
        return rm

    async def _campaigns(self, live: list[Work]) -> None:
        b = self.b
        events = self.state.events({w.msg.event_id for w in live})
        b.events = events
        writes: dict[str, Write] = {}
        for w in live:
            rm, eid = self._rm(w), w.msg.event_id
            if w.msg.resource_type == "event":
                tz = (w.msg.payload.get("data") or {}).get("timezone")
                rec = rm.campaign.build(w.msg.payload, {"event.timezone": tz}, mode="upsert")
                writes[eid] = Write("Campaign", "upsert", rec, [w], key=eid, label=f"Campaign for event {eid}")
                b.event_updates[eid] = {"name": (w.msg.payload.get("data") or {}).get("name"), "timezone": tz,
                                        "metadata": (w.msg.payload.get("data") or {}).get("metadata"),
                                        "metadata_at": w.msg.generated_at.isoformat(), "is_placeholder": 0}
                b._event_works[eid] = [w]
                if rm.categories:
                    b.new_tables[eid] = dict(rm.categories.extract(w.msg.payload))
        for w in live:
            rm, eid = self._rm(w), w.msg.event_id
            if w.msg.resource_type == "event" or rm.campaign is None:
                continue
            ev = events.get(eid)
            ctx = w.msg.payload.get("context") or {}
            refs = {"event.timezone": (ev or {}).get("timezone")}
            if eid in writes:
                writes[eid].works.append(w)     # members need that Campaign first
            elif not ev or not ev.get("campaign_id"):
                rec = rm.campaign.build(w.msg.payload, refs, mode="upsert")
                writes[eid] = Write("Campaign", "upsert", rec, [w], key=eid,
                                    label=f"placeholder Campaign for event {eid}")
                b.event_updates[eid] = {"name": ctx.get("event_name"), "metadata": ctx.get("event_metadata"),
                                        "metadata_at": w.msg.generated_at.isoformat(), "is_placeholder": 1}
            elif ctx.get("event_metadata") is not None and ctx.get("event_metadata") != ev.get("metadata") \
                    and (not ev.get("metadata_at") or w.msg.generated_at > parse_utc(ev["metadata_at"])):
                # The event's policy metadata changed and this message says so first: keep the
                # Campaign current without waiting for the event message.
                rec = rm.campaign.build(w.msg.payload, refs, mode="update", current=None)
                writes[eid] = Write("Campaign", "update", {"Id": ev["campaign_id"], **rec}, [w], key=eid,
                                    label=f"Campaign {ev['campaign_id']} metadata for event {eid}")
                b.event_updates[eid] = {"metadata": ctx.get("event_metadata"),
                                        "metadata_at": w.msg.generated_at.isoformat()}
        ups = [x for x in writes.values() if x.op == "upsert"]
        key_field = self.mappings.for_type("event").campaign.upsert_key if self.mappings.for_type("event") else "Jomablue_Id__c"
        for x in ups:
            if not x.record.get(key_field):
                x.fail_all("MAPPING", f"the upsert key {key_field} has no value", (key_field,))
        await self.writer.send([x for x in ups if not x.error], key_field)
        await self.writer.send([x for x in writes.values() if x.op == "update"])
        for eid, x in writes.items():
            if x.error:
                self._settle(x)
                b.event_updates.pop(eid, None)
                b.new_tables.pop(eid, None)
                continue
            cid = to18(x.result_id) if x.result_id else events.get(eid, {}).get("campaign_id")
            b.campaign_ids[eid] = cid
            if x.created:
                b.fresh_campaigns.add(cid)
            b.event_updates.setdefault(eid, {})["campaign_id"] = cid
        for eid, ev in events.items():
            if ev.get("campaign_id"):
                b.campaign_ids.setdefault(eid, ev["campaign_id"])

    def _settle(self, x: Write) -> None:
        """A write that failed and was not handled fails its messages (unless they retry)."""
        if x.error and not any(w.retry_reason for w in x.works):
            code, msg, fields = x.error
            x.fail_all(code, msg, fields)

    async def _statuses(self, extra: set[str] | None = None) -> None:
        """Every campaign members go to has the mapping's statuses, created once."""
        b = self.b
        cids = {c for c in (extra or set(b.campaign_ids.values())) if c and c not in b.statuses_ok}
        if not cids or not self.status_labels:
            return
        have = self.state.campaign_statuses(cids)
        need = {c for c in cids if any((c, lbl) not in have for lbl in self.status_labels)}
        existing: set[tuple[str, str]] = set(have)
        unknown = sorted(c for c in need if c not in b.fresh_campaigns)
        for i in range(0, len(unknown), 200):
            soql = format_soql("SELECT CampaignId, Label FROM CampaignMemberStatus WHERE CampaignId IN {}",
                               unknown[i : i + 200])
            for r in await self.gateway.query(soql) if not self.dry_run else []:
                existing.add((to18(r["CampaignId"]), r["Label"]))
        creates = []
        for c in sorted(need):
            for n, s in enumerate(self.mappings.statuses):
                if (c, s.label) not in existing:
                    rec = {"CampaignId": c, "Label": s.label, "HasResponded": s.responded,
                           "SortOrder": 10 + (s.sort_order if s.sort_order is not None else n)}
                    if s.default:
                        rec["IsDefault"] = True
                    creates.append(Write("CampaignMemberStatus", "create", rec, [], key=c,
                                         label=f"member status {s.label!r} on Campaign {c}"))
        await self.writer.send(creates)
        for x in creates:
            if x.error is None or x.error[0] == "DUPLICATE_VALUE":
                existing.add((x.record["CampaignId"], x.record["Label"]))
            else:
                b.status_errors[x.record["CampaignId"]] = f"{x.label}: {x.error[0]} {x.error[1]}"
        b.new_statuses |= {p for p in existing if p[0] in cids and p not in have}
        b.statuses_ok |= {c for c in cids if c not in b.status_errors}

    async def _sessions(self, works: list[Work]) -> None:
        b = self.b
        sids = {(self._rm(w).session_campaign.upsert_value(w.msg.payload, {}) or "") for w in works
                if self._rm(w).session_campaign}
        known = self.state.records(sids)
        writes: dict[str, Write] = {}
        for w in works:
            sc = self._rm(w).session_campaign
            if sc is None:
                continue
            parent = b.campaign_ids.get(w.msg.event_id)
            refs = {"campaign.id": parent, "event.timezone": (b.events.get(w.msg.event_id) or {}).get("timezone")}
            sid = sc.upsert_value(w.msg.payload, refs)
            if not sid:
                w.fail("no session id in the message", "identifiers.session_id")
                continue
            if sid in known:
                b.session_ids[sid] = known[sid]["sf_id"]
                continue
            if sid in writes:
                writes[sid].works.append(w)
                continue
            writes[sid] = Write("Campaign", "upsert", sc.build(w.msg.payload, refs, mode="upsert"), [w],
                                key=sid, label=f"session Campaign for {sid}")
        await self.writer.send(list(writes.values()), "Jomablue_Id__c" if not writes else
                               self._rm(next(iter(writes.values())).works[0]).session_campaign.upsert_key)
        for sid, x in writes.items():
            if x.error:
                self._settle(x)
                continue
            b.session_ids[sid] = to18(x.result_id)
            b.new_records[sid] = ("Campaign", to18(x.result_id))
            if x.created:
                b.fresh_campaigns.add(to18(x.result_id))

    def _merge_status(self, policy: Any, prev: str | None, new: str) -> str:
        out = policy.merge(prev, new)
        if prev and out != prev:
            # Another resource type's policy may rank these two (a lead capture's "Captured"
            # against a person's "Registered"): never let one policy undo another's progress.
            for p in self.policies:
                if p is not policy and p.merge(prev, out) == prev and p.merge(out, prev) == prev:
                    return prev
        return out

    async def _members(self, works: list[Work], people: dict[str, PersonResult]) -> None:
        b = self.b
        plans: list[tuple[Work, Any, dict[str, Any], str, PersonResult, str]] = []
        for w in works:
            rm = self._rm(w)
            mm = rm.membership
            if mm is None or not mm.applies(w.msg.payload) or rm.person is None:
                continue
            person = people.get(rm.person.jomablue_id(w.msg.payload) or "")
            if person is None:
                continue   # the person's write failed: the message already says why
            if rm.session_campaign:
                sid = rm.session_campaign.upsert_value(w.msg.payload, {})
                cid = b.session_ids.get(sid or "")
            else:
                cid = b.campaign_ids.get(w.msg.event_id)
            if not cid:
                continue
            if cid in b.status_errors:
                w.fail(b.status_errors[cid])
                continue
            refs = {"campaign.id": cid, "session_campaign.id": cid, **person.refs}
            key = mm.upsert_value(w.msg.payload, refs)
            if not key:
                w.fail(f"membership: the upsert key {mm.upsert_key} has no value", mm.upsert_key)
                continue
            plans.append((w, mm, refs, key, person, cid))
        prev_rows = self.state.members({p[3] for p in plans})
        current: dict[str, dict[str, Any]] = {}
        for w, mm, refs, key, person, cid in sorted(plans, key=lambda p: p[0].msg.generated_at):
            prev = current.get(key) or prev_rows.get(key) or {}
            new_status = mm.status.status_for(w.msg.payload)
            merge = (mm.status.merge if self._rm(w).session_campaign   # only this policy writes session members
                     else lambda a, z, mm=mm: self._merge_status(mm.status, a, z))
            status = prev.get("status")
            for older in w.superseded:   # dropped as stale within this batch: their status still counts
                status = merge(status, mm.status.status_for(older.msg.payload))
            status = merge(status, new_status)
            if w.msg.resource_type == "person":
                cat_ids = _category_ids(w.msg.payload)
            else:
                cat_ids = prev.get("category_ids") or []
            table = b.table(self.state, w.msg.event_id)
            names = [table[c] for c in cat_ids if c in table]
            if len(names) < len(cat_ids):
                w.detail["pending_categories"] = [c for c in cat_ids if c not in table]
            full_refs = {**refs, "status": status, "categories.names": names,
                         "event.timezone": (b.events.get(w.msg.event_id) or {}).get("timezone")}
            same_target = prev.get("cm_id") and prev.get("campaign_id") == cid and (
                prev.get("person_sf_id") == person.sf_id or prev.get("person_sf_id") == person.converted_from)
            mode = "update" if same_target else "upsert"
            record = mm.build(w.msg.payload, full_refs, mode=mode)
            cat_field = mm.field_for_ref("categories.names")
            row = {"event_id": w.msg.event_id if not b.session_ids.get(key) else w.msg.event_id,
                   "campaign_id": cid, "person_key": person_key(w, self._rm(w)), "person_sf_id": person.sf_id,
                   "status": status, "status_at": w.msg.generated_at.isoformat(), "category_ids": cat_ids,
                   # A lead capture's or session's mapping may not write categories: keep what we know.
                   "categories_text": record.get(cat_field) if cat_field else prev.get("categories_text"),
                   "cm_id": prev.get("cm_id") if same_target else None,
                   # on_create fields (CampaignId, LeadId...) are only in an upsert's record: leave
                   # them out, so a member just created is not rewritten by its next unchanged message
                   "record_hash": _h([cid, person.sf_id, {k: v for k, v in record.items()
                                                          if k not in mm.fields_with_policy("on_create")}])}
            entry = current.get(key)
            if entry is None:
                current[key] = row
                row["_works"] = [w]
                row["_record"] = record
                row["_mode"] = mode
                row["_old_cm"] = prev.get("cm_id") if (prev.get("cm_id") and not same_target) else None
                row["_mm"] = mm
            else:
                keep = ("cm_id",) if w.msg.resource_type == "person" else ("cm_id", "category_ids", "categories_text")
                entry.update({k: v for k, v in row.items() if k not in keep})
                entry["_record"].update(record)
                entry["_works"].append(w)
            if prev_rows.get(key, {}).get("record_hash") == row["record_hash"] and mode == "update":
                current[key]["_skip"] = True   # Salesforce already holds this: no call
            else:
                current[key].pop("_skip", None)
        deletes = [r["_old_cm"] for r in current.values() if r.get("_old_cm") and not r.get("_skip")]
        if deletes and not self.dry_run:
            # The person now matches another record (an id corrected): the old membership
            # goes, so the new one can take the same Jomablue id.
            await self.gateway.delete(deletes)
        updates, upserts = [], []
        for key, r in current.items():
            if r.get("_skip"):
                b.member_rows[key] = {k: v for k, v in r.items() if not k.startswith("_")}
                continue
            rec = dict(r["_record"])
            if r["_mode"] == "update":
                updates.append(Write("CampaignMember", "update", {"Id": r["cm_id"], **rec}, r["_works"], key=key,
                                     label=f"CampaignMember {r['cm_id']} ({key})"))
            else:
                upserts.append(Write("CampaignMember", "upsert", rec, r["_works"], key=key,
                                     label=f"CampaignMember {key}"))
        ext = next((r["_mm"].upsert_key for r in current.values()), "Jomablue_Id__c")
        # Members lock their Campaign: send them one call at a time (issue #2, UNABLE_TO_LOCK_ROW).
        upserts.sort(key=lambda x: x.record.get("CampaignId") or "")
        await self.writer.send(upserts, ext, serial=True)
        await self.writer.send(updates, serial=True)
        adopt = [x for x in upserts if x.error and x.error[0] == "DUPLICATE_VALUE"
                 and "campaign member" in x.error[1].lower()]
        if adopt:
            await self._adopt(adopt, current)
        for x in upserts + updates:
            if x.error:
                self._settle(x)
                continue
            row = current[x.key]
            row["cm_id"] = to18(x.result_id) if x.result_id else row.get("cm_id")
            b.member_rows[x.key] = {k: v for k, v in row.items() if not k.startswith("_")}
            for w in x.works:
                w.detail["member"] = {"key": x.key, "status": row["status"], "id": row["cm_id"]}

    async def _adopt(self, writes: list[Write], current: dict[str, dict[str, Any]]) -> None:
        """A member made outside the connector: take it over instead of failing."""
        pairs = [(x.record.get("CampaignId"), x.record.get("LeadId") or x.record.get("ContactId")) for x in writes]
        cids = sorted({c for c, _ in pairs if c})
        pids = sorted({p for _, p in pairs if p})
        soql = format_soql("SELECT Id, CampaignId, LeadId, ContactId FROM CampaignMember WHERE CampaignId IN {} "
                           "AND (LeadId IN {} OR ContactId IN {})", cids, pids, pids)
        found = {}
        for r in await self.gateway.query(soql):
            who = r.get("ContactId") or r.get("LeadId")
            found[(to18(r["CampaignId"]), to18(who))] = to18(r["Id"])
        updates = []
        for x, (c, p) in zip(writes, pairs, strict=True):
            cm_id = found.get((to18(c), to18(p))) if c and p else None
            if not cm_id:
                continue
            # Keep what we meant to write, minus the fields Salesforce won't update.
            rec = {k: v for k, v in x.record.items() if k not in ("CampaignId", "LeadId", "ContactId")}
            u = Write("CampaignMember", "update", {"Id": cm_id, **rec}, x.works, key=x.key, label=x.label + " (adopted)")
            updates.append((x, u))
        await self.writer.send([u for _, u in updates], serial=True)
        for x, u in updates:
            x.error, x.result_id = u.error, u.result_id or u.record["Id"]
            for w in x.works:
                w.detail["adopted"] = u.record["Id"]

    async def _captures(self, works: list[Work], people: dict[str, PersonResult]) -> None:
        writes: list[Write] = []
        ext = None
        for w in works:
            rm = self._rm(w)
            cap = rm.capture
            if cap is None or not cap.applies(w.msg.payload) or rm.person is None:
                continue
            person = people.get(rm.person.jomablue_id(w.msg.payload) or "")
            cid = self.b.campaign_ids.get(w.msg.event_id)
            if person is None or not cid:
                continue
            refs = {"campaign.id": cid, **person.refs}
            rec = cap.build(w.msg.payload, refs, mode="upsert")
            ext = cap.upsert_key
            writes.append(Write(cap.object, "upsert", rec, [w], key=w.msg.resource_id,
                                label=f"{cap.object} for {w.msg.resource_id}"))
        by_obj: dict[str, list[Write]] = defaultdict(list)
        for x in merge_writes(writes, ext):
            by_obj[x.sobject].append(x)
        for obj, group in by_obj.items():
            await self.writer.send(group, ext)
            for x in group:
                if x.error:
                    self._settle(x)
                else:
                    self.b.new_records[x.key] = (obj, to18(x.result_id))

    async def _fan_out_categories(self) -> None:
        """A category renamed or removed: every member of that event shows the new names."""
        b = self.b
        mm = self.mappings.for_type("person").membership if self.mappings.for_type("person") else None
        field = mm.field_for_ref("categories.names") if mm else None
        for eid, table in b.new_tables.items():
            old = self.state.categories(eid)
            if table == old:
                continue
            renamed = {c: (old[c], table[c]) for c in table if c in old and old[c] != table[c]}
            removed = {c: old[c] for c in old if c not in table}
            if not field:
                continue
            rows = {r["member_key"]: r for r in self.state.members_of_event(eid)}
            rows.update({k: r for k, r in b.member_rows.items() if r.get("event_id") == eid and r.get("cm_id")})
            writes = []
            for key, r in rows.items():
                names = [table[c] for c in r.get("category_ids") or [] if c in table]
                text = ";".join(names) or None
                if text != (r.get("categories_text") or None):
                    writes.append(Write("CampaignMember", "update", {"Id": r["cm_id"], field: text},
                                        [w for w in b.event_works(eid)], key=key,
                                        label=f"categories of CampaignMember {r['cm_id']}"))
                    if not text:
                        writes[-1].record = {"Id": r["cm_id"], "fieldsToNull": [field]}
            await self.writer.send(writes, serial=True)
            updated = 0
            for x in writes:
                if x.error:
                    self._settle(x)
                    continue
                updated += 1
                row = dict(b.member_rows.get(x.key) or rows[x.key])
                row.pop("member_key", None)
                row.pop("updated_at", None)
                row["categories_text"] = x.record.get(field)
                b.member_rows[x.key] = {k: v for k, v in row.items() if not k.startswith("_")}
            for c, (a, z) in renamed.items():
                n = sum(1 for x in writes if not x.error and c in (rows[x.key].get("category_ids") or []))
                self.notes.append(f"category {c} renamed {a!r} → {z!r}: {n:,} members updated")
            for c, a in removed.items():
                n = sum(1 for x in writes if not x.error and c in (rows[x.key].get("category_ids") or []))
                self.notes.append(f"category {c} ({a!r}) removed: {n:,} members updated")
            if not renamed and not removed and updated:
                self.notes.append(f"event {eid}: categories known now: {updated:,} members updated")

    # -- commit: one transaction for everything this batch learned ------------------------
    def _commit(self, live: list[Work], inbounds: list[Inbound], outcomes: list[Outcome | None]) -> None:
        if self.dry_run:
            return
        b = self.b
        ok_events = {w.msg.event_id for w in live if w.msg.resource_type == "event" and w.ok}
        with self.state.atomic():
            for eid, fields in b.event_updates.items():
                if fields.get("is_placeholder") == 0 and eid not in ok_events:
                    fields = {k: v for k, v in fields.items() if k == "campaign_id"}
                if fields:
                    self.state.put_event(eid, **fields)
            for eid, table in b.new_tables.items():
                if eid in ok_events:
                    self.state.replace_categories(eid, table)
            self.state.add_campaign_statuses(b.new_statuses)
            for jid, p in b.people.items():
                rm = None
                for w in live:
                    r = self.mappings.for_type(w.msg.resource_type)
                    if r and r.person and r.person.jomablue_id(w.msg.payload) == jid:
                        rm = (r, w)
                        break
                if rm is None:
                    continue
                r, w = rm
                self.state.put_person(jid, p.sobject, p.sf_id, p.rung, r.person.organisation_uid(w.msg.payload),
                                      r.person.email(w.msg.payload), p.record_hash)
                if p.converted_from:
                    self.state.relink_person_records(p.converted_from, p.sobject, p.sf_id)
            for key, row in b.member_rows.items():
                self.state.put_member(key, **row)
            for jid, (obj, sf_id) in b.new_records.items():
                self.state.put_record(jid, obj, sf_id)
            for w in live:
                if w.ok:
                    self.state.put_resource(f"{w.msg.resource_type}:{w.msg.resource_id}", w.detail["version"],
                                            w.msg.generated_at.isoformat())
                    self.state.record_outcome(w.msg.message_key, outcome="synced", resource_type=w.msg.resource_type,
                                              resource_id=w.msg.resource_id, event_id=w.msg.event_id,
                                              sqs_message_id=w.inbound.sqs_message_id,
                                              detail={k: v for k, v in w.detail.items() if k != "version"})

    def _record_others(self, inbounds: list[Inbound], outcomes: list[Outcome | None], done: set[int]) -> None:
        """Quarantined bodies and skips are recorded (synced ones were, inside the commit)."""
        with self.state.atomic():
            for i, (ib, o) in enumerate(zip(inbounds, outcomes, strict=True)):
                if o is None or i in done or o.status == "synced":
                    continue
                self.state.record_outcome(
                    o.message_key or _body_key(ib),
                    outcome=o.status if o.status != "skipped" else f"skipped_{o.detail.get('skip', 'other')}",
                    resource_type=o.resource_type, resource_id=o.resource_id, event_id=o.event_id,
                    sqs_message_id=ib.sqs_message_id, reason=o.reason, field=o.field,
                    body=ib.body, detail={k: v for k, v in o.detail.items() if k != "version"} or None)


def person_key(w: Work, rm: ResourceMapping) -> str | None:
    return rm.person.jomablue_id(w.msg.payload) if rm.person else None


def _body_key(ib: Inbound) -> str:
    return "sha256:" + hashlib.sha256(ib.body.encode("utf-8", "replace")).hexdigest()


class _Batch:
    """What one batch has learned so far, stage by stage."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.event_updates: dict[str, dict[str, Any]] = {}
        self.new_tables: dict[str, dict[str, str]] = {}
        self.campaign_ids: dict[str, str] = {}
        self.fresh_campaigns: set[str] = set()
        self.statuses_ok: set[str] = set()
        self.status_errors: dict[str, str] = {}
        self.new_statuses: set[tuple[str, str]] = set()
        self.session_ids: dict[str, str] = {}
        self.people: dict[str, PersonResult] = {}
        self.member_rows: dict[str, dict[str, Any]] = {}
        self.new_records: dict[str, tuple[str, str]] = {}
        self._event_works: dict[str, list[Work]] = {}
        self._tables: dict[str, dict[str, str]] = {}

    def table(self, state: Any, event_id: str) -> dict[str, str]:
        if event_id in self.new_tables:
            return self.new_tables[event_id]
        if event_id not in self._tables:
            self._tables[event_id] = state.categories(event_id)
        return self._tables[event_id]

    def event_works(self, event_id: str) -> list[Work]:
        return self._event_works.get(event_id, [])
