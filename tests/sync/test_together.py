"""Issue #18, the packing: which writes share one /composite, how a member names its person, and
which answered member writes the member stage takes instead of a call."""

from __future__ import annotations

from connector.salesforce.composite import collections_needed, fits_one_call, resolve_references, row_reference
from connector.salesforce.ids import to18
from connector.sync.changes import Facts, PersonRecord
from connector.sync.members import MemberStage
from connector.sync.model import Write

from .fakes import EVENT_ID, mappings, person, ports, work


def test_a_reference_names_the_chunk_and_the_row():
    assert row_reference("p1_", 0) == "@{p1_0[0].id}"
    assert row_reference("p1_", 203) == "@{p1_1[3].id}"      # the 204th record: second chunk of 200


def test_five_collections_fit_one_call_and_six_do_not():
    assert collections_needed([200, 1, 201]) == 4
    assert fits_one_call([30, 30])                          # a live batch: people + members
    assert fits_one_call([400, 400, 200])                   # 2 + 2 + 1
    assert not fits_one_call([500, 500])                    # 3 + 3: people first, members after
    assert not fits_one_call([])


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
