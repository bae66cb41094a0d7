"""Stage: CampaignMembers. Status never moves backwards, a member made by hand is adopted, a
re-matched person's membership follows them, and a member or Campaign deleted in Salesforce is
forgotten and created again on the next delivery.

Three steps: targets (which Campaign and person each message is about) → plan (one member per
Jomablue id, every message of the batch merged oldest first) → send, or take the answer of the
same write already sent with the people's writes (connector/sync/together.py).

A member write refused for a missing record (ENTITY_IS_DELETED, INVALID_CROSS_REFERENCE_KEY) is
explained by a read (connector/sync/survivors.py) before anything is forgotten: a person an admin
merged away is followed to the survivor and the member written there in the same batch (the merge
moved the membership: it is adopted, never added twice, and its status never goes backwards); a
Campaign or person confirmed gone is forgotten; an invalid reference to a record that exists is
the field's problem and quarantines the message with the org's own message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from connector.mapping.refs import refs
from connector.payloads import stable_hash
from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction
from connector.salesforce.soql import literal, pack_or
from connector.sync.changes import ChangeSet, Facts, PersonRecord
from connector.sync.model import Work, Write
from connector.sync.stage import CategoryTables, Stage, StageResult
from connector.sync.survivors import Trace, trace

_MISSING = (RowAction.GONE, RowAction.BAD_REFERENCE)
_WHO = ("LeadId", "ContactId")


def category_ids(payload: dict[str, Any]) -> list[str]:
    cats = (payload.get("data") or {}).get("categories") or []
    if not isinstance(cats, list):
        return []
    return [str(c["id"]) for c in cats if isinstance(c, dict) and c.get("id")]


@dataclass
class _Target:
    """A membership message resolved to its Campaign and person."""

    work: Work
    membership: Any          # the MembershipMapping
    person_ref: dict[str, Any]
    key: str                 # the member's Jomablue id (upsert key value)
    person: PersonRecord
    campaign_id: str         # the Campaign (event's or session's)
    is_session: bool
    person_key: str = ""     # the person's Jomablue id


@dataclass
class _Member:
    """One member to write, merged from every message of the batch about it."""

    key: str
    membership: Any
    row: dict[str, Any]      # what the state store will hold
    record: dict[str, Any]   # what Salesforce is sent
    mode: str                # upsert | update
    works: list[Work]
    old_cm: str | None = None   # a membership of the record the person no longer matches
    unchanged: bool = False
    previous_status: str | None = None   # what the member had before this batch
    merged: bool = False     # the person's stored record was merged into this batch's (people stage)


@asynccontextmanager
async def campaign_locks(state: Any, campaign_ids: set[str | None]) -> AsyncIterator[None]:
    """The store's lock on each Campaign, taken in sorted order (no two replicas deadlock)."""
    async with AsyncExitStack() as stack:
        for cid in sorted(c for c in campaign_ids if c):
            await stack.enter_async_context(state.campaign_lock(cid))
        yield


def adoption_queries(pairs: list[tuple[str | None, str | None]]) -> list[str]:
    """CampaignMembers of these (Campaign, Lead or Contact) pairs: each id listed once, Leads and
    Contacts told apart by their key prefix, packed to fit Salesforce's limits."""
    out: list[str] = []
    by_campaign: dict[str, set[str]] = {}
    for cid, who in pairs:
        if cid and who:
            by_campaign.setdefault(cid, set()).add(who)
    for cid, ids in sorted(by_campaign.items()):
        head = (f"SELECT Id, CampaignId, LeadId, ContactId, Status FROM CampaignMember "
                f"WHERE CampaignId = {literal(cid)} AND (")
        out += pack_or(head, [("LeadId", [i for i in ids if i.startswith("00Q")]),
                              ("ContactId", [i for i in ids if not i.startswith("00Q")])], tail=")")
    return out


def _answered_early(writes: list[Write], facts: Facts) -> set[int]:
    """Member writes Salesforce already wrote in the people's call (Facts.early_members): the
    same record, its person's reference resolved to the id this stage now knows, takes that
    answer instead of a call. Anything else (its person's row failed, so its subrequest did not
    run; a row refused; a record that came out otherwise) is sent now, by its Jomablue id: never
    twice a member."""
    return {id(x) for x in writes if x.take_answer(facts.early_members.get(x.key))}


class MemberStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        plans, upserts, updates = self._writes(works, facts)
        for key, p in plans.items():
            if p.unchanged:
                changes.members[key] = dict(p.row)
        deletes = [p.old_cm for p in plans.values() if p.old_cm and not p.unchanged]
        # The person now matches another record (an id corrected): the old membership goes,
        # so the new one can take the same Jomablue id.
        await self.writer.delete(deletes)
        early = _answered_early(upserts + updates, facts)
        ext = next((p.membership.upsert_key for p in plans.values()), "Jomablue_Id__c")
        # Members lock their Campaign: one call at a time (UNABLE_TO_LOCK_ROW), grouped by Campaign,
        # and one writer per Campaign across replicas (the store's Campaign locks, in sorted order).
        late_upserts = [x for x in upserts if id(x) not in early]
        late_updates = [x for x in updates if id(x) not in early]
        async with campaign_locks(self.state, {x.record.get("CampaignId") for x in late_upserts}
                                  | {plans[x.key].row.get("campaign_id") for x in late_updates}):
            await self.writer.send(late_upserts, ext, serial=True)
            await self.writer.send(late_updates, serial=True)
        missing = [x for x in upserts + updates if x.action in _MISSING]
        found = await self._read_missing(missing, plans) if missing else Trace()
        if missing:
            await self._follow_merges(missing, plans, found, changes, ext)
        adopt = [x for x in upserts + updates if x.action is RowAction.ALREADY_A_MEMBER]
        if adopt:
            await self._adopt(adopt, plans)
        for x in upserts + updates:
            if x.error:
                if not self._heal(x, plans[x.key].row, changes, found):
                    self.verdicts.settle(x)
                continue
            plan = plans[x.key]
            row = plan.row
            row["cm_id"] = to18(x.result_id) if x.result_id else row.get("cm_id")
            changes.members[x.key] = dict(row)
            member = {"key": x.key, "status": row["status"], "id": row["cm_id"]}
            if plan.previous_status != row["status"]:
                member["was"] = plan.previous_status
            for w in x.works:
                self.verdicts.note(w, "member", dict(member))
        # Refusals a read explained (records deleted or merged away) are not the org refusing the mapping.
        explained = frozenset({"CampaignMember"}) if missing and any(
            found.gone(i) or found.moved(i) for i in found.records) else frozenset()
        return StageResult(facts.learn(members=changes.members), changes, self.verdicts, explained=explained)

    def planned(self, works: list[Work], facts: Facts) -> tuple[list[Write], list[Write], str, set[str]]:
        """The member writes these messages need, for the people stage to send with the people's
        writes (issue #18): (upserts, updates, upsert key, their Campaigns), none of a member whose
        old membership must go first; an update only for a person this batch does not write (an
        update names no person to depend on). Nothing is sent: this stage adopts what was written."""
        plans, upserts, updates = self._writes(works, facts)
        upserts = [x for x in upserts if not plans[x.key].old_cm]
        updates = [x for x in updates if not str(plans[x.key].row.get("person_sf_id") or "").startswith("@{")]
        campaigns = {str(plans[x.key].row["campaign_id"]) for x in upserts + updates}
        return upserts, updates, next((p.membership.upsert_key for p in plans.values()), "Jomablue_Id__c"), campaigns

    def _writes(self, works: list[Work], facts: Facts) -> tuple[dict[str, _Member], list[Write], list[Write]]:
        """One planned member per key, and the upserts and updates to send (grouped by Campaign)."""
        self.tables = CategoryTables(self.state, facts)
        targets = self._targets(works, facts)
        plans = self._plan(targets, facts, self.state.members({t.key for t in targets}))
        updates, upserts = [], []
        for key, p in plans.items():
            if p.unchanged:
                continue
            if p.mode == "update":
                updates.append(Write("CampaignMember", "update", {"Id": p.row["cm_id"], **p.record}, p.works,
                                     key=key, label=f"CampaignMember {p.row['cm_id']} ({key})"))
            else:
                upserts.append(Write("CampaignMember", "upsert", dict(p.record), p.works, key=key,
                                     label=f"CampaignMember {key}"))
        upserts.sort(key=lambda x: x.record.get("CampaignId") or "")
        return plans, upserts, updates

    # -- targets -------------------------------------------------------------------------
    @property
    def policies(self) -> list[Any]:
        """Policies that share the event Campaign's members; a session's members are its own."""
        return [rm.membership.status for rt in ("person", "lead", "session_participation")
                if (rm := self.mappings.for_type(rt)) and rm.membership and not rm.session_campaign]

    def _targets(self, works: list[Work], facts: Facts) -> list[_Target]:
        """Which Campaign and which person each membership message is about."""
        out: list[_Target] = []
        for w in works:
            rm = self.mapping_of(w)
            mm = rm.membership
            if mm is None or rm.person is None or not mm.applies(w.msg.payload):
                continue
            person_key = rm.person.jomablue_id(w.msg.payload) or ""
            person = facts.people.get(person_key)
            if person is None:
                continue   # the person's write failed: the message already says why
            if rm.session_campaign:
                cid = facts.sessions.get(rm.session_campaign.upsert_value(w.msg.payload, {}) or "")
            else:
                cid = facts.campaigns.get(w.msg.event_id)
            if not cid:
                continue   # the Campaign's write failed: likewise
            if cid in facts.status_errors:
                self.verdicts.fail(w, facts.status_errors[cid])
                continue
            person_ref = refs(campaign_id=cid, session_campaign_id=cid, person=(person.sobject, person.sf_id))
            key = mm.upsert_value(w.msg.payload, person_ref)
            if not key:
                self.verdicts.fail(w, f"membership: the upsert key {mm.upsert_key} has no value", mm.upsert_key)
                continue
            out.append(_Target(w, mm, person_ref, key, person, cid, is_session=rm.session_campaign is not None,
                               person_key=person_key))
        return out

    # -- plan ----------------------------------------------------------------------------
    def _merge_status(self, policy: Any, prev: str | None, new: str) -> str:
        out: str = policy.merge(prev, new)
        if prev and out != prev:
            # Another resource type's policy may rank these two (a lead capture's "Captured"
            # against a person's "Registered"): never let one policy undo another's progress.
            for p in self.policies:
                if p is not policy and p.merge(prev, out) == prev and p.merge(out, prev) == prev:
                    return prev
        return str(out)

    def _status(self, t: _Target, previous: str | None) -> str:
        """Merge this message's status (and those of older messages it superseded) into the last one."""
        policy = t.membership.status
        def merge(a: str | None, z: str) -> str:
            if t.is_session:
                return str(policy.merge(a, z))      # only this policy writes session members
            return self._merge_status(policy, a, z)
        status = previous
        for older in t.work.superseded:     # dropped as stale within this batch: their status still counts
            status = merge(status, policy.status_for(older.msg.payload))
        return str(merge(status, policy.status_for(t.work.msg.payload)))

    def _plan(self, targets: list[_Target], facts: Facts, stored: dict[str, dict[str, Any]]) -> dict[str, _Member]:
        """One planned member per Jomablue id, messages applied oldest first."""
        plans: dict[str, _Member] = {}
        for t in sorted(targets, key=lambda t: t.work.msg.generated_at):
            w, mm, key = t.work, t.membership, t.key
            prev = plans[key].row if key in plans else stored.get(key) or {}
            status = self._status(t, prev.get("status"))
            cat_ids = category_ids(w.msg.payload) if w.msg.resource_type == "person" else prev.get("category_ids") or []
            table = self.tables(w.msg.event_id)
            names = [table[c] for c in cat_ids if c in table]
            if len(names) < len(cat_ids):
                self.verdicts.note(w, "pending_categories", [c for c in cat_ids if c not in table])
            ref = {**t.person_ref, **refs(status=status, category_names=names,
                                          event_timezone=(facts.events.get(w.msg.event_id) or {}).get("timezone"))}
            # the member's person merged or converted since: Salesforce moved the membership too
            same_target = bool(prev.get("cm_id")) and prev.get("campaign_id") == t.campaign_id and \
                prev.get("person_sf_id") in (t.person.sf_id, t.person.converted_from, t.person.merged_from)
            mode = "update" if same_target else "upsert"
            record = mm.build(w.msg.payload, ref, mode=mode)
            cat_field = mm.field_for_ref("categories.names")
            on_create = mm.fields_with_policy("on_create")
            row = {"event_id": w.msg.event_id, "campaign_id": t.campaign_id,
                   "person_key": t.person_key,
                   "person_sf_id": t.person.sf_id, "status": status,
                   "category_ids": cat_ids,
                   # A lead capture's or session's mapping may not write categories: keep what we know.
                   "categories_text": record.get(cat_field) if cat_field else prev.get("categories_text"),
                   "cm_id": prev.get("cm_id") if same_target else None,
                   # on_create fields (CampaignId, LeadId...) are only in an upsert's record: leave
                   # them out, so a member just created is not rewritten by its next unchanged message
                   "record_hash": stable_hash([t.campaign_id, t.person.sf_id,
                                               {k: v for k, v in record.items() if k not in on_create}])}
            plan = plans.get(key)
            if plan is None:
                old_cm = prev.get("cm_id") if prev.get("cm_id") and not same_target else None
                plan = plans[key] = _Member(key, mm, row, record, mode, [w], old_cm,
                                            previous_status=(stored.get(key) or {}).get("status"),
                                            merged=t.person.merged_from is not None)
            else:
                keep = ("cm_id",) if w.msg.resource_type == "person" else ("cm_id", "category_ids", "categories_text")
                plan.row.update({k: v for k, v in row.items() if k not in keep})
                plan.record.update(record)
                plan.works.append(w)
            # Salesforce already holds exactly this: no call.
            plan.unchanged = mode == "update" and stored.get(key, {}).get("record_hash") == row["record_hash"]
        return plans

    # -- results -------------------------------------------------------------------------
    async def _read_missing(self, writes: list[Write], plans: dict[str, _Member]) -> Trace:
        """The records refused writes name, read by Id through queryAll in one call (a merged
        person followed to its survivor): what is really gone, what moved, what is still there."""
        ids: dict[str, set[str]] = {}
        for x in writes:
            if x.op == "update":
                ids.setdefault("CampaignMember", set()).add(x.record["Id"])
                row = plans[x.key].row
                if row.get("person_sf_id") and row.get("campaign_id"):   # for a merge that deleted it
                    person = row["person_sf_id"]
                    ids.setdefault("Lead" if person.startswith("00Q") else "Contact", set()).add(person)
                    ids.setdefault("Campaign", set()).add(row["campaign_id"])
                continue
            if x.record.get("CampaignId"):
                ids.setdefault("Campaign", set()).add(x.record["CampaignId"])
            for who in _WHO:
                if x.record.get(who):
                    ids.setdefault("Lead" if who == "LeadId" else "Contact", set()).add(x.record[who])
        return await trace(self.reader, ids)

    async def _follow_merges(self, writes: list[Write], plans: dict[str, _Member], found: Trace,
                             changes: ChangeSet, ext: str) -> None:
        """Members of a person an admin merged away: relink every registration of the loser to the
        survivor and write the member there now. The merge moved the loser's membership to the
        survivor, so the upsert finds it by its Jomablue id or comes back ALREADY_A_MEMBER and is
        adopted: never a second CampaignMember."""
        resend: list[Write] = []
        for x in writes:
            plan = plans[x.key]
            person = plan.row.get("person_sf_id") or ""
            if x.op == "update" and found.gone(x.record["Id"]) and (plan.merged or found.moved(person)):
                # The survivor was already a member: the merge deleted the loser's membership
                # (the one we update). Write the member afresh: it is the survivor's, adopted.
                x.op = "upsert"
                x.record = {**{k: v for k, v in x.record.items() if k != "Id"}, ext: x.key,
                            "CampaignId": plan.row["campaign_id"],
                            "LeadId" if person.startswith("00Q") else "ContactId": person}
                x.error, x.label = None, f"{x.label} (its person's record was merged)"
                if not found.moved(person):
                    resend.append(x)      # the people stage already followed the merge
                    continue
            if x.op != "upsert":
                continue
            who = next((f for f in _WHO if x.record.get(f)), "")
            survivor = found.moved(x.record[who]) if who else None
            if survivor is None or found.gone(x.record.get("CampaignId") or ""):
                continue
            loser = to18(x.record[who])
            changes.relinks.append((loser, survivor.sobject, survivor.sf_id))
            x.record = {k: v for k, v in x.record.items() if k not in _WHO}
            x.record["LeadId" if survivor.sobject == "Lead" else "ContactId"] = survivor.sf_id
            x.error, x.label = None, f"{x.label} (its person merged into {survivor.sf_id})"
            plan.row["person_sf_id"] = survivor.sf_id
            for w in x.works:
                self.verdicts.note(w, "merged", {"from": loser, "to": survivor.sf_id, "sobject": survivor.sobject})
            resend.append(x)
        async with campaign_locks(self.state, {x.record.get("CampaignId") for x in resend}):
            await self.writer.send(resend, ext, serial=True)

    def _heal(self, x: Write, row: dict[str, Any], changes: ChangeSet, found: Trace) -> bool:
        """Records deleted in Salesforce behind our back: forget them and retry the message.

        A member updated by Id that is gone, or a Campaign or person that is gone (a member
        upsert naming it comes back GONE: ENTITY_IS_DELETED with an empty `fields` list in a
        real org, so which one is not said), is created again on the next delivery instead of
        quarantining every message of the event. Forgetting a link that was still good costs
        one lookup on the next delivery, never a duplicate: Campaigns and people are upserted
        or found by their Jomablue id.
        """
        if x.action is RowAction.CONVERTED_LEAD and row.get("person_key"):
            # The Lead was converted since it was linked: walk the ladder again next time.
            changes.forgotten_people.add(row["person_key"])
            for w in x.works:
                self.verdicts.retry(w, f"{x.label}: the person's Lead was converted; it is followed to its Contact on "
                                    "the next delivery")
            return True
        if x.action not in _MISSING:
            return False
        # INVALID_CROSS_REFERENCE_KEY also names a record type or owner the user may not use: only
        # a read that finds the record gone makes it "gone"; otherwise the field's problem (settled).
        confirmed = x.action is RowAction.GONE
        if x.op == "update":
            if not (confirmed or found.gone(x.record["Id"])):
                return False
            changes.forgotten_members.add(x.key)
            reason = f"{x.label} was deleted in Salesforce; it is created again on the next delivery"
        else:
            cid = x.record.get("CampaignId")
            who = next((str(x.record[f]) for f in _WHO if x.record.get(f)), "")
            campaign_gone, person_gone = bool(cid) and found.gone(str(cid)), bool(who) and found.gone(who)
            if not cid or not (campaign_gone or person_gone or confirmed):
                return False
            if campaign_gone or not person_gone:    # unexplained ENTITY_IS_DELETED: forget both, as before
                changes.forgotten_campaigns.add(cid)
            if (person_gone or not campaign_gone) and row.get("person_key"):
                changes.forgotten_people.add(row["person_key"])
            reason = (f"{x.label}: Campaign {cid} (or the person's record) no longer exists in Salesforce "
                      f"({x.error.code if x.error else 'GONE'}); the links are forgotten and the member is created "
                      "again on the next delivery")
        for w in x.works:
            self.verdicts.retry(w, reason)
        return True

    async def _adopt(self, writes: list[Write], plans: dict[str, _Member]) -> None:
        """A member made outside the connector (or moved to a survivor by a merge): take it over
        instead of failing, its status merged with ours by the policy (never backwards)."""
        pairs = [(x.record.get("CampaignId"), x.record.get("LeadId") or x.record.get("ContactId")) for x in writes]
        found: dict[tuple[str, str], tuple[str, str | None]] = {}
        for page in await self.reader.query_many(adoption_queries(pairs)):
            for r in page:
                who = r.get("ContactId") or r.get("LeadId")
                found[(to18(r["CampaignId"]), to18(str(who)))] = (to18(r["Id"]), r.get("Status"))
        updates = []
        for x, (c, p) in zip(writes, pairs, strict=True):
            cm_id, held = found.get((to18(c), to18(p)), (None, None)) if c and p else (None, None)
            if not cm_id:
                continue
            # Keep what we meant to write, minus the fields Salesforce won't update.
            rec = {k: v for k, v in x.record.items() if k not in ("CampaignId", "LeadId", "ContactId")}
            plan = plans[x.key]
            status_field = plan.membership.field_for_ref("status")
            if held and status_field and rec.get(status_field):
                status = self._merge_status(plan.membership.status, held, rec[status_field])
                rec[status_field] = plan.row["status"] = status
            u = Write("CampaignMember", "update", {"Id": cm_id, **rec}, x.works, key=x.key, label=x.label + " (adopted)")
            updates.append((x, u))
        await self.writer.send([u for _, u in updates], serial=True)
        for x, u in updates:
            x.error, x.result_id = u.error, u.result_id or u.record["Id"]
            for w in x.works:
                self.verdicts.note(w, "adopted", u.record["Id"])
