"""The org's own life, the people side (issue 16), end to end: the CLI in process, the in-memory
queue, the HTTPS emulator with the rule on. A private record's update is noted and its membership
still written; a Lead an admin merged is followed to the survivor (chains, converted survivors),
never duplicated, its status never moved backwards; a link to a truly deleted record heals; a
Campaign flow's statuses are read before the connector numbers its own.

Checked against b5d2cc5 (main before the stages learnt these): the private record, merge and
status-flow tests fail there (the message quarantined, a second Lead made, the members refused for
want of a status); the deleted-link tests already pass there and guard the heal from now on."""

from __future__ import annotations

from typing import Any

import pytest
from jbtest import log_lines, open_config_state, sample, write_config
from test_orglife_writes import ids, person, quarantined, run, synced_event

pytestmark = pytest.mark.e2e

JID = "acme/event_person/1"
LATER = "2025-09-11T01:00:00.000Z"
LATEST = "2025-09-11T02:00:00.000Z"


def messages(stderr: str) -> dict[str, dict[str, Any]]:
    """resource_id → the run's log line for that message."""
    return {line["resource_id"]: line for line in log_lines(stderr) if line.get("event") == "message"}


def live(emu, sobject: str) -> list[dict[str, Any]]:
    return emu.org.records(sobject)


def member_of(emu, who: str) -> dict[str, Any]:
    [cm] = [m for m in live(emu, "CampaignMember") if who[:15] in ((m.get("LeadId") or "")[:15],
                                                                     (m.get("ContactId") or "")[:15])]
    return cm


def stored_link(cfg, jid: str = JID) -> str:
    state = open_config_state(cfg)
    try:
        return state.people([jid])[jid]["sf_id"]
    finally:
        state.close()


def redeliver(memq) -> None:
    """Let a message the run asked to see again (a retry with backoff) become visible."""
    memq.clock.advance(24 * 3600)


# -- a private record --------------------------------------------------------------------------


def test_a_private_record_is_noted_its_membership_still_written_and_never_retried(tmp_path, emu, memq):
    cfg = synced_event(tmp_path, emu, memq)
    memq.publish_many([person(n, data__checked_in=False) for n in (1, 2, 3)])
    assert run(cfg).returncode == 0
    private = next(r for r in live(emu, "Lead") if r["Jomablue_Id__c"] == JID)
    emu.org.make_private(private["Id"])                       # now owned by someone else, private sharing
    memq.publish_many([person(n, data__job_title="CTO", data__checked_in=True, generated_at=LATER)
                       for n in (1, 2, 3)])
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr       # one private record never stops the run
    lines = messages(res.stderr)
    assert {k: v["outcome"] for k, v in lines.items()} == dict.fromkeys(ids(1, 2, 3), "synced")
    note = lines[JID]["not_updated"]
    assert note["id"][:15] == private["Id"][:15] and note["owner_field"] == "OwnerId"
    assert note["owner"] == private["OwnerId"] and "INSUFFICIENT_ACCESS_OR_READONLY" in note["reason"]
    assert all("not_updated" not in lines[j] for j in ids(2, 3))
    titles = {r["Jomablue_Id__c"]: r["Title"] for r in live(emu, "Lead")}
    assert titles == {JID: "Marketing Manager", "acme/event_person/2": "CTO", "acme/event_person/3": "CTO"}
    assert {m["Jomablue_Id__c"]: m["Status"] for m in live(emu, "CampaignMember")} == dict.fromkeys(
        ids(1, 2, 3), "Attended")                              # the private person's membership moved on too
    summary = next(line for line in log_lines(res.stderr) if line.get("event") == "run_summary")
    assert any("without their person's field update" in n for n in summary["notes"]), summary
    assert memq.depth() == 0 and quarantined(cfg) == []        # taken off the queue: not retried forever

    redeliver(memq)
    res = run(cfg)                                             # nothing left to try again
    assert res.returncode == 0 and messages(res.stderr) == {}


# -- a link to a record that is truly gone ----------------------------------------------------------


@pytest.mark.parametrize("where", ["recycle bin", "purged"])
def test_a_stored_link_to_a_deleted_record_is_confirmed_gone_and_healed(tmp_path, emu, memq, where):
    """In the recycle bin, the update answers ENTITY_IS_DELETED; purged (the recycle bin emptied),
    INVALID_CROSS_REFERENCE_KEY, which is "gone" only once a read by Id finds nothing. Either way
    the person gets one new Lead and one membership, nothing quarantined (it fails if the link is
    kept, if the message is quarantined, or if a second Lead or membership is made)."""
    cfg = synced_event(tmp_path, emu, memq)
    memq.publish(person(1))
    assert run(cfg).returncode == 0
    [old] = live(emu, "Lead")
    emu.org.delete(old["Id"])                                  # an admin deletes the Lead (and its membership)
    if where == "purged":
        with emu.org.lock:                                     # ... and empties the recycle bin
            emu.org._store("Lead", old["Id"], None)
    memq.publish(person(1, data__job_title="CTO", generated_at=LATER))
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert messages(res.stderr)[JID]["outcome"] != "quarantined" and quarantined(cfg) == []
    redeliver(memq)
    res = run(cfg)                                             # the ladder runs afresh: created again
    assert res.returncode == 0, res.stdout + res.stderr
    [lead] = live(emu, "Lead")
    assert lead["Id"] != old["Id"] and lead["Title"] == "CTO"
    assert member_of(emu, lead["Id"])["Jomablue_Id__c"] == JID
    assert stored_link(cfg)[:15] == lead["Id"][:15] and memq.depth() == 0


