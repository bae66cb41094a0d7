"""Stage: people. The identity ladder for a whole batch, then Lead/Contact writes.

One SOQL query per object (split only to fit the URL) finds every candidate of the batch;
writes go in collections of 200. A Lead converted since we last looked is detected by its
write coming back CONVERTED_LEAD and is re-routed to its Contact in the same run.
Every message of a batch about one person succeeds or fails with that person.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from connector.errors import AmbiguousMatch
from connector.mapping import PersonMapping, RecordMapping
from connector.payloads import stable_hash
from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction, WriteError
from connector.salesforce.soql import fits, pack_or
from connector.sync.changes import ChangeSet, Facts, PersonRecord
from connector.sync.identity import Lookups, Match, PersonRef, create_group_key, lookup_queries, resolve, sf_person_id
from connector.sync.model import Work, Write, mapping_error
from connector.sync.stage import Stage, StageResult
from connector.sync.writer import merge_writes

_Who = tuple[PersonRef, PersonMapping]


def stored_hashes(link: dict[str, Any]) -> dict[str, str]:
    """The per-source hashes a link keeps (JSON); anything else (an older store) counts as none."""
    try:
        found = json.loads(link.get("record_hash") or "")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}   # who a person is (latest message) and the mapping that says so


class PeopleStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        m = self.mappings.matching
        self.sources: dict[str, list[tuple[Work, PersonMapping]]] = {}   # every message per person, oldest first
        self._hashes: dict[tuple[str, str, str], dict[str, str]] = {}
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
        settled = self._settled(people, links)
        for jid in settled:
            people.pop(jid)
        lookups = await self._lookup(people, links) if people else Lookups()
        matches: dict[str, Match] = {}
        for jid, (ref, _pm) in people.items():
            try:
                matches[jid] = resolve(ref, lookups, links.get(jid), org_field=m.organisation_uid_field,
                                       use_email=m.email, create_as=m.create_as)
            except AmbiguousMatch as exc:
                for x in self._works(jid):
                    self.verdicts.fail(x, exc.reason, "identifiers.email")
                    self.verdicts.note(x, "candidates", exc.candidates)
        found = await self._write(people, matches, links, lookups)
        changes = ChangeSet()
        for jid, rec in found.items():
            ref = people[jid][0]
            if rec.record_hash is None and links.get(jid, {}).get("sf_id") == rec.sf_id:
                rec = replace(rec, record_hash=links[jid].get("record_hash"))
            changes.people[jid] = {"sobject": rec.sobject, "sf_id": rec.sf_id, "rung": rec.rung,
                                   "organisation_uid": ref.organisation_uid, "email": ref.email,
                                   "record_hash": rec.record_hash}
            if rec.converted_from:
                changes.relinks.append((rec.converted_from, rec.sobject, rec.sf_id))
        return StageResult(facts.learn(people={**settled, **found}), changes, self.verdicts)

    # -- helpers -----------------------------------------------------------------------------
    def _works(self, jid: str) -> list[Work]:
        """Every message of this batch about the person: they succeed or fail together."""
        return [w for w, _pm in self.sources.get(jid, [])]

    def _record(self, jid: str, sobject: str, mode: str, current: Any) -> dict[str, Any]:
        """The person's record from every message of the batch about them, the newest winning."""
        record: dict[str, Any] = {}
        for w, pm in self.sources.get(jid, []):
            rec_map = pm.lead if sobject == pm.lead.object else pm.contact
            record.update(rec_map.build(w.msg.payload, {}, mode=mode, current=current))  # type: ignore[arg-type]
        return record

    def _source_hashes(self, jid: str, sobject: str, sf_id: str) -> dict[str, str]:
        """One hash per source mapping (resource type) of what its writes to this record would
        send, create-only and fill-if-empty fields left out: the same whether the record was just
        created or updated, so an unchanged person costs nothing whatever resource type mentions
        them, and two resource types never rewrite each other's fields."""
        if (jid, sobject, sf_id) in self._hashes:    # asked before and after the lookup: built once
            return self._hashes[(jid, sobject, sf_id)]
        by_type: dict[str, dict[str, Any]] = {}
        for w, pm in self.sources.get(jid, []):
            rec_map = pm.lead if sobject == pm.lead.object else pm.contact
            by_type.setdefault(w.msg.resource_type, {}).update(
                rec_map.build(w.msg.payload, {}, mode="update", current=None))
        hashes = {rt: stable_hash({"o": sobject, "id": sf_id, **rec}) for rt, rec in by_type.items()}
        self._hashes[(jid, sobject, sf_id)] = hashes
        return hashes

    def _settled(self, people: dict[str, _Who], links: dict[str, dict[str, Any]]) -> dict[str, PersonRecord]:
        """People linked before whose every source says what was last written: no lookup, no write."""
        out: dict[str, PersonRecord] = {}
        for jid, (ref, _pm) in people.items():
            link = links.get(jid) or {}
            if not link.get("sf_id") or (link.get("organisation_uid") or None) != (ref.organisation_uid or None):
                continue
            stored = stored_hashes(link)
            new = self._source_hashes(jid, link["sobject"], link["sf_id"])
            if stored and all(stored.get(rt) == h for rt, h in new.items()):
                out[jid] = PersonRecord(link["sobject"], link["sf_id"], "link", record_hash=link["record_hash"])
                self._mark(jid, rung="link", sobject=link["sobject"], id=link["sf_id"])
        return out

    def _mark(self, jid: str, **match: Any) -> None:
        for x in self._works(jid):
            self.verdicts.note(x, "match", match)

    def _select(self, sobject: str) -> set[str]:
        fields = {"Id", "Email", "Jomablue_Id__c"}
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

    async def _lookup(self, people: dict[str, _Who], links: dict[str, dict[str, Any]]) -> Lookups:
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
        # Every query of the batch in as few calls as Salesforce allows (five per composite call).
        results = await self.reader.query_many([soql for _, soql in planned])
        for (sobject, _), records in zip(planned, results, strict=True):
            for rec in records:
                lookups.add(sobject, rec, m.organisation_uid_field)
        return lookups

    # -- writes ------------------------------------------------------------------------------
    def _plan_update(self, jid: str, match: Match, rec_map: RecordMapping, links: dict[str, dict[str, Any]],
                     lookups: Lookups) -> tuple[PersonRecord, Write | None]:
        record = self._record(jid, match.sobject, "update", match.record)
        key_value = record.get(rec_map.upsert_key)
        if key_value and any(r["_sobject"] == match.sobject and r["Id"] != match.sf_id
                             for r in lookups.by_jomablue_id.get(key_value, [])):
            # The person was matched away from a record that carries their id (an
            # organisation_uid corrected): the key is unique, leave it where it is.
            record.pop(rec_map.upsert_key)
        link = links.get(jid) or {}
        stored = stored_hashes(link) if link.get("sf_id") == match.sf_id else {}
        new = self._source_hashes(jid, match.sobject, match.sf_id)
        found = PersonRecord(match.sobject, match.sf_id, match.rung, match.converted_from,
                             json.dumps({**stored, **new}, sort_keys=True))
        self._mark(jid, rung=match.rung, sobject=match.sobject, id=match.sf_id)
        if (stored and all(stored.get(rt) == h for rt, h in new.items())) or not record:
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
        for sobject in ("Lead", "Contact"):
            await self.writer.send([u for u in updates if u.sobject == sobject])
            await self.writer.send([c for c in creates.values() if c.sobject == sobject and c.error is None],
                                   create_key.get(sobject))
        writes = updates + list(creates.values())
        converted = [w for w in writes if w.action is RowAction.CONVERTED_LEAD]
        if converted:
            await self._follow_conversions(converted, people, found)
        for w in writes:
            if w.error and w.action is not RowAction.CONVERTED_LEAD:
                self.verdicts.settle(w)
                for jid in w.stands_for:
                    found.pop(jid, None)
                continue
            if w.result_id and w.op == "upsert":
                sf_id = to18(w.result_id)
                for jid in w.stands_for:
                    h = json.dumps(self._source_hashes(jid, w.sobject, sf_id), sort_keys=True)
                    found[jid] = PersonRecord(w.sobject, sf_id, "create", record_hash=h)
                    self._mark(jid, rung="create", sobject=w.sobject, id=sf_id, created=bool(w.created))
        return found

    async def _follow_conversions(self, writes: list[Write], people: dict[str, _Who],
                                  found: dict[str, PersonRecord]) -> None:
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
            if cw.error:
                self.verdicts.fail_write(cw)
                for jid in cw.stands_for:
                    found.pop(jid, None)
