"""A whole request Salesforce refuses because of one message's data (a poison batch): the batch is
split until that message is quarantined with the error, and the others land."""

from __future__ import annotations

from .helpers import at, person


def test_one_message_that_poisons_whole_requests_is_quarantined_and_the_rest_land(emu, connector):
    c = connector()
    msgs = [person(f"acme/event_person/{n}", at=at(n), email=f"p{n}@example.com") for n in range(1, 9)]
    msgs[5]["data"]["job_title"] = "POISON-TITLE"
    emu.faults.refuse_requests_containing("POISON-TITLE")
    outs = c.run(*msgs)
    by_id = {o.resource_id: o for o in outs}
    bad = by_id["acme/event_person/6"]
    assert bad.status == "quarantined"
    assert "JSON_PARSER_ERROR" in bad.reason and "other messages of its batch went through" in bad.reason
    assert sorted(o.status for o in outs) == ["quarantined"] + ["synced"] * 7
    leads = {r["Jomablue_Id__c"] for r in emu.org.records("Lead")}
    assert leads == {f"acme/event_person/{n}" for n in range(1, 9)} - {"acme/event_person/6"}
    # quarantined with its body, so it can be replayed after the fix
    [row] = c.wired.state.quarantined()
    assert "POISON-TITLE" in row["body"]


def test_a_refusal_that_hits_every_message_is_the_org_not_the_data_and_stops_the_batch(emu, connector):
    import pytest

    from connector.errors import FatalError

    c = connector()
    msgs = [person(f"acme/event_person/{n}", at=at(n), email=f"p{n}@example.com") for n in range(1, 7)]
    emu.faults.refuse_requests_containing("acme/event_person")   # every request of every message
    with pytest.raises(FatalError):
        c.run(*msgs)
    assert c.wired.state.quarantined() == []     # nothing quarantined for the org's refusal
