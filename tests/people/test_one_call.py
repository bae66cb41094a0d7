"""Issue #18: the people's writes and their members' writes travel in one /composite, each member
naming its person by reference; a person Salesforce refuses fails only its own message."""

from __future__ import annotations

from .helpers import at, members, person

EID = "acme/event_person/"


def _batch(n0: int, n1: int, **kw: object) -> list[dict]:
    return [person(f"{EID}{n}", at=at(1), email=f"p{n}@example.com", first_name=f"P{n}", **kw)  # type: ignore[arg-type]
            for n in range(n0, n1)]


def _each_member_names_its_own_lead(emu) -> None:
    leads = {lead["Id"]: lead for lead in emu.org.records("Lead")}
    for cm in members(emu):
        # the member's registration id and its Lead's are the same person's
        assert leads[cm["LeadId"]]["Jomablue_Id__c"] == cm["Jomablue_Id__c"], cm


def test_new_registrations_cost_two_calls(emu, connector):
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))   # the Campaign and its statuses
    emu.reset_counters()
    outs = c.run(*_batch(1, 31))
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert emu.calls_by_kind == {"composite": 2}, emu.calls_by_kind     # the lookup; people + members
    assert len(members(emu)) == 31
    _each_member_names_its_own_lead(emu)
    assert all(o.detail["member"]["id"] for o in outs)
    # what the state store remembers is the real ids, never a reference
    rows = c.wired.state.members([f"{EID}{n}" for n in range(1, 31)])
    assert all(r["person_sf_id"].startswith("00Q") and r["cm_id"].startswith("00v") for r in rows.values()), rows


def test_members_that_do_not_fit_the_peoples_call_follow_with_their_real_ids(emu, connector):
    """450 new people: three Lead collections and two member collections fill the people's call;
    the last 50 members go in one more call naming their Leads by id. Every member once, each its
    own person's; three calls in all (the lookup, the people's, the rest of the members)."""
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))   # the Campaign and its statuses
    emu.reset_counters()
    outs = c.run(*_batch(1, 451))
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert emu.calls_by_kind == {"composite": 2, "collections_upsert": 1}, emu.calls_by_kind
    assert len(members(emu)) == 451 and len({cm["Jomablue_Id__c"] for cm in members(emu)}) == 451
    _each_member_names_its_own_lead(emu)
    rows = c.wired.state.members([f"{EID}{n}" for n in range(1, 451)])
    assert len(rows) == 450 and all(r["person_sf_id"].startswith("00Q") for r in rows.values())


def test_a_refused_person_among_those_whose_members_follow_later_fails_alone(emu, connector):
    """450 new people, the 420th refused by a validation rule: its member is one of those sent
    after the people's call (past the two member collections that fit), with the people's ids. That
    person's message alone is quarantined; 449 members, each its own person's, none for the refused."""
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))
    emu.org.add_validation_rule("Lead", "No_Interns", "Interns are not leads", field="Title",
                                when={"Title": "Intern"})
    msgs = _batch(1, 451)
    msgs[419] = person(f"{EID}420", at=at(1), email="p420@example.com", job_title="Intern")
    outs = c.run(*msgs)
    refused = [o for o in outs if o.status != "synced"]
    assert [(o.status, o.resource_id) for o in refused] == [("quarantined", f"{EID}420")], refused
    assert len(members(emu)) == 450                      # the seed's and 449 of the batch
    assert f"{EID}420" not in {cm["Jomablue_Id__c"] for cm in members(emu)}
    _each_member_names_its_own_lead(emu)


