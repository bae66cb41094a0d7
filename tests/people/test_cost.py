"""Exactly-once and cheap: identical content costs zero calls, stale is not written, a redelivered
create never duplicates, a batch of people costs a fixed number of calls."""

from __future__ import annotations

import asyncio
import threading

from .helpers import at, members, person

JID = "acme/event_person/9001"


def test_identical_content_costs_zero_calls(emu, connector):
    c = connector()
    [out] = c.run(person(JID, at=at(1), checked_in=True))
    assert out.status == "synced", out.reason
    for msg in (person(JID, at=at(1), checked_in=True),      # redelivered
                person(JID, at=at(9), checked_in=True)):     # republished: only generated_at differs
        emu.reset_counters()
        [out] = c.run(msg)
        assert out.status == "skipped" and out.detail["skip"] == "unchanged", out.reason
        assert emu.api_calls == 0, emu.calls_by_kind


def test_stale_message_is_not_written(emu, connector):
    c = connector()
    c.run(person(JID, at=at(5), job_title="CTO"))
    emu.reset_counters()
    [out] = c.run(person(JID, at=at(1), job_title="Intern"))
    assert out.status == "skipped" and out.detail["skip"] == "stale", out.reason
    assert emu.api_calls == 0
    [lead] = emu.org.records("Lead")
    assert lead["Title"] == "CTO"


def test_person_change_does_not_rewrite_an_unchanged_member(emu, connector):
    c = connector()
    c.run(person(JID, at=at(1)))
    emu.reset_counters()
    [out] = c.run(person(JID, at=at(2), job_title="CTO"))
    assert out.status == "synced", out.reason
    # the link answers who they are (issue #18: no lookup), one Lead update, nothing for the membership
    assert emu.calls_by_kind == {"collections_update": 1}, emu.calls_by_kind


def test_redelivered_create_after_state_loss_is_still_one_lead(emu, connector):
    msg = person(JID, at=at(1), email=None)         # nothing to match on but the registration id
    [o1] = connector("a.db").run(msg)
    [o2] = connector("b.db").run(msg)               # the state db lost: the create is sent again
    assert (o1.status, o2.status) == ("synced", "synced"), (o1.reason, o2.reason)
    [lead] = emu.org.records("Lead")
    assert o2.detail["match"]["id"] == lead["Id"]
    [cm] = members(emu)
    assert cm["LeadId"] == lead["Id"] and cm["Jomablue_Id__c"] == JID
    assert len(emu.org.records("Campaign")) == 1


def test_redelivered_create_racing_its_first_attempt_is_one_lead(emu, connector):
    """The same message held by two workers at once (visibility timeout ran out): one Lead."""
    emu.faults.latency_ms = 30          # widen the window between lookup and write
    msg = person(JID, at=at(1), email=None)
    conns = [connector(f"w{i}.db") for i in range(2)]
    outs: dict[int, object] = {}
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        barrier.wait()
        outs[i] = asyncio.run(conns[i].wired.engine.process(conns[i].inbounds([msg])))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [o.status for res in outs.values() for o in res]
    assert statuses == ["synced", "synced"], [(o.status, o.reason) for res in outs.values() for o in res]
    [lead] = emu.org.records("Lead")
    [cm] = members(emu)
    assert cm["LeadId"] == lead["Id"]
    assert len(emu.org.records("Campaign")) == 1


def test_two_hundred_new_people_cost_a_fixed_number_of_calls(emu, connector):
    c = connector()
    c.run(person("acme/event_person/0", at=at(0), email="seed@example.com"))   # the Campaign and its statuses
    emu.reset_counters()
    msgs = [person(f"acme/event_person/{n}", at=at(1), email=f"p{n}@example.com", first_name=f"P{n}")
            for n in range(1, 201)]
    outs = c.run(*msgs)
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert len(emu.org.records("Lead")) == 201 and len(members(emu)) == 201
    k = emu.calls_by_kind
    # The Lead and Contact lookups travel together in one composite call; the 200 Leads and the
    # 200 members, naming their Lead by reference, in a second one (issue #18).
    assert k == {"composite": 2}, k
    assert emu.api_calls == 2, k
    assert {cm["LeadId"] for cm in members(emu)} == {lead["Id"] for lead in emu.org.records("Lead")}
    assert all(o.detail["match"]["rung"] == "create" for o in outs)


def test_two_hundred_known_contacts_cost_a_fixed_number_of_calls(emu, connector):
    for n in range(1, 201):
        emu.org.insert("Contact", {"LastName": f"C{n}", "Email": f"P{n}@Example.com"})
    c = connector()
    c.run(person("acme/event_person/0", at=at(0), email="seed@example.com"))
    emu.reset_counters()
    outs = c.run(*[person(f"acme/event_person/{n}", at=at(1), email=f"p{n}@example.com", last_name=f"C{n}")
                   for n in range(1, 201)])
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert {o.detail["match"]["rung"] for o in outs} == {"email"}
    assert len(emu.org.records("Contact")) == 200 and len(emu.org.records("Lead")) == 1
    k = emu.calls_by_kind
    # the lookup; then the 200 Contact updates and the 200 members in one composite call
    assert k == {"composite": 2}, k


def test_a_known_person_whose_lead_fields_did_not_change_costs_no_lookup_and_no_lead_write(emu, connector):
    """A check-in changes the member, not the Lead: the link answers who they are (issue #13)."""
    c = connector()
    c.run(person(JID, at=at(1)))
    emu.reset_counters()
    [out] = c.run(person(JID, at=at(2), checked_in=True))
    assert out.status == "synced", out.reason
    assert out.detail["match"]["rung"] == "link"
    assert emu.calls_by_kind == {"collections_update": 1}, emu.calls_by_kind   # the member's status only
    [cm] = members(emu)
    assert cm["Status"] == "Attended"


def test_updates_after_a_create_compare_like_the_create(emu, connector):
    """The hash stored after a create leaves out create-only fields, so the next message with the
    same person fields writes nothing to the Lead."""
    c = connector()
    c.run(person(JID, at=at(1), job_title="CTO"))
    emu.reset_counters()
    c.run(person(JID, at=at(2), job_title="CTO", checked_in=True))
    assert "collections_upsert" not in emu.calls_by_kind and emu.calls_by_kind.get("query", 0) == 0, \
        emu.calls_by_kind


def test_two_resource_types_do_not_rewrite_each_others_lead_fields(emu, connector):
    """A session check-in then the person message: each source compares with its own hash."""
    import copy

    from .helpers import SAMPLES

    c = connector()
    c.run(person(JID, at=at(1), uid=""))
    session = copy.deepcopy(SAMPLES["session_participation"])
    session["context"].update({"person_id": JID, "person_organisation_uid": "",
                               "event_id": person(JID)["context"]["event_id"]})
    session["generated_at"] = "2025-09-10T12:00:00.000Z"
    [s_out] = c.run(session)
    assert s_out.status == "synced", s_out.reason
    emu.reset_counters()
    [again] = c.run(person(JID, at=at(3), uid=""))          # republished, unchanged person fields
    assert again.status in ("synced", "skipped"), again.reason
    assert emu.api_calls == 0, emu.calls_by_kind
