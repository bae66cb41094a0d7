"""Issue #18, the packing: which writes share one /composite, how a member names its person, and
which answered member writes the member stage takes instead of a call."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from connector.salesforce.composite import collections_needed, resolve_references, row_reference
from connector.salesforce.ids import to18
from connector.sync.changes import Facts, PersonRecord
from connector.sync.members import MemberStage
from connector.sync.model import Write
from connector.sync.together import send_with_members
from connector.sync.writer import Together

from .fakes import EVENT_ID, OrgWriter, mappings, person, ports, work


def test_a_reference_names_the_chunk_and_the_row():
    assert row_reference("p1_", 0) == "@{p1_0[0].id}"
    assert row_reference("p1_", 203) == "@{p1_1[3].id}"      # the 204th record: second chunk of 200


class CombiningWriter(OrgWriter):
    """Records the groups of each combined call; answers none of their rows (the stages send them)."""

    def __init__(self, org: Any) -> None:
        super().__init__(org)
        self.calls: list[list[tuple[str, int]]] = []

    async def send_together(self, groups: list[Any]) -> list[Write] | None:
        self.calls.append([(g.ref, len(g.writes)) for g in groups])
        return []


def _new_people(n: int) -> tuple[Any, list[Together], list[Any], Facts]:
    p, cid = _setup()
    p = replace(p, writer=CombiningWriter(p.org))
    works = [work(person(f"p{i}", email=f"p{i}@example.com")) for i in range(n)]
    leads = [Write("Lead", "upsert", {"LastName": f"P{i}", "Jomablue_Id__c": f"p{i}"}, [w], key=f"p{i}",
                   stands_for=[f"p{i}"]) for i, w in enumerate(works)]
    return p, [Together(leads, "Jomablue_Id__c", ref="p0_")], works, Facts(campaigns={EVENT_ID: cid})


def _send(p: Any, groups: list[Together], works: list[Any], facts: Facts, statuses_needed: list[str]) -> Any:
    return asyncio.run(send_with_members(p.context(), groups, works, facts, {}, statuses_needed))


def test_the_call_is_filled_with_as_many_members_as_five_collections_leave_room_for():
    assert collections_needed([200, 1, 201]) == 4
    p, groups, works, facts = _new_people(500)
    assert _send(p, groups, works, facts, []) == ({}, {})
    # 500 people: three collections; two of members (400) ride, the last 100 go in the member stage's call.
    assert p.writer.calls == [[("p0_", 500), ("m0_", 400)]]
    p, groups, works, facts = _new_people(300)
    _send(p, groups, works, facts, [])
    assert p.writer.calls == [[("p0_", 300), ("m0_", 300)]]          # 2 + 2: everything in one call


def test_no_member_rides_when_the_people_fill_the_call_or_a_campaigns_statuses_are_unknown():
    p, groups, works, facts = _new_people(1000)
    assert _send(p, groups, works, facts, []) is None and p.writer.calls == []     # five people collections
    p, groups, works, facts = _new_people(10)
    # The Campaign's statuses must be read first (neither read with the lookup nor created now).
    assert _send(p, groups, works, facts, [facts.campaigns[EVENT_ID]]) is None and p.writer.calls == []


def test_references_resolve_only_whole_values():
    ids = {"@{p0_0[1].id}": "00Q000000000002AAA"}
    rec = {"LeadId": "@{p0_0[1].id}", "Note": "see @{p0_0[1].id}", "Status": "Registered", "N": 3}
    assert resolve_references(rec, ids) == {**rec, "LeadId": "00Q000000000002AAA"}
    assert resolve_references({"LeadId": "@{p0_0[9].id}"}, ids) == {"LeadId": "@{p0_0[9].id}"}   # unanswered


def _setup() -> tuple:
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    for n, s in enumerate(mappings().statuses, start=10):
        p.org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": s.label, "SortOrder": n})
    return p, cid


def test_the_planned_members_name_their_person_by_reference():
    p, cid = _setup()
    ref = row_reference("p1_", 0)
    upserts, updates, ext, campaigns = MemberStage(p.context()).planned(
        [work(person("p1"))], Facts(campaigns={EVENT_ID: cid}, people={"p1": PersonRecord("Lead", ref, "create")}))
    [x] = upserts
    assert (x.record["LeadId"], x.record["CampaignId"], ext) == (ref, cid, "Jomablue_Id__c")
    assert (updates, campaigns) == ([], {cid})
    assert p.writer.sent == [] and p.org.records("CampaignMember") == []      # planned, never sent


def _early(p, cid: str, lead: str) -> Write:
    [x], _u, _e, _c = MemberStage(p.context()).planned(
        [work(person("p1"))], Facts(campaigns={EVENT_ID: cid}, people={"p1": PersonRecord("Lead", lead, "create")}))
    x.result_id, x.created, x.error = to18("00v000000000001"), True, None
    return x


def test_the_member_stage_takes_an_answered_write_instead_of_a_call():
    p, cid = _setup()
    lead = to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme"}))
    early = _early(p, cid, lead)
    facts = Facts(campaigns={EVENT_ID: cid}, people={"p1": PersonRecord("Lead", lead, "create")},
                  early_members={"p1": early})
    result = p.run(MemberStage, [work(person("p1"))], facts)
    assert p.writer.sent == []                                         # no call
    assert result.changes.members["p1"]["cm_id"] == early.result_id


def test_an_answered_write_for_another_record_is_sent_again():
    """The person's row came out as another record than the one the member named: never adopted."""
    p, cid = _setup()
    lead = to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme"}))
    early = _early(p, cid, to18("00Q000000000999"))
    facts = Facts(campaigns={EVENT_ID: cid}, people={"p1": PersonRecord("Lead", lead, "create")},
                  early_members={"p1": early})
    p.run(MemberStage, [work(person("p1"))], facts)
    [sent] = p.writer.sent
    [cm] = p.org.records("CampaignMember")
    assert sent.record["LeadId"] == lead and cm["LeadId"] == lead


def test_a_member_written_early_is_not_written_again():
    p, cid = _setup()
    lead = to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme"}))
    facts = Facts(campaigns={EVENT_ID: cid}, people={"p1": PersonRecord("Lead", lead, "create")},
                  early_members={"p1": _early(p, cid, lead)})
    result = p.run(MemberStage, [work(person("p1"))], facts)
    assert p.writer.sent == [] and not result.verdicts.failures
    assert result.changes.members["p1"]["person_sf_id"] == lead
