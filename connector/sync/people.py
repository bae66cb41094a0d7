"""Stage: people. The identity ladder for a whole batch, then Lead/Contact writes.

One SOQL query per object (split only to fit the URL) finds every candidate of the batch, and
only of the people not known already (a stored link, an organisation_uid that is the record's id:
issue #18); writes go in collections of 200, with the members' writes in the same /composite
when they fit one call (connector/sync/together.py). A Lead converted since we last looked is detected by its
write coming back CONVERTED_LEAD and is re-routed to its Contact in the same run.
Every message of a batch about one person succeeds or fails with that person.

The org's own life (issue #16): a linked record an admin merged away is followed to its survivor
(connector/sync/survivors.py) instead of walking the ladder again, which would create a duplicate;
a record the integration user may not edit (record-level sharing) leaves the person's fields
unwritten with a note, and their membership is still written; a reference Salesforce calls
invalid is "gone" only when a read confirms it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from connector.errors import AmbiguousMatch
from connector.mapping import PersonMapping, RecordMapping
from connector.salesforce.gateway import COMPOSITE_QUERY_LIMIT
from connector.salesforce.ids import object_for, to18
from connector.salesforce.results import RowAction, WriteError
from connector.salesforce.soql import fits, pack_or
from connector.sync.changes import ChangeSet, Facts, PersonRecord
from connector.sync.identity import Lookups, Match, PersonRef, create_group_key, lookup_queries, resolve, sf_person_id
from connector.sync.model import Work, Write, mapping_error
from connector.sync.sent_before import SentBefore, stored_hashes
from connector.sync.stage import Stage, StageResult
from connector.sync.statuses import campaigns_needing_statuses, status_queries, statuses_read
from connector.sync.survivors import Survivor, read_by_id, trace
from connector.sync.together import send_with_members
from connector.sync.writer import Together, merge_writes

_Who = tuple[PersonRef, PersonMapping]
_MISSING = (RowAction.GONE, RowAction.BAD_REFERENCE)   # a record refused as missing: read to confirm


class PeopleStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        self.changes = ChangeSet()
        self.notes: list[str] = []
        self.explained: set[str] = set()     # objects whose refusals a read explained (deleted, merged)
        self.sources: dict[str, list[tuple[Work, PersonMapping]]] = {}   # every message per person, oldest first
        self.sent = SentBefore(self.sources)
        self.works, self.facts = works, facts
        self.settled: dict[str, PersonRecord] = {}
        self.statuses_needed: list[str] = []
        self.known: set[str] = set()          # matched by their stored link, without a lookup
        self.relook: set[str] = set()         # known people whose record was gone: the ladder again
        self.together = True                  # members may go with the people's writes (first round only)
        self.early: dict[str, Write] = {}     # member writes answered with the people's (issue #18)
        self.early_statuses: dict[tuple[str, str], Write] = {}
        self.status_reads: dict[str, dict[str, int]] = {}
        people: dict[str, _Who] = {}
        for w in sorted(works, key=lambda w: w.msg.generated_at):
            rm = self.mapping_of(w)
            if rm.person is None:
                continue
            jid = rm.person.jomablue_id(w.msg.payload)
            if not jid:
                self.verdicts.fail(w, "no person id in the message", "identifiers.id")
                continue
            ref = PersonRef(jid, rm.person.organisation_uid(w.msg.payload), rm.person.email(w.msg.payload))
            self.sources.setdefault(jid, []).append((w, rm.person))
            people[jid] = (ref, rm.person)
        for jid, (ref, _pm) in list(people.items()):
            for name, value in (("identifiers.id", ref.jomablue_id), ("identifiers.organisation_uid", ref.organisation_uid),
                                ("identifiers.email", ref.email)):
                if value and not fits(value):
                    # No query can carry it (SOQL and URL limits): this person fails alone.
                    for x in self._works(jid):
                        self.verdicts.fail(x, f"{name} is {len(value):,} characters: too long to look up in Salesforce",
                                           name)
                    people.pop(jid, None)
                    break
        if not people:
            return StageResult(facts, verdicts=self.verdicts)
        links = self.state.people(people.keys())
        settled = self.settled = self._settled(people, links)
        for jid in settled:
            people.pop(jid)
        statuses_needed, _have = campaigns_needing_statuses(works, facts, self.state,
                                                            [s.label for s in self.mappings.statuses])
        self.statuses_needed = statuses_needed
        known = self._known(people, links)
        self.known = set(known)
        found, status_reads = await self._match_and_write(people, links, known)
        if self.relook:
            # Known people whose record was merged away or deleted since: the ladder, as for anyone.
            again = {jid: people[jid] for jid in self.relook}
            self.known, self.relook, self.together = set(), set(), False   # members: their own stage
            more, reads = await self._match_and_write(again, links, {})
            found.update(more)
            status_reads = {**status_reads, **reads}
        changes = self.changes
        for jid, rec in found.items():
            ref = people[jid][0]
            if rec.record_hash is None and links.get(jid, {}).get("sf_id") == rec.sf_id:
                rec = replace(rec, record_hash=links[jid].get("record_hash"))
            changes.people[jid] = {"sobject": rec.sobject, "sf_id": rec.sf_id, "rung": rec.rung,
                                   "organisation_uid": ref.organisation_uid, "record_hash": rec.record_hash}
            if rec.converted_from:
                changes.relinks.append((rec.converted_from, rec.sobject, rec.sf_id))
            if rec.merged_from:
                # Every registration linked to the merged-away record now names the survivor.
                changes.relinks.append((rec.merged_from, rec.sobject, rec.sf_id))
        refused = sum(1 for key in self.verdicts.details if "not_updated" in self.verdicts.details[key])
        if refused:
            self.notes.append(f"{refused:,} messages synced without their person's field update: Salesforce refuses "
                              "the integration user edit access to those records (outcome detail `not_updated`)")
        return StageResult(facts.learn(people={**settled, **found}, status_reads=status_reads,
                                       early_members=self.early, early_statuses=self.early_statuses), changes,
                           self.verdicts, self.notes, frozenset(self.explained))

    async def _match_and_write(self, people: dict[str, _Who], links: dict[str, dict[str, Any]],
                               known: dict[str, Match]) -> tuple[dict[str, PersonRecord], dict[str, dict[str, int]]]:
        """The ladder for the people not known (one lookup call), then every person's write."""
        m = self.mappings.matching
        matches = dict(known)
        unknown = {jid: who for jid, who in people.items() if jid not in matches}
        lookups, status_reads = await self._lookup(unknown, links, self.statuses_needed) if unknown \
            else (Lookups(), {})
        moved = await self._follow_merges(unknown, links, lookups) if unknown else {}
        # The ladder sees a merged-away link as a link to its survivor.
        ladder_links = {**links, **{jid: {**links[jid], "sobject": s.sobject, "sf_id": s.sf_id}
                                    for jid, (_loser, s) in moved.items()}}
        for jid, (ref, _pm) in unknown.items():
            try:
                match = resolve(ref, lookups, ladder_links.get(jid), org_field=m.organisation_uid_field,
                                use_email=m.email, create_as=m.create_as)
            except AmbiguousMatch as exc:
                for x in self._works(jid):
                    self.verdicts.fail(x, exc.reason, "identifiers.email")
                    self.verdicts.note(x, "candidates", exc.candidates)
                continue
            if jid in moved and match.sf_id == moved[jid][1].sf_id:
                match = replace(match, rung="merged", merged_from=moved[jid][0])
            matches[jid] = match
        self.status_reads = {**self.status_reads, **status_reads}     # for statuses sent with the people
        return await self._write(people, matches, ladder_links, lookups), status_reads

    # -- helpers -----------------------------------------------------------------------------
    def _works(self, jid: str) -> list[Work]:
        """Every message of this batch about the person: they succeed or fail together."""
        return [w for w, _pm in self.sources.get(jid, [])]

    def _record(self, jid: str, sobject: str, mode: Literal["upsert", "update"], current: Any) -> dict[str, Any]:
        """The person's record from every message of the batch about them, the newest winning."""
        record: dict[str, Any] = {}
        for w, pm in self.sources.get(jid, []):
            rec_map = pm.lead if sobject == pm.lead.object else pm.contact
            record.update(rec_map.build(w.msg.payload, {}, mode=mode, current=current))
        return record

    def _settled(self, people: dict[str, _Who], links: dict[str, dict[str, Any]]) -> dict[str, PersonRecord]:
        """People linked before whose every source says what was last written: no lookup, no write.
        A source that says it in other words counts too: a session check-in carrying the name and
        company the registration wrote is settled by the write journal (sent_before.py)."""
        linked = {jid: links[jid] for jid, (ref, _pm) in people.items()
                  if (links.get(jid) or {}).get("sf_id")
                  and (links[jid].get("organisation_uid") or None) == (ref.organisation_uid or None)}
        stored = {jid: stored_hashes(link) for jid, link in linked.items()}
        self.sent.read_journal(self.state, {to18(link["sf_id"]) for jid, link in linked.items()
                                            if not self.sent.hashed(jid, link["sobject"], link["sf_id"], stored[jid])})
        out: dict[str, PersonRecord] = {}
        for jid, link in linked.items():
            if not self.sent.unchanged(jid, link["sobject"], link["sf_id"], stored[jid]):
                continue
            merged = json.dumps({**stored[jid], **self.sent.hashes(jid, link["sobject"], link["sf_id"])},
                                sort_keys=True)
            out[jid] = PersonRecord(link["sobject"], link["sf_id"], "link", record_hash=merged)
            self._mark(jid, rung="link", sobject=link["sobject"], id=link["sf_id"])
            if merged != link.get("record_hash"):
                # Remember the new source's hash: its next message is settled without the journal.
                self.changes.people[jid] = {**{k: link.get(k) for k in ("sobject", "sf_id", "rung", "organisation_uid")},
                                            "record_hash": merged}
        return out

    def _known(self, people: dict[str, _Who], links: dict[str, dict[str, Any]]) -> dict[str, Match]:
        """People whose stored link still stands (same organisation_uid) and whose sources were all
        written to that record before (a hash per source), or whose organisation_uid is their
        record's id (when the mapping fills no field of it only if empty): matched without a
        lookup, so a batch of known people costs its writes only (issue #18). What the lookup would have read comes back
        on the write instead: a Lead converted since answers CANNOT_UPDATE_CONVERTED_LEAD and is
        followed to its Contact (_follow_conversions); a record merged away or deleted answers
        ENTITY_IS_DELETED and is explained by a read (_explain_missing). Fill-if-empty fields are
        left out of such an update (mapping: if_empty applies only against a record read), which
        they already hold since this connector wrote every source's fields to the record once."""
        out: dict[str, Match] = {}
        for jid, (ref, pm) in people.items():
            link = links.get(jid) or {}
            if link.get("sf_id") and (link.get("organisation_uid") or None) == (ref.organisation_uid or None):
                stored = stored_hashes(link)
                if stored and all(rt in stored for rt in self.sent.hashes(jid, link["sobject"], link["sf_id"])):
                    out[jid] = Match(link["sobject"], to18(link["sf_id"]), "link")
                    continue
            sid = sf_person_id(ref.organisation_uid)
            sobject = object_for(sid) if sid else None
            if sid and sobject and not (pm.lead if sobject == pm.lead.object else pm.contact).fields_with_policy("if_empty"):
                # organisation_uid names the record, and no field waits to be filled if empty: the
                # write itself says whether it is there (gone: the ladder runs again, below).
                out[jid] = Match(sobject, sid, "organisation_uid")
        return out

    def _mark(self, jid: str, **match: Any) -> None:
        for x in self._works(jid):
            self.verdicts.note(x, "match", match)

    def _select(self, sobject: str) -> set[str]:
        fields = {"Id", "Email", "Jomablue_Id__c", "OwnerId"}   # the owner: named when a record is private
        if sobject == "Lead":
            fields |= {"IsConverted", "ConvertedContactId"}
        if self.mappings.matching.organisation_uid_field:
            fields.add(self.mappings.matching.organisation_uid_field)
        for rt in ("person", "lead", "session_participation"):
            rm = self.mappings.for_type(rt)
            if rm and rm.person:
                rec = rm.person.lead if sobject == "Lead" else rm.person.contact
                if rec.object == sobject:
                    fields |= set(rec.fields_with_policy("if_empty"))
        return fields

    async def _lookup(self, people: dict[str, _Who], links: dict[str, dict[str, Any]],
                      status_campaigns: list[str]) -> tuple[Lookups, dict[str, dict[str, int]]]:
        """The batch's candidates; and, riding in the same call when it has room, the statuses of the
        Campaigns whose statuses the status stage must complete (it numbers new ones after them)."""
        m = self.mappings.matching
        ids: dict[str, set[str]] = {"Lead": set(), "Contact": set()}
        jids, emails, orgs = set(), set(), set()
        for jid, (ref, _pm) in people.items():
            sid = sf_person_id(ref.organisation_uid)
            if sid:
                ids["Lead" if sid.startswith("00Q") else "Contact"].add(sid)
            elif ref.organisation_uid and m.organisation_uid_field:
                orgs.add(ref.organisation_uid)
            link = links.get(jid)
            if link and (link.get("organisation_uid") or None) == (ref.organisation_uid or None):
                ids[link["sobject"]].add(link["sf_id"])
                continue  # a usable link: no need to search by id or email
            jids.add(jid)
            if m.email and ref.email:
                emails.add(ref.email.strip())
        lookups = Lookups()
        planned = [(sobject, soql) for sobject in ("Lead", "Contact")
                   for soql in lookup_queries(sobject, self._select(sobject), ids[sobject], jids, emails,
                                              m.organisation_uid_field, orgs)]
        soqls = [soql for _, soql in planned]
        riders = status_queries(status_campaigns)
        if riders and -(-(len(soqls) + len(riders)) // COMPOSITE_QUERY_LIMIT) > -(-len(soqls) // COMPOSITE_QUERY_LIMIT):
            riders = []    # no room: the status stage reads them itself
        # Every query of the batch in as few calls as Salesforce allows (five per composite call).
        results = await self.reader.query_many(soqls + riders)
        for (sobject, _), records in zip(planned, results[:len(soqls)], strict=True):
            for rec in records:
                lookups.add(sobject, rec, m.organisation_uid_field)
        return lookups, (statuses_read(status_campaigns, results[len(soqls):]) if riders else {})

    async def _follow_merges(self, people: dict[str, _Who], links: dict[str, dict[str, Any]],
                             lookups: Lookups) -> dict[str, tuple[str, Survivor]]:
        """Stored links the lookup did not find (deleted, or merged away by an admin): read them
        through queryAll and follow each merge to its survivor. Jomablue id → (loser, survivor)."""
        stale: dict[str, set[str]] = {}
        for jid, (ref, _pm) in people.items():
            link = links.get(jid)
            if link and link.get("sf_id") and link["sf_id"] not in lookups.by_id \
                    and (link.get("organisation_uid") or None) == (ref.organisation_uid or None):
                stale.setdefault(link["sobject"], set()).add(link["sf_id"])
        if not stale:
            return {}
        found = await trace(self.reader, stale, {s: self._select(s) for s in stale})
        moved: dict[str, tuple[str, Survivor]] = {}
        for jid in people:
            loser = (links.get(jid) or {}).get("sf_id") or ""
            survivor = found.moved(loser) if loser in found.survivors else None
            if survivor is not None:
                lookups.add(survivor.sobject, dict(survivor.record), self.mappings.matching.organisation_uid_field)
                moved[jid] = (loser, survivor)
        return moved

    # -- writes ------------------------------------------------------------------------------
    def _plan_update(self, jid: str, match: Match, rec_map: RecordMapping, links: dict[str, dict[str, Any]],
                     lookups: Lookups) -> tuple[PersonRecord, Write | None]:
        # Matched without a lookup: nothing read, so no if_empty field is written (None: unknown).
        record = self._record(jid, match.sobject, "update", None if jid in self.known else match.record)
        key_value = record.get(rec_map.upsert_key)
        if key_value and any(r["_sobject"] == match.sobject and r["Id"] != match.sf_id
                             for r in lookups.by_jomablue_id.get(key_value, [])):
            # The person was matched away from a record that carries their id (an
            # organisation_uid corrected): the key is unique, leave it where it is.
            record.pop(rec_map.upsert_key)
        assert match.sf_id is not None, "an update names its record"
        link = links.get(jid) or {}
        stored = stored_hashes(link) if link.get("sf_id") == match.sf_id else {}
        new = self.sent.hashes(jid, match.sobject, match.sf_id)
        found = PersonRecord(match.sobject, match.sf_id, match.rung, match.converted_from,
                             json.dumps({**stored, **new}, sort_keys=True), merged_from=match.merged_from)
        self._mark(jid, rung=match.rung, sobject=match.sobject, id=match.sf_id,
                   **({"merged_from": match.merged_from} if match.merged_from else {}))
        if self.sent.unchanged(jid, match.sobject, match.sf_id, stored) or not record:
            return found, None   # Salesforce already holds exactly this: no call
        return found, Write(match.sobject, "update", {"Id": match.sf_id, **record}, self._works(jid), key=jid,
                            label=f"{match.sobject} {match.sf_id} for {jid}", stands_for=[jid])

    async def _write(self, people: dict[str, _Who], matches: dict[str, Match], links: dict[str, dict[str, Any]],
                     lookups: Lookups) -> dict[str, PersonRecord]:
        found: dict[str, PersonRecord] = {}
        updates: list[Write] = []
        creates: dict[str, Write] = {}
        create_key: dict[str, str] = {}     # sobject → the upsert key its creates use
        for jid, match in matches.items():
            ref, pm = people[jid]
            rec_map = pm.lead if match.sobject == "Lead" else pm.contact
            if match.sf_id:
                found[jid], write = self._plan_update(jid, match, rec_map, links, lookups)
                if write:
                    updates.append(write)
                continue
            gk = create_group_key(ref, self.mappings.matching.email)
            if gk in creates:    # the same human twice in one batch: one record
                creates[gk].add_works(self._works(jid))
                creates[gk].stands_for.append(jid)
                continue
            record = self._record(jid, rec_map.object, "upsert", None)
            creates[gk] = Write(rec_map.object, "upsert", record, self._works(jid), key=jid,
                                label=f"new {rec_map.object} for {jid}", stands_for=[jid])
            create_key[rec_map.object] = rec_map.upsert_key
            if not record.get(rec_map.upsert_key):
                creates[gk].error = mapping_error(rec_map.upsert_key)
        updates = merge_writes(updates, None)   # two registrations of one record: one write
        groups: list[Together] = []
        for sobject in ("Lead", "Contact"):
            groups.append(Together([u for u in updates if u.sobject == sobject], ref=f"p{len(groups)}_"))
            groups.append(Together([c for c in creates.values() if c.sobject == sobject and c.error is None],
                                   create_key.get(sobject), ref=f"p{len(groups)}_"))
        groups = [g for g in groups if g.writes]
        if not await self._send_with_members(groups, found):
            for g in groups:
                await self.writer.send(g.writes, g.ext_field)
        writes = updates + list(creates.values())
        converted = [w for w in writes if w.action is RowAction.CONVERTED_LEAD]
        if converted:
            await self._follow_conversions(converted, people, found, lookups)
        missing = [w for w in writes if w.op == "update" and w.action in _MISSING]
        relook = [w for w in missing if set(w.stands_for) <= self.known]   # matched without a lookup
        await self._explain_missing([w for w in missing if not any(w is r for r in relook)])
        await self._read_owners([w for w in writes if w.error and w.action is RowAction.NO_ACCESS], lookups)
        for w in writes:
            if any(w is r for r in relook):
                self.relook.update(w.stands_for)
                for jid in w.stands_for:
                    found.pop(jid, None)
                continue
            if w.error and w.action is RowAction.NO_ACCESS and w.op == "update":
                self._not_updated(w, found, lookups)
                continue
            if w.error and w.action is not RowAction.CONVERTED_LEAD:
                self.verdicts.settle(w)
                for jid in w.stands_for:
                    found.pop(jid, None)
                continue
            if w.result_id and w.op == "upsert":
                sf_id = to18(w.result_id)
                for jid in w.stands_for:
                    h = json.dumps(self.sent.hashes(jid, w.sobject, sf_id), sort_keys=True)
                    found[jid] = PersonRecord(w.sobject, sf_id, "create", record_hash=h)
                    self._mark(jid, rung="create", sobject=w.sobject, id=sf_id, created=bool(w.created))
        return found

    async def _send_with_members(self, groups: list[Together], found: dict[str, PersonRecord]) -> bool:
        """The people's writes with their members' (and the statuses those need) in one call
        (connector/sync/together.py); False when they go the ordinary way, nothing sent."""
        if not self.together:
            return False
        sent = await send_with_members(self.ctx, groups, self.works, self.facts.learn(status_reads=self.status_reads),
                                       {**self.settled, **found}, self.statuses_needed)
        if sent is None:
            return False
        self.early, self.early_statuses = sent
        return True

    async def _read_owners(self, refused: list[Write], lookups: Lookups) -> None:
        """The owners of records sharing refused, when no lookup read them (people known by their
        links): one query for all of them, only in a batch that met a private record."""
        unread: dict[str, set[str]] = {}
        for w in refused:
            sf_id = w.record.get("Id")
            if sf_id and to18(sf_id) not in lookups.by_id:
                unread.setdefault(w.sobject, set()).add(to18(sf_id))
        if unread:
            read = await read_by_id(self.reader, unread, fields={s: ["OwnerId"] for s in unread})
            for rid, rec in read.items():
                lookups.by_id.setdefault(rid, rec)

    def _not_updated(self, w: Write, found: dict[str, PersonRecord], lookups: Lookups) -> None:
        """Record-level sharing refused this one record (INSUFFICIENT_ACCESS_OR_READONLY, "insufficient
        access rights on object id": the record is private to another owner). Chosen: the message is
        synced with a note, not quarantined. The person is known (the lookup read the record), so
        their membership is still written where the org allows it, which is what the event needs;
        retrying cannot help until an admin shares the record or changes its owner, and a quarantine
        would hold the membership back as well. The refused field update is reported in the outcome
        detail (`not_updated`: id, owner, reason) and the run summary; the stored hash is left as it
        was, so the person's next changed message tries the update once more, never in a loop."""
        assert w.error is not None
        sf_id = w.record["Id"]
        note = {"sobject": w.sobject, "id": sf_id, "owner_field": "OwnerId",
                "owner": lookups.by_id.get(to18(sf_id), {}).get("OwnerId"), "reason": w.error.describe()}
        for jid in w.stands_for:
            if jid in found:
                found[jid] = replace(found[jid], record_hash=None)   # not written: keep what was stored
        for x in w.works:
            self.verdicts.note(x, "not_updated", note)

    async def _explain_missing(self, writes: list[Write]) -> None:
        """Updates refused for a record Salesforce says is deleted (ENTITY_IS_DELETED) or an invalid
        reference (INVALID_CROSS_REFERENCE_KEY, which also names a record type or owner the user may
        not use): read the record through queryAll. Merged away: its registrations are relinked to
        the survivor and the message is tried again. Gone: the link is forgotten and the message
        tried again (the ladder runs afresh). Still there: the field's problem, the message is
        quarantined with the org's own message naming the field."""
        if not writes:
            return
        ids: dict[str, set[str]] = {}
        for w in writes:
            ids.setdefault(w.sobject, set()).add(w.record["Id"])
        found = await trace(self.reader, ids)
        for w in writes:
            sf_id = to18(w.record["Id"])
            survivor = found.moved(sf_id)
            if survivor is not None:
                self.changes.relinks.append((sf_id, survivor.sobject, survivor.sf_id))
                why = f"{w.label}: merged into {survivor.sobject} {survivor.sf_id}; written there on the next delivery"
            elif found.gone(sf_id):
                self.changes.forgotten_people.update(w.stands_for)
                why = f"{w.label}: deleted in Salesforce; the person is looked up again on the next delivery"
            elif w.action is RowAction.GONE:
                why = f"{w.label}: Salesforce said deleted, a read finds it: tried again on the next delivery"
            else:
                continue     # the field's problem: settled (quarantined) with the org's message
            self.explained.add(w.sobject)
            for x in w.works:
                self.verdicts.retry(x, why)

    async def _follow_conversions(self, writes: list[Write], people: dict[str, _Who],
                                  found: dict[str, PersonRecord], lookups: Lookups) -> None:
        """Leads converted since we last looked: write to their Contacts instead."""
        lead_key = next(iter(people.values()))[1].lead.upsert_key
        ids = [w.record["Id"] for w in writes if "Id" in w.record]
        keys = [w.record[lead_key] for w in writes if "Id" not in w.record and w.record.get(lead_key)]
        soqls = pack_or(f"SELECT Id, {lead_key}, ConvertedContactId FROM Lead WHERE ", [("Id", ids), (lead_key, keys)])
        rows = [r for page in await self.reader.query_many(soqls) for r in page]
        contact_of: dict[str, str] = {}
        for rec in rows:
            if rec.get("ConvertedContactId"):
                contact_of[to18(rec["Id"])] = to18(rec["ConvertedContactId"])
                if rec.get(lead_key):
                    contact_of[rec[lead_key]] = to18(rec["ConvertedContactId"])
        contact_writes: list[Write] = []
        for w in writes:
            lead_id = w.record.get("Id")
            contact_id = contact_of.get(lead_id or w.record.get(lead_key, ""))
            if not contact_id:
                w.error = WriteError("CANNOT_UPDATE_CONVERTED_LEAD", "converted Lead without a Contact", (),
                                     RowAction.REJECT)
                continue
            w.error = None
            for jid in w.stands_for:
                found[jid] = PersonRecord("Contact", contact_id, "converted", lead_id)
                self._mark(jid, rung="converted", sobject="Contact", id=contact_id, lead=lead_id)
                contact_writes.append(Write("Contact", "update", {"Id": contact_id, **self._record(jid, "Contact", "update", None)},
                                            self._works(jid), key=jid, stands_for=[jid],
                                            label=f"Contact {contact_id} (converted from Lead) for {jid}"))
        contact_writes = merge_writes(contact_writes, None)   # one write per Contact, whoever it stands for
        await self.writer.send(contact_writes)
        for cw in contact_writes:
            if cw.action is RowAction.NO_ACCESS:
                self._not_updated(cw, found, lookups)
            elif cw.error:
                self.verdicts.fail_write(cw)
                for jid in cw.stands_for:
                    found.pop(jid, None)