# -- merges ----------------------------------------------------------------------------------


def _synced_person(tmp_path, emu, memq, **changes: Any):
    cfg = synced_event(tmp_path, emu, memq)
    memq.publish(person(1, **changes))
    assert run(cfg).returncode == 0
    [loser] = live(emu, "Lead")
    return cfg, loser["Id"]


def _new_lead(emu, name: str) -> str:
    return emu.org.insert("Lead", {"LastName": name, "Company": "Acme", "Email": f"{name.lower()}@elsewhere.example"})


def _after_merge(cfg, emu, memq, survivor: str, **changes: Any) -> dict[str, Any]:
    """A new message for the merged person: written to `survivor` in this run, nothing duplicated."""
    memq.publish(person(1, data__job_title="CTO", generated_at=LATER, **changes))
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert messages(res.stderr)[JID]["outcome"] == "synced"
    assert memq.depth() == 0 and quarantined(cfg) == []
    assert stored_link(cfg)[:15] == survivor[:15]              # the stored link now names the survivor
    cm = member_of(emu, survivor)                              # exactly one membership, on the survivor
    assert len(live(emu, "CampaignMember")) == 1
    return cm


def test_a_merged_lead_is_followed_to_the_survivor_no_new_lead_no_second_membership(tmp_path, emu, memq):
    cfg, loser = _synced_person(tmp_path, emu, memq)
    survivor = _new_lead(emu, "Survivor")
    emu.org.merge(survivor, loser)                             # the admin merges the Lead away
    cm = _after_merge(cfg, emu, memq, survivor)
    [lead] = live(emu, "Lead")                                 # no Lead created again from the message
    assert lead["Id"] == survivor and lead["Title"] == "CTO"
    assert cm["Jomablue_Id__c"] == JID


def test_a_survivor_with_a_later_status_keeps_it(tmp_path, emu, memq):
    cfg, loser = _synced_person(tmp_path, emu, memq, data__checked_in=False)   # Registered
    survivor = _new_lead(emu, "Survivor")
    campaign = live(emu, "Campaign")[0]["Id"]
    emu.org.insert("CampaignMember", {"CampaignId": campaign, "LeadId": survivor, "Status": "Attended"})
    emu.org.merge(survivor, loser)                             # the survivor's own membership wins
    # The merge deleted the loser's membership (the one the connector updates): the survivor's is adopted.
    cm = _after_merge(cfg, emu, memq, survivor, data__checked_in=False)
    assert cm["Status"] == "Attended"                          # never moved back to Registered


def test_a_chain_of_merges_is_followed_to_its_end(tmp_path, emu, memq):
    cfg, loser = _synced_person(tmp_path, emu, memq)
    middle, last = _new_lead(emu, "Middle"), _new_lead(emu, "Last")
    emu.org.merge(middle, loser)
    emu.org.merge(last, middle)                                # the survivor merged again
    _after_merge(cfg, emu, memq, last)
    [lead] = live(emu, "Lead")
    assert lead["Id"] == last and lead["Title"] == "CTO"


def test_a_survivor_that_was_converted_is_followed_to_its_contact(tmp_path, emu, memq):
    cfg, loser = _synced_person(tmp_path, emu, memq)
    survivor = _new_lead(emu, "Survivor")
    emu.org.merge(survivor, loser)
    contact = emu.org.convert_lead(survivor)                   # and then converted
    _after_merge(cfg, emu, memq, contact)
    assert [r["Id"] for r in live(emu, "Lead") if not r["IsConverted"]] == []   # no new Lead
    [person_contact] = live(emu, "Contact")
    assert person_contact["Id"] == contact and person_contact["Title"] == "CTO"


# -- a Campaign flow that adds statuses -----------------------------------------------------------


def test_statuses_a_campaign_flow_adds_on_insert_are_read_before_numbering(tmp_path, emu, memq):
    """The flow gives every new Campaign "Invited" at SortOrder 3, where the connector, assuming
    only Sent (1) and Responded (2), would number its first own status: a clash that failed the
    status and every member needing it."""
    emu.org.add_campaign_status_on_insert("Invited", 3)
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))                              # the Campaign is created in the same batch
    memq.publish_many([person(1, data__checked_in=False), person(2), person(3, data__cancelled=True)])
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert {line["outcome"] for line in messages(res.stderr).values()} == {"synced"}
    assert {m["Jomablue_Id__c"]: m["Status"] for m in live(emu, "CampaignMember")} == {
        JID: "Registered", "acme/event_person/2": "Attended", "acme/event_person/3": "Cancelled"}
    [campaign] = live(emu, "Campaign")
    statuses = {s["Label"]: s["SortOrder"] for s in live(emu, "CampaignMemberStatus")
                if s["CampaignId"] == campaign["Id"]}
    assert statuses["Invited"] == 3                             # the flow's own status, left as it made it
    assert {"Sent", "Responded", "Registered", "Attended", "Cancelled"} <= set(statuses)
    assert len(set(statuses.values())) == len(statuses)        # no SortOrder clash