def test_a_status_refused_in_the_combined_call_is_made_by_the_status_stage(emu, connector):
    """An org's flow gives every new Campaign a status at the SortOrder the connector numbered its
    first own status with (they travel with the Campaign, by reference): the members that need them
    are not taken as refused; the status stage reads the Campaign, makes the statuses after what is
    there, and the members go after them."""
    emu.org.add_campaign_status_on_insert("Flow", 3)
    c = connector()
    outs = c.run(*_batch(1, 6))
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    [campaign] = emu.org.records("Campaign")
    statuses = {s["Label"]: s["SortOrder"] for s in emu.org.records("CampaignMemberStatus")
                if s["CampaignId"] == campaign["Id"]}
    assert statuses["Flow"] == 3 and len(set(statuses.values())) == len(statuses)   # no SortOrder clash
    assert {cm["Status"] for cm in members(emu)} <= set(statuses)
    assert len(members(emu)) == 5
    _each_member_names_its_own_lead(emu)


def test_one_refused_person_quarantines_only_its_message(emu, connector):
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))
    emu.org.add_validation_rule("Lead", "No_Interns", "Interns are not leads", field="Title",
                                when={"Title": "Intern"})
    emu.reset_counters()
    msgs = _batch(1, 11)
    msgs[4] = person(f"{EID}5", at=at(1), email="p5@example.com", job_title="Intern")
    outs = c.run(*msgs)
    by_id = {o.resource_id: o for o in outs}
    refused = [o for o in outs if o.status != "synced"]
    assert [o.status for o in refused] == ["quarantined"], [(o.status, o.reason) for o in outs]
    assert "Interns are not leads" in (refused[0].reason or "")
    assert sum(o.status == "synced" for o in by_id.values()) == 9
    # the member subrequest named the refused row, so it did not run; the nine members went in one
    # more call with their people's ids: three calls, no member for the refused person
    assert emu.calls_by_kind == {"composite": 2, "collections_upsert": 1}, emu.calls_by_kind
    assert sorted(cm["Jomablue_Id__c"] for cm in members(emu)) == sorted(
        [f"{EID}0"] + [f"{EID}{n}" for n in range(1, 11) if n != 5])
    _each_member_names_its_own_lead(emu)
    assert c.wired.state.people([f"{EID}5"]) == {}


def test_a_batch_that_creates_its_campaign_writes_its_members(emu, connector):
    c = connector()
    outs = c.run(*_batch(1, 21))
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    # the Campaign and the statuses its members need (by reference, one composite); the lookup;
    # the people and the members in one composite
    assert emu.calls_by_kind == {"composite": 3}, emu.calls_by_kind
    [campaign] = emu.org.records("Campaign")
    assert len(members(emu)) == 20 and {cm["CampaignId"] for cm in members(emu)} == {campaign["Id"]}
    labels = {s["Label"] for s in emu.org.records("CampaignMemberStatus") if s["CampaignId"] == campaign["Id"]}
    assert {cm["Status"] for cm in members(emu)} <= labels
    _each_member_names_its_own_lead(emu)
    # the next batch of that event: the Campaign and its statuses are known, two calls
    emu.reset_counters()
    c.run(*_batch(21, 41))
    assert emu.calls_by_kind == {"composite": 2}, emu.calls_by_kind


def test_a_replayed_batch_writes_no_member_twice(emu, connector):
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))
    msgs = _batch(1, 11)
    c.run(*msgs)
    emu.reset_counters()
    assert {o.status for o in c.run(*msgs)} == {"skipped"} and emu.api_calls == 0   # redelivered
    # the state store lost: everything sent again, found by its Jomablue id
    outs = connector("fresh.db").run(*msgs)
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert len(emu.org.records("Lead")) == 11 and len(members(emu)) == 11
    _each_member_names_its_own_lead(emu)
    # The Campaign's statuses, sent again with it, are not made twice.
    labels = [s["Label"] for s in emu.org.records("CampaignMemberStatus")]
    assert len(labels) == len(set(labels)), labels


def test_collated_subrequests_still_run_after_what_they_name(emu, connector):
    """collateSubrequests false: an org that collated would still run members after their people."""
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))
    emu.faults.composite_reorder = True
    outs = c.run(*_batch(1, 6))
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    _each_member_names_its_own_lead(emu)


