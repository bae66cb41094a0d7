"""`connector mapping preview`: the Salesforce records a mapping would write for one message,
offline (the way Census and Hightouch let an admin test one row).

Records are built with the compiled mapping's own ``build`` methods, so the preview is what the
engine would send. What only Salesforce knows (the ids of the Campaign and of the matched
person, the event's category table and timezone when the message is not the event) stands as
a readable placeholder such as ``<Campaign of acme/event/521>``.
"""

from __future__ import annotations

from typing import Any

from connector.payloads import Message

from .model import MappingSet, RecordMapping


def _names(payload: dict[str, Any]) -> list[str]:
    cats = (payload.get("data") or {}).get("categories") or []
    return [str(c.get("name") or c.get("id")) for c in cats if isinstance(c, dict)]


def _entry(title: str, rec: RecordMapping, op: str, fields: dict[str, Any], note: str = "") -> dict[str, Any]:
    return {"record": title, "object": rec.object, "operation": op,
            "key": f"{rec.upsert_key} = {fields.get(rec.upsert_key)!r}" if op == "upsert" else None,
            "fields": fields, "note": note, "mapping": f"{rec.file}:{rec.line}"}


def preview(mappings: MappingSet, msg: Message) -> list[dict[str, Any]]:
    """What each record of the message's mapping would be: one entry per record, in the order
    the engine writes them."""
    rm = mappings.for_type(msg.resource_type)
    if rm is None:
        return []
    p = msg.payload
    data = p.get("data") or {}
    event = f"<Campaign of {msg.event_id}>"
    tz = data.get("timezone") if msg.resource_type == "event" else "<the event's timezone>"
    out: list[dict[str, Any]] = []
    if rm.campaign is not None:
        if msg.resource_type == "event":
            out.append(_entry("the event's Campaign", rm.campaign, "upsert",
                              rm.campaign.build(p, {"event.timezone": tz}, mode="upsert")))
        else:
            out.append(_entry("placeholder Campaign", rm.campaign, "upsert",
                              rm.campaign.build(p, {"event.timezone": tz}, mode="upsert"),
                              "only while the event message has not arrived"))
    if rm.categories is not None:
        out.append({"record": "category table (kept by the connector)", "object": None, "operation": "remember",
                    "key": None, "fields": dict(rm.categories.extract(p)), "note": "", "mapping": rm.file})
    session = None
    if rm.session_campaign is not None:
        refs = {"campaign.id": event, "event.timezone": tz}
        fields = rm.session_campaign.build(p, refs, mode="upsert")
        session = f"<session Campaign {fields.get(rm.session_campaign.upsert_key)}>"
        out.append(_entry("the session's Campaign", rm.session_campaign, "upsert", fields))
    person: dict[str, Any] = {}
    if rm.person is not None:
        jid = rm.person.jomablue_id(p)
        create_as = mappings.matching.create_as
        new = rm.person.lead if create_as == rm.person.lead.object else rm.person.contact
        out.append(_entry(f"new {new.object} (when no record matches)", new, "upsert",
                          new.build(p, {}, mode="upsert")))
        for rec in (rm.person.lead, rm.person.contact):
            out.append(_entry(f"matched {rec.object} (when one matches)", rec, "update",
                              rec.build(p, {}, mode="update", current={}),
                              "if_empty fields only when Salesforce holds no value"))
        from connector.salesforce.ids import object_for
        from connector.sync.identity import sf_person_id

        known = sf_person_id(rm.person.organisation_uid(p))     # organisation_uid names the record
        sobject = object_for(known) if known else create_as
        who = known or f"<{create_as} of {jid}>"
        person = {"person.id": who, "person.lead_id": who if sobject == "Lead" else None,
                  "person.contact_id": who if sobject == "Contact" else None}
    refs = {"campaign.id": event, "session_campaign.id": session or event, "event.timezone": tz, **person}
    if rm.membership is not None and rm.membership.applies(p):
        status = rm.membership.status.status_for(p)
        out.append(_entry("the campaign member", rm.membership, "upsert",
                          rm.membership.build(p, {**refs, "status": status, "categories.names": _names(p)},
                                              mode="upsert"),
                          "a status is never moved backwards; category names come from the event's table"))
    if rm.capture is not None and rm.capture.applies(p):
        out.append(_entry("the lead capture", rm.capture, "upsert", rm.capture.build(p, refs, mode="upsert")))
    return out


def as_text(entries: list[dict[str, Any]]) -> str:
    lines = []
    for e in entries:
        head = f"{e['record']}: {e['object'] or ''} {e['operation']}".rstrip()
        if e["key"]:
            head += f" on {e['key']}"
        lines.append(head + f"   ({e['mapping']})")
        if e["note"]:
            lines.append(f"  # {e['note']}")
        width = max((len(k) for k in e["fields"]), default=0)
        for k, v in e["fields"].items():
            lines.append(f"  {k:<{width}}  {v!r}")
        if not e["fields"]:
            lines.append("  (no fields)")
        lines.append("")
    return "\n".join(lines).rstrip()
