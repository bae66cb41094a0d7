"""Stages: CampaignMembers (status never backwards, adoption of members made by hand, following
a re-matched person), lead captures, and category renames fanned out to every member."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from simple_salesforce import format_soql

from connector.payloads import stable_hash as _h
from connector.salesforce.ids import to18
from connector.sync.model import Work, Write
from connector.sync.people import PersonResult
from connector.sync.stage import Stage
from connector.sync.writer import merge_writes


def _category_ids(payload: dict[str, Any]) -> list[str]:
    cats = (payload.get("data") or {}).get("categories") or []
    return [str(c["id"]) for c in cats if isinstance(c, dict) and c.get("id")]


def person_key(w: Work, rm: Any) -> str | None:
    return rm.person.jomablue_id(w.msg.payload) if rm.person else None


@dataclass
class _Target:
    """A membership message resolved to its Campaign and person."""

    work: Work
    mm: Any                  # the MembershipMapping
    refs: dict[str, Any]
    key: str                 # the member's Jomablue id (upsert key value)
    person: PersonResult
    cid: str                 # the Campaign (event's or session's)
    is_session: bool


@dataclass
class _Member:
    """One member to write, merged from every message of the batch about it."""

    key: str
    mm: Any
    row: dict[str, Any]      # what the state store will hold
    record: dict[str, Any]   # what Salesforce is sent
    mode: str                # upsert | update
    works: list[Work]
    old_cm: str | None = None   # a membership of the record the person no longer matches
    skip: bool = False


class MemberStage(Stage):
    async def run(self, live: list[Work]) -> None:
        people = self.b.people
        await self._members([w for w in live if w.ok], people)
        await self._captures([w for w in live if w.ok and w.msg.resource_type == "lead"], people)
        await self._fan_out_categories()

    @property
    def policies(self) -> list[Any]:
        """Policies that share the event Campaign's members; a session's members are its own."""
        return [rm.membership.status for rt in ("person", "lead", "session_participation")
                if (rm := self.mappings.for_type(rt)) and rm.membership and not rm.session_campaign]

    def _merge_status(self, policy: Any, prev: str | None, new: str) -> str:
        out = policy.merge(prev, new)
        if prev and out != prev:
            # Another resource type's policy may rank these two (a lead capture's "Captured"
            # against a person's "Registered"): never let one policy undo another's progress.
            for p in self.policies:
                if p is not policy and p.merge(prev, out) == prev and p.merge(out, prev) == prev:
                    return prev
        return out

    def _targets(self, works: list[Work], people: dict[str, PersonResult]) -> list[_Target]:
        """Which Campaign and which person each membership message is about."""
        b = self.b
        out: list[_Target] = []
        for w in works:
            rm = self._rm(w)
            mm = rm.membership
            if mm is None or rm.person is None or not mm.applies(w.msg.payload):
                continue
            person = people.get(rm.person.jomablue_id(w.msg.payload) or "")
            if person is None:
                continue   # the person's write failed: the message already says why
            if rm.session_campaign:
                cid = b.session_ids.get(rm.session_campaign.upsert_value(w.msg.payload, {}) or "")
            else:
                cid = b.campaign_ids.get(w.msg.event_id)
            if not cid:
                continue   # the Campaign's write failed: likewise
            if cid in b.status_errors:
                w.fail(b.status_errors[cid])
                continue
            refs = {"campaign.id": cid, "session_campaign.id": cid, **person.refs}
            key = mm.upsert_value(w.msg.payload, refs)
            if not key:
                w.fail(f"membership: the upsert key {mm.upsert_key} has no value", mm.upsert_key)
                continue
            out.append(_Target(w, mm, refs, key, person, cid, is_session=rm.session_campaign is not None))
        return out

    def _status(self, t: _Target, previous: str | None) -> str:
        """Merge this message's status (and those of older messages it superseded) into the last one."""
        policy = t.mm.status
        if t.is_session:
            merge = policy.merge            # only this policy writes session members
        else:
            def merge(a: str | None, z: str) -> str:
                return self._merge_status(policy, a, z)
        status = previous
        for older in t.work.superseded:     # dropped as stale within this batch: their status still counts
            status = merge(status, policy.status_for(older.msg.payload))
        return merge(status, policy.status_for(t.work.msg.payload))

    def _plan(self, targets: list[_Target], stored: dict[str, dict[str, Any]]) -> dict[str, _Member]:
        """One planned member per Jomablue id, messages applied oldest first."""
        b = self.b
        plans: dict[str, _Member] = {}
        for t in sorted(targets, key=lambda t: t.work.msg.generated_at):
            w, mm, key = t.work, t.mm, t.key
            prev = plans[key].row if key in plans else stored.get(key) or {}
            status = self._status(t, prev.get("status"))
            cat_ids = _category_ids(w.msg.payload) if w.msg.resource_type == "person" else prev.get("category_ids") or []
            table = b.table(self.state, w.msg.event_id)
            names = [table[c] for c in cat_ids if c in table]
            if len(names) < len(cat_ids):
                w.detail["pending_categories"] = [c for c in cat_ids if c not in table]
            refs = {**t.refs, "status": status, "categories.names": names,
                    "event.timezone": (b.events.get(w.msg.event_id) or {}).get("timezone")}
            same_target = bool(prev.get("cm_id")) and prev.get("campaign_id") == t.cid and \
                prev.get("person_sf_id") in (t.person.sf_id, t.person.converted_from)
            mode = "update" if same_target else "upsert"
            record = mm.build(w.msg.payload, refs, mode=mode)
            cat_field = mm.field_for_ref("categories.names")
            row = {"event_id": w.msg.event_id, "campaign_id": t.cid, "person_key": person_key(w, self._rm(w)),
                   "person_sf_id": t.person.sf_id, "status": status, "status_at": w.msg.generated_at.isoformat(),
                   "category_ids": cat_ids,
                   # A lead capture's or session's mapping may not write categories: keep what we know.
                   "categories_text": record.get(cat_field) if cat_field else prev.get("categories_text"),
                   "cm_id": prev.get("cm_id") if same_target else None,
                   # on_create fields (CampaignId, LeadId...) are only in an upsert's record: leave
                   # them out, so a member just created is not rewritten by its next unchanged message
                   "record_hash": _h([t.cid, t.person.sf_id, {k: v for k, v in record.items()
                                                              if k not in mm.fields_with_policy("on_create")}])}
            plan = plans.get(key)
            if plan is None:
                old_cm = prev.get("cm_id") if prev.get("cm_id") and not same_target else None
                plan = plans[key] = _Member(key, mm, row, record, mode, [w], old_cm)
            else:
                keep = ("cm_id",) if w.msg.resource_type == "person" else ("cm_id", "category_ids", "categories_text")
                plan.row.update({k: v for k, v in row.items() if k not in keep})
                plan.record.update(record)
                plan.works.append(w)
            # Salesforce already holds exactly this: no call.
            plan.skip = mode == "update" and stored.get(key, {}).get("record_hash") == row["record_hash"]
        return plans

    async def _members(self, works: list[Work], people: dict[str, PersonResult]) -> None:
        b = self.b
        targets = self._targets(works, people)
        plans = self._plan(targets, self.state.members({t.key for t in targets}))
        deletes = [p.old_cm for p in plans.values() if p.old_cm and not p.skip]
        if deletes and not self.dry_run:
            # The person now matches another record (an id corrected): the old membership
            # goes, so the new one can take the same Jomablue id.
            await self.gateway.delete(deletes)
        updates, upserts = [], []
        for key, p in plans.items():
            if p.skip:
                b.member_rows[key] = dict(p.row)
            elif p.mode == "update":
                updates.append(Write("CampaignMember", "update", {"Id": p.row["cm_id"], **p.record}, p.works,
                                     key=key, label=f"CampaignMember {p.row['cm_id']} ({key})"))
            else:
                upserts.append(Write("CampaignMember", "upsert", dict(p.record), p.works, key=key,
                                     label=f"CampaignMember {key}"))
        ext = next((p.mm.upsert_key for p in plans.values()), "Jomablue_Id__c")
        # Members lock their Campaign: one call at a time (UNABLE_TO_LOCK_ROW), grouped by Campaign.
        upserts.sort(key=lambda x: x.record.get("CampaignId") or "")
        await self.writer.send(upserts, ext, serial=True)
        await self.writer.send(updates, serial=True)
        adopt = [x for x in upserts if x.error and x.error[0] == "DUPLICATE_VALUE"
                 and "campaign member" in x.error[1].lower()]
        if adopt:
            await self._adopt(adopt)
        for x in upserts + updates:
            if x.error:
                if not self._heal(x):
                    self._settle(x)
                continue
            row = plans[x.key].row
            row["cm_id"] = to18(x.result_id) if x.result_id else row.get("cm_id")
            b.member_rows[x.key] = dict(row)
            for w in x.works:
                w.detail["member"] = {"key": x.key, "status": row["status"], "id": row["cm_id"]}

    def _heal(self, x: Write) -> bool:
        """Records deleted in Salesforce behind our back: forget them and retry the message.

        A member updated by Id that is gone, or a Campaign that is gone (its members went with it),
        is created again on the next delivery instead of quarantining every message of the event.
        """
        code, _msg, fields = x.error or ("", "", ())
        if code not in ("ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"):
            return False
        if x.op == "update":
            self.b.gone_members.add(x.key)
            reason = f"{x.label} was deleted in Salesforce; it is created again on the next delivery"
        elif "CampaignId" in fields and x.record.get("CampaignId"):
            self.b.gone_campaigns.add(x.record["CampaignId"])
            reason = (f"Campaign {x.record['CampaignId']} no longer exists in Salesforce; it is created "
                      "again on the next delivery")
        else:
            return False
        for w in x.works:
            w.retry(reason)
        return True

    async def _adopt(self, writes: list[Write]) -> None:
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
                                        list(b.event_messages.get(eid, [])), key=key,
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
