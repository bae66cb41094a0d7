"""A dry run plans with the real engine and says per message what would happen; it writes
nothing to Salesforce or the state store, and only read calls reach Salesforce (issue #10)."""

from __future__ import annotations

from .helpers import at, person

JID = "acme/event_person/51486"


def test_a_new_person_would_be_created_and_nothing_is_written(emu, connector):
    plan = connector("state.db", dry_run=True)
    [out] = plan.run(person(JID, at=at(1), email="new.person@example.com"))
    assert out.label == "would_synced"
    assert f"create Lead for {JID}: no match on organisation_uid or email" in out.detail["plan"]
    assert emu.org.records("Lead") == [] and emu.org.records("Campaign") == []
    assert set(emu.calls_by_kind) <= {"query", "composite"}, emu.calls_by_kind   # composite: of queries
    real = connector("state.db")
    assert real.wired.state.people([JID]) == {} and real.wired.state.outcome_counts() == {}


def test_a_check_in_would_move_the_member_status_forward(emu, connector):
    real = connector("state.db")
    [first] = real.run(person(JID, at=at(1)))
    assert first.status == "synced", first.reason
    emu.reset_counters()
    plan = connector("state.db", dry_run=True)
    [out] = plan.run(person(JID, at=at(2), checked_in=True))
    assert "CampaignMember status Registered → Attended" in out.detail["plan"], out.detail["plan"]
    [cm] = emu.org.records("CampaignMember")
    assert cm["Status"] == "Registered"
    assert emu.api_calls == 0, emu.calls_by_kind     # a linked, unchanged person: nothing to read either
