"""Stage: people. The identity ladder for a whole batch, then Lead/Contact writes.

One SOQL query per object (split only to fit the URL) finds every candidate of the batch;
writes go in collections of 200. A Lead converted since we last looked is detected by its
write failing with CANNOT_UPDATE_CONVERTED_LEAD and re-routed to its Contact in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simple_salesforce import format_soql

from connector.errors import AmbiguousMatch
from connector.mapping import MappingSet, PersonMapping
from connector.payloads import stable_hash
from connector.salesforce.ids import to18
from connector.state.base import StateStore
from connector.sync.identity import (
    Lookups,
    Match,
    PersonRef,
    create_group_key,
    lookup_queries,
    resolve,
    sf_person_id,
)
from connector.sync.model import Work, Write
from connector.sync.writer import Writer


@dataclass
class PersonResult:
    sobject: str
    sf_id: str
    rung: str
    converted_from: str | None = None
    record_hash: str | None = None
    organisation_uid: str | None = None   # what the person's messages said, for the stored link
    email: str | None = None

    @property
    def refs(self) -> dict[str, Any]:
        return {
            "person.id": self.sf_id,
            "person.lead_id": self.sf_id if self.sobject == "Lead" else None,
            "person.contact_id": self.sf_id if self.sobject == "Contact" else None,
        }


class PeopleStage:
    def __init__(self, mappings: MappingSet, writer: Writer, state: StateStore) -> None:
        self.mappings = mappings
        self.writer = writer
        self.state = state
        self.m = mappings.matching
        self.sources: dict[str, list[tuple[Work, PersonMapping]]] = {}   # every message per person, oldest first

    def _select(self, sobject: str) -> set[str]:
        fields = {"Id", "Email", "Jomablue_Id__c"}
        if sobject == "Lead":
            fields |= {"IsConverted", "ConvertedContactId"}
        if self.m.organisation_uid_field:
            fields.add(self.m.organisation_uid_field)
        for rt in ("person", "lead", "session_participation"):
            rm = self.mappings.for_type(rt)
            if rm and rm.person:
                rec = rm.person.lead if sobject == "Lead" else rm.person.contact
                if rec.object == sobject:
                    fields |= set(rec.fields_with_policy("if_empty"))
        return fields

    async def run(self, works: list[Work]) -> dict[str, PersonResult]:
        """Resolve and write every person of the batch; returns results by Jomablue person id."""
        people: dict[str, tuple[PersonRef, Work, PersonMapping]] = {}
        for w in sorted(works, key=lambda w: w.msg.generated_at):
            rm = self.mappings.for_type(w.msg.resource_type)
            if rm is None or rm.person is None:
                continue
            jid = rm.person.jomablue_id(w.msg.payload)
            if not jid:
                w.fail("no person id in the message", "identifiers.id")
                continue
            ref = PersonRef(jid, rm.person.organisation_uid(w.msg.payload), rm.person.email(w.msg.payload))
            people[jid] = (ref, w, rm.person)   # latest message says who the person is
            self.sources.setdefault(jid, []).append((w, rm.person))
        if not people:
            return {}
        links = self.state.people(people.keys())
        lookups = await self._lookup(people, links)
        matches: dict[str, Match] = {}
        for jid, (ref, _w, _pm) in people.items():
            try:
                matches[jid] = resolve(ref, lookups, links.get(jid), org_field=self.m.organisation_uid_field,
                                       use_email=self.m.email, create_as=self.m.create_as)
            except AmbiguousMatch as exc:
                for x in self._works(jid):      # every message of the batch about this person
                    x.fail(exc.reason, "identifiers.email")
                    x.detail["candidates"] = exc.candidates
        results = await self._write(people, matches, links, lookups)
        for jid, res in results.items():
            res.organisation_uid, res.email = people[jid][0].organisation_uid, people[jid][0].email
        return results

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

    async def _lookup(self, people: dict[str, tuple[PersonRef, Work, PersonMapping]],
                      links: dict[str, dict[str, Any]]) -> Lookups:
        ids: dict[str, set[str]] = {"Lead": set(), "Contact": set()}
        jids, emails, orgs = set(), set(), set()
        for jid, (ref, _w, _pm) in people.items():
            sid = sf_person_id(ref.organisation_uid)
            if sid:
                ids["Lead" if sid.startswith("00Q") else "Contact"].add(sid)
            elif ref.organisation_uid and self.m.organisation_uid_field:
                orgs.add(ref.organisation_uid)
            link = links.get(jid)
            if link and (link.get("organisation_uid") or None) == (ref.organisation_uid or None):
                ids[link["sobject"]].add(link["sf_id"])
                continue  # a usable link: no need to search by id or email
            jids.add(jid)
            if self.m.email and ref.email:
                emails.add(ref.email.strip())
        lookups = Lookups()
        planned = [(sobject, soql) for sobject in ("Lead", "Contact")
                   for soql in lookup_queries(sobject, self._select(sobject), ids[sobject], jids, emails,
                                              self.m.organisation_uid_field, orgs)]
        # Every query of the batch in as few calls as Salesforce allows (five per composite call).
        results = await self.writer.gateway.query_many([soql for _, soql in planned])
        for (sobject, _), records in zip(planned, results, strict=True):
            for rec in records:
                lookups.add(sobject, rec, self.m.organisation_uid_field)
        return lookups

    async def _write(self, people: dict[str, tuple[PersonRef, Work, PersonMapping]],
                     matches: dict[str, Match], links: dict[str, dict[str, Any]],
                     lookups: Lookups) -> dict[str, PersonResult]:
        results: dict[str, PersonResult] = {}
        updates: list[Write] = []
        update_by_id: dict[str, Write] = {}
        creates: dict[str, Write] = {}
        members_of: dict[int, list[str]] = {}   # id(write) → person ids it stands for
        for jid, match in matches.items():
            ref, w, pm = people[jid]
            rec_map = pm.lead if match.sobject == "Lead" else pm.contact
            if match.sf_id:
                record = self._record(jid, match.sobject, "update", match.record)
                key_value = record.get(rec_map.upsert_key)
                if key_value and any(
                        r["_sobject"] == match.sobject and r["Id"] != match.sf_id
                        for r in lookups.by_jomablue_id.get(key_value, [])):
                    # The person was matched away from a record that carries their id (an
                    # organisation_uid corrected): the key is unique, leave it where it is.
                    record.pop(rec_map.upsert_key)
                h = stable_hash({"o": match.sobject, "id": match.sf_id, **record})
                link = links.get(jid) or {}
                results[jid] = PersonResult(match.sobject, match.sf_id, match.rung, match.converted_from, h)
                for x in self._works(jid):
                    x.detail["match"] = {"rung": match.rung, "sobject": match.sobject, "id": match.sf_id}
                if link.get("record_hash") == h or not record:
                    continue   # Salesforce already holds exactly this: no call
                if match.sf_id in update_by_id:   # two registrations of one record: one write
                    wr = update_by_id[match.sf_id]
                    wr.record.update(record)
                    wr.works.extend(self._works(jid))
                    members_of[id(wr)].append(jid)
                    continue
                wr = Write(match.sobject, "update", {"Id": match.sf_id, **record}, self._works(jid), key=jid,
                           label=f"{match.sobject} {match.sf_id} for {jid}")
                update_by_id[match.sf_id] = wr
                updates.append(wr)
                members_of[id(wr)] = [jid]
            else:
                record = self._record(jid, rec_map.object, "upsert", None)
                gk = create_group_key(ref, self.m.email)
                if gk in creates:    # the same human twice in one batch: one record
                    creates[gk].works.extend(self._works(jid))
                    members_of[id(creates[gk])].append(jid)
                    continue
                wr = Write(rec_map.object, "upsert", record, self._works(jid), key=jid,
                           label=f"new {rec_map.object} for {jid}")
                creates[gk] = wr
                members_of[id(wr)] = [jid]
        ext_of = {}
        for wr in creates.values():
            pm = people[wr.key][2]
            rec_map = pm.lead if wr.sobject == pm.lead.object else pm.contact
            ext_of[wr.sobject] = rec_map.upsert_key
            if not wr.record.get(rec_map.upsert_key):
                wr.fail_all("MAPPING", f"the upsert key {rec_map.upsert_key} has no value", (rec_map.upsert_key,))
        for sobject in ("Lead", "Contact"):
            group = [u for u in updates if u.sobject == sobject]
            await self.writer.send(group)
            cgroup = [c for c in creates.values() if c.sobject == sobject and c.error is None]
            await self.writer.send(cgroup, ext_of.get(sobject))
        converted = [u for u in updates + list(creates.values())
                     if u.error and u.error[0] == "CANNOT_UPDATE_CONVERTED_LEAD"]
        if converted:
            await self._follow_conversions(converted, people, results, members_of)
        for wr in updates + list(creates.values()):
            if wr.error and wr.error[0] != "CANNOT_UPDATE_CONVERTED_LEAD":
                if not any(wk.retry_reason for wk in wr.works):
                    wr.fail_all(*wr.error)
                for jid in members_of.get(id(wr), []):
                    results.pop(jid, None)
                continue
            if wr.result_id and wr.op == "upsert":
                for jid in members_of.get(id(wr), []):
                    results[jid] = PersonResult(wr.sobject, to18(wr.result_id), "create",
                                                record_hash=stable_hash({"o": wr.sobject, "id": to18(wr.result_id), **wr.record}))
                    for x in self._works(jid):
                        x.detail["match"] = {"rung": "create", "sobject": wr.sobject,
                                             "id": to18(wr.result_id), "created": bool(wr.created)}
        return results

    async def _follow_conversions(self, writes: list[Write], people: dict[str, Any],
                                  results: dict[str, PersonResult], members_of: dict[int, list[str]]) -> None:
        """Leads converted since we last looked: write to their Contacts instead."""
        lead_key = next(iter(people.values()))[2].lead.upsert_key
        ids = [w.record["Id"] for w in writes if "Id" in w.record]
        keys = [w.record[lead_key] for w in writes if "Id" not in w.record and w.record.get(lead_key)]
        clauses = [format_soql(f"{name} IN {{}}", vals) for name, vals in (("Id", ids), (lead_key, keys)) if vals]
        found = await self.writer.gateway.query(
            f"SELECT Id, {lead_key}, ConvertedContactId FROM Lead WHERE " + " OR ".join(clauses))
        contact_of: dict[str, str] = {}
        for rec in found:
            if rec.get("ConvertedContactId"):
                contact_of[to18(rec["Id"])] = to18(rec["ConvertedContactId"])
                if rec.get(lead_key):
                    contact_of[rec[lead_key]] = to18(rec["ConvertedContactId"])
        by_contact: dict[str, tuple[Write, list[str]]] = {}   # one write per Contact, whoever it stands for
        for w in writes:
            lead_id = w.record.get("Id")
            contact_id = contact_of.get(lead_id or w.record.get(lead_key, ""))
            if not contact_id:
                w.error = ("CANNOT_UPDATE_CONVERTED_LEAD", "converted Lead without a Contact", ())
                continue
            w.error = None
            for jid in members_of.get(id(w), []):
                results[jid] = PersonResult("Contact", contact_id, "converted", lead_id)
                for x in self._works(jid):
                    x.detail["match"] = {"rung": "converted", "sobject": "Contact", "id": contact_id,
                                         "lead": lead_id}
                record = self._record(jid, "Contact", "update", None)
                if contact_id in by_contact:
                    cw, jids = by_contact[contact_id]
                    cw.record.update(record)
                    cw.works.extend(x for x in self._works(jid) if x not in cw.works)
                    jids.append(jid)
                else:
                    cw = Write("Contact", "update", {"Id": contact_id, **record}, self._works(jid), key=jid,
                               label=f"Contact {contact_id} (converted from Lead) for {jid}")
                    by_contact[contact_id] = (cw, [jid])
        await self.writer.send([cw for cw, _ in by_contact.values()])
        for cw, jids in by_contact.values():
            if cw.error:
                cw.fail_all(*cw.error)
                for jid in jids:
                    results.pop(jid, None)
