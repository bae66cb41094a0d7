"""The identity ladder: which Lead or Contact a Jomablue person is (issue #3).

Pure functions over what one batch looked up: no I/O here. The engine gathers every person of a
batch, runs :func:`lookup_queries` (one SOQL per object), then :func:`resolve` per person:

1. organisation_uid is a Lead/Contact id → that record (a converted Lead → its Contact);
   deleted or missing → next rung
2. organisation_uid is not an id and `matching.organisation_uid_field` is set → that field
3. the registration id was linked before (state store), or a record carries it in Jomablue_Id__c
4. email (when enabled): one Contact, else one unconverted Lead; several → ambiguous, never a guess
5. nothing matched → create (upsert on Jomablue_Id__c, so a retried create cannot duplicate)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.errors import AmbiguousMatch
from connector.salesforce.ids import looks_like_id, object_for, to18
from connector.salesforce.soql import pack_or


@dataclass(frozen=True)
class PersonRef:
    """Who a message says the person is."""

    jomablue_id: str
    organisation_uid: str | None
    email: str | None


@dataclass(frozen=True)
class Match:
    sobject: str            # Lead or Contact
    sf_id: str | None       # None when the person is to be created
    rung: str               # organisation_uid | organisation_uid_field | link | jomablue_id | email | create
    record: Mapping[str, Any] = field(default_factory=dict)  # what Salesforce holds (for if_empty)
    converted_from: str | None = None   # the Lead id when the match followed a conversion
    merged_from: str | None = None      # the stored record's id when it was merged into this one


@dataclass
class Lookups:
    """Records one batch read, indexed for the ladder."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_jomablue_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_email: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_org_field: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, sobject: str, rec: dict[str, Any], org_field: str | None) -> None:
        rec = dict(rec)
        rec["_sobject"] = sobject
        rec["Id"] = to18(rec["Id"])
        self.by_id[rec["Id"]] = rec
        if rec.get("Jomablue_Id__c"):
            self.by_jomablue_id.setdefault(rec["Jomablue_Id__c"], []).append(rec)
        if rec.get("Email"):
            self.by_email.setdefault(rec["Email"].strip().lower(), []).append(rec)
        if org_field and rec.get(org_field):
            self.by_org_field.setdefault(str(rec[org_field]), []).append(rec)


def sf_person_id(organisation_uid: str | None) -> str | None:
    """The 18-char id when organisation_uid is a Lead or Contact id, else None."""
    if organisation_uid and looks_like_id(organisation_uid) and object_for(organisation_uid) in ("Lead", "Contact"):
        return to18(organisation_uid)
    return None


def lookup_queries(
    sobject: str,
    select: Iterable[str],
    ids: Iterable[str],
    jomablue_ids: Iterable[str],
    emails: Iterable[str],
    org_field: str | None = None,
    org_values: Iterable[str] = (),
) -> list[str]:
    """SOQL for one object: every rung's criteria OR-ed together, packed into as few statements
    as fit the URL and SOQL limits (connector/salesforce/soql.py)."""
    fields = ", ".join(sorted(set(select)))
    return pack_or(f"SELECT {fields} FROM {sobject} WHERE ",
                   [("Id", ids), ("Jomablue_Id__c", jomablue_ids), ("Email", emails), (org_field or "", org_values)])


def _follow(rec: Mapping[str, Any], lookups: Lookups, rung: str) -> Match | None:
    """A record as a match; a converted Lead is followed to its Contact (None if unknown)."""
    if rec["_sobject"] == "Lead" and rec.get("IsConverted"):
        contact_id = rec.get("ConvertedContactId")
        if not contact_id:
            return None
        contact = lookups.by_id.get(to18(contact_id), {"Id": to18(contact_id), "_sobject": "Contact"})
        return Match("Contact", to18(contact_id), rung, contact, converted_from=rec["Id"])
    return Match(rec["_sobject"], rec["Id"], rung, rec)


def _single(candidates: list[dict[str, Any]], what: str) -> dict[str, Any] | None:
    if len(candidates) > 1:
        ids = sorted(c["Id"] for c in candidates)
        raise AmbiguousMatch(
            f"{len(candidates)} {candidates[0]['_sobject']}s match {what}: {', '.join(ids)}; "
            "merge them in Salesforce or set organisation_uid in Jomablue, then replay", ids)
    return candidates[0] if candidates else None


def resolve(
    person: PersonRef,
    lookups: Lookups,
    link: Mapping[str, Any] | None,
    *,
    org_field: str | None,
    use_email: bool,
    create_as: str,
) -> Match:
    """Walk the ladder for one person. Raises AmbiguousMatch instead of guessing."""
    uid = person.organisation_uid
    # 1. organisation_uid is a Lead/Contact id
    sid = sf_person_id(uid)
    if sid and sid in lookups.by_id:
        m = _follow(lookups.by_id[sid], lookups, "organisation_uid")
        if m:
            return m
    # 2. organisation_uid is some other system's id, matched on a configured field
    if uid and not looks_like_id(uid) and org_field:
        rec = _single(lookups.by_org_field.get(uid, []), f"{org_field} = {uid!r}")
        if rec:
            m = _follow(rec, lookups, "organisation_uid_field")
            if m:
                return m
    # 3. a link stored earlier (only while organisation_uid is unchanged), else Jomablue_Id__c
    if link and (link.get("organisation_uid") or None) == (uid or None) and link.get("sf_id") in lookups.by_id:
        m = _follow(lookups.by_id[link["sf_id"]], lookups, "link")
        if m:
            return m
    carriers = lookups.by_jomablue_id.get(person.jomablue_id, [])
    contacts = [c for c in carriers if c["_sobject"] == "Contact"]
    rec = contacts[0] if contacts else (carriers[0] if carriers else None)
    if rec:
        m = _follow(rec, lookups, "jomablue_id")
        if m:
            return m
    # 4. email: a Contact first, then an unconverted Lead
    if use_email and person.email:
        key = person.email.strip().lower()
        found = lookups.by_email.get(key, [])
        contact = _single([r for r in found if r["_sobject"] == "Contact"], f"email {person.email!r}")
        if contact:
            return Match("Contact", contact["Id"], "email", contact)
        lead = _single([r for r in found if r["_sobject"] == "Lead" and not r.get("IsConverted")],
                       f"email {person.email!r}")
        if lead:
            return Match("Lead", lead["Id"], "email", lead)
    # 5. create
    return Match(create_as, None, "create")


def create_group_key(person: PersonRef, use_email: bool) -> str:
    """People of one batch that would be created and are the same human share one record."""
    if person.organisation_uid and not looks_like_id(person.organisation_uid):
        return "uid:" + person.organisation_uid
    if use_email and person.email:
        return "email:" + person.email.strip().lower()
    return "jid:" + person.jomablue_id
