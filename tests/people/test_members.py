"""Campaign membership: one member per person per event, statuses never backwards, cancellation
wins, members made outside the connector adopted. Real engine against the emulator."""

from __future__ import annotations

import pytest

from .helpers import EVENT_ID, SAMPLES, at, members, person

JID = "acme/event_person/9001"
R, A, C = (dict(), dict(checked_in=True), dict(cancelled=True))   # Registered, Attended, Cancelled

# (name, [(minute, flags), ...] sent in that order, expected final Status)
SEQUENCES = [
    ("registered", [(1, R)], "Registered"),
    ("checked in", [(1, A)], "Attended"),
    ("registered then attended", [(1, R), (2, A)], "Attended"),
    ("late older registration after check-in (stale)", [(2, A), (1, R)], "Attended"),
    ("newer not-checked-in after check-in", [(1, A), (2, R)], "Attended"),
    ("attended then cancelled", [(1, A), (2, C)], "Cancelled"),
    ("cancelled then newer attended", [(1, C), (2, A)], "Cancelled"),
    ("cancelled then newer registered", [(1, C), (2, R)], "Cancelled"),
    ("cancelled and checked in at once", [(1, dict(cancelled=True, checked_in=True))], "Cancelled"),
    ("older cancellation after check-in (stale)", [(2, A), (1, C)], "Attended"),
]


# Each sequence one message per run, and in one batch, except where the messages arrive newest first:
# a batch orders by generated_at, so that batch is the forward case already listed.
CASES = [pytest.param(name, steps, expected, one_batch, id=f"{name}-{'one batch' if one_batch else 'run per message'}")
         for one_batch in (False, True) for name, steps, expected in SEQUENCES
         if not (one_batch and len(steps) > 1 and steps[0][0] > steps[-1][0])]


@pytest.mark.parametrize("name, steps, expected, one_batch", CASES)
def test_status_never_moves_backwards(name, steps, expected, one_batch, emu, connector):
    c = connector()
    msgs = [person(JID, at=at(m), **flags) for m, flags in steps]
    outs = c.run(*msgs) if one_batch else [o for m in msgs for o in c.run(m)]
    assert all(o.status in ("synced", "skipped") for o in outs), [o.reason for o in outs]
    [cm] = members(emu)
    assert cm["Status"] == expected
    assert cm["Jomablue_Id__c"] == JID


def test_statuses_exist_on_the_placeholder_campaign(emu, connector):
    c = connector()
    [out] = c.run(person(JID, checked_in=True))
    assert out.status == "synced", out.reason
    [campaign] = emu.org.records("Campaign")
    assert campaign["Jomablue_Id__c"] == EVENT_ID
    assert campaign["Name"] == SAMPLES["person"]["context"]["event_name"]   # from context: no event message yet
    labels = {s["Label"]: s for s in emu.org.records("CampaignMemberStatus") if s["CampaignId"] == campaign["Id"]}
    assert {"Registered", "Attended", "Cancelled"} <= set(labels)
    assert labels["Attended"]["HasResponded"] and not labels["Registered"]["HasResponded"]
    # the event message arrives later: the same Campaign, the member stays
    [ev] = c.run(SAMPLES["event"])
    assert ev.status == "synced", ev.reason
    assert len(emu.org.records("Campaign")) == 1 and len(members(emu)) == 1


def test_member_made_outside_the_connector_is_adopted(emu, connector):
    campaign = emu.org.insert("Campaign", {"Name": "Sonic (made by hand)", "Jomablue_Id__c": EVENT_ID})
    contact = emu.org.insert("Contact", {"LastName": "Doe", "Email": "jane.doe@example.com"})
    existing = emu.org.insert("CampaignMember", {"CampaignId": campaign, "ContactId": contact, "Status": "Sent"})
    c = connector()
    [out] = c.run(person(JID, at=at(1), checked_in=True))
    assert out.status == "synced", out.reason
    assert out.detail["adopted"] == existing
    [cm] = members(emu)
    assert cm["Id"] == existing and cm["Jomablue_Id__c"] == JID and cm["Status"] == "Attended"
    # from now on it is ours: later messages update it by id, no duplicate error dance
    emu.reset_counters()
    [out] = c.run(person(JID, at=at(30), checked_in=True, cancelled=True))
    assert out.status == "synced", out.reason
    [cm] = members(emu)
    assert cm["Id"] == existing and cm["Status"] == "Cancelled"
    assert emu.calls_by_kind["collections_upsert"] == 0


def test_membership_on_a_converted_lead_moves_to_the_contact(emu, connector):
    lead = emu.org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": "other@example.com"})
    contact = emu.org.convert_lead(lead)
    c = connector()
    [out] = c.run(person(JID, uid=lead[:15]))
    assert out.status == "synced", out.reason
    [cm] = members(emu)
    assert cm["ContactId"] == contact and cm["LeadId"] is None