def test_known_people_cost_one_call(emu, connector):
    """People linked by an earlier batch: no lookup (issue #18), their updates in one call; a
    check-in alone is the member's update alone, one call too."""
    c = connector()
    c.run(*_batch(1, 11))
    emu.reset_counters()
    outs = c.run(*_batch(1, 11, job_title="CTO"))
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert {o.detail["match"]["rung"] for o in outs} == {"link"}
    assert emu.calls_by_kind == {"collections_update": 1}, emu.calls_by_kind
    assert {lead["Title"] for lead in emu.org.records("Lead")} == {"CTO"}
    emu.reset_counters()
    outs = c.run(*[person(f"{EID}{n}", at=at(3), email=f"p{n}@example.com", first_name=f"P{n}", job_title="CTO",
                          checked_in=True) for n in range(1, 11)])
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert emu.calls_by_kind == {"collections_update": 1}, emu.calls_by_kind
    assert {cm["Status"] for cm in members(emu)} == {"Attended"}


def test_a_known_person_merged_away_is_looked_up_again_in_the_same_batch(emu, connector):
    c = connector()
    c.run(*_batch(1, 4))
    loser = next(lead for lead in emu.org.records("Lead") if lead["Jomablue_Id__c"] == f"{EID}2")
    survivor = emu.org.insert("Lead", {"LastName": "Doe", "Company": "Acme", "Email": "p2@elsewhere.example"})
    emu.org.merge(survivor, loser["Id"])
    outs = c.run(*[person(f"{EID}{n}", at=at(2), email=f"p{n}@example.com", first_name=f"P{n}", job_title="CTO")
                   for n in range(1, 4)])
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert c.person_row(f"{EID}2")["sf_id"] == emu.org.get(survivor)["Id"]
    assert emu.org.get(survivor)["Title"] == "CTO"
    assert len(members(emu)) == 3


def test_people_named_by_their_lead_id_cost_one_call(emu, connector):
    """organisation_uid is the Lead's id: no lookup; the Lead updates and the new members in one call."""
    c = connector()
    c.run(person(f"{EID}0", at=at(0), email="seed@example.com"))
    leads = [emu.org.insert("Lead", {"LastName": f"L{n}", "Company": "Acme"}) for n in range(1, 6)]
    emu.reset_counters()
    outs = c.run(*[person(f"{EID}{n}", at=at(1), email=f"p{n}@example.com", uid=lead, job_title="CTO")
                   for n, lead in enumerate(leads, start=1)])
    assert all(o.status == "synced" for o in outs), {o.reason for o in outs}
    assert {o.detail["match"]["rung"] for o in outs} == {"organisation_uid"}
    assert emu.calls_by_kind == {"composite": 1}, emu.calls_by_kind
    by_key = {cm["Jomablue_Id__c"]: cm["LeadId"] for cm in members(emu)}
    assert [by_key[f"{EID}{n}"] for n in range(1, 6)] == [emu.org.get(lead)["Id"] for lead in leads]


def test_a_known_contact_keeps_the_first_registration_id_it_got(emu, connector):
    """Jomablue_Id__c is if_empty on a Contact; a person written without a lookup leaves it alone."""
    emu.org.insert("Contact", {"LastName": "Doe", "Email": "p1@example.com", "Jomablue_Id__c": "acme/event_person/old"})
    c = connector()
    c.run(*_batch(1, 2))
    emu.reset_counters()
    [out] = c.run(*_batch(1, 2, job_title="CTO"))
    assert out.status == "synced" and out.detail["match"]["rung"] == "link", out.reason
    assert emu.calls_by_kind == {"collections_update": 1}, emu.calls_by_kind
    [contact] = emu.org.records("Contact")
    assert (contact["Title"], contact["Jomablue_Id__c"]) == ("CTO", "acme/event_person/old")
