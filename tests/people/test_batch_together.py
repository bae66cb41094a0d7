"""Every message of a batch about one person shares that person's fate."""

from __future__ import annotations

from jbtest import sample

from .helpers import at, person


def _lead_capture(jid: str, email: str, when: str) -> dict:
    msg = sample("lead")
    msg["generated_at"] = when
    msg["context"].update({"person_id": jid, "person_email": email, "person_organisation_uid": ""})
    msg["identifiers"]["id"] = "acme/lead/777"
    return msg


def test_an_ambiguous_person_quarantines_every_message_about_them(emu, connector):
    for last in ("One", "Two"):
        emu.org.insert("Contact", {"LastName": last, "Email": "twin@example.com"})
    c = connector()
    outs = c.run(person("acme/event_person/5", at=at(0), email="twin@example.com"),
                 _lead_capture("acme/event_person/5", "twin@example.com", at(1)))
    assert [o.status for o in outs] == ["quarantined", "quarantined"]
    assert all("2 Contacts match" in o.reason for o in outs)
    assert emu.org.records("CampaignMember") == [] and emu.org.records("Jomablue_Lead_Capture__c") == []
