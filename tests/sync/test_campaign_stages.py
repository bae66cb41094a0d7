"""The Campaign, session and status stages' decisions, on fakes."""

from __future__ import annotations

from jbtest import sample

from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction, WriteError
from connector.sync.campaigns import CampaignStage, SessionStage
from connector.sync.changes import Facts
from connector.sync.statuses import StatusStage

from .fakes import EVENT_ID, mappings, person, ports, work

LABELS = [s.label for s in mappings().statuses]


def test_an_event_message_upserts_its_campaign_and_hands_on_its_category_table():
    p = ports()
    w = work(sample("event"))
    result = p.run(CampaignStage, [w])
    cid = result.facts.campaigns[EVENT_ID]
    assert p.org.get(cid)["Name"] == "Sonic Conference 2025"
    assert cid in result.facts.fresh_campaigns and result.changes.events[EVENT_ID]["campaign_id"] == cid
    assert result.changes.events[EVENT_ID]["is_placeholder"] == 0
    assert result.facts.category_tables[EVENT_ID] == {"acme/category/7": "Delegate", "acme/category/9": "VIP"}
    assert result.verdicts.ok(w)


def test_a_person_of_an_unknown_event_gets_a_placeholder_and_of_a_known_one_costs_nothing():
    p = ports()
    result = p.run(CampaignStage, [work(person("p1"))])
    assert result.changes.events[EVENT_ID]["is_placeholder"] == 1 and result.facts.campaigns[EVENT_ID]
    p2 = ports()
    p2.state.events_[EVENT_ID] = {"campaign_id": "701000000000001AAA", "metadata": sample("person")["context"].get(
        "event_metadata"), "metadata_at": "2030-01-01T00:00:00+00:00"}
    result = p2.run(CampaignStage, [work(person("p1"))])
    assert result.facts.campaigns[EVENT_ID] == "701000000000001AAA" and not p2.writer.sent


def test_a_refused_campaign_quarantines_every_message_that_needed_it_and_is_not_remembered():
    p = ports()
    p.writer.refuse(lambda w: w.sobject == "Campaign",
                    WriteError("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Region is required", ("Region__c",)))
    ev, pe = work(sample("event")), work(person("p1"))
    result = p.run(CampaignStage, [ev, pe])
    for w in (ev, pe):
        [(reason, field_)] = result.verdicts.failures[w.msg.resource_key]
        assert field_ == "Region__c" and "Region is required" in reason
    assert EVENT_ID not in result.changes.events and EVENT_ID not in result.facts.campaigns


def test_a_row_lock_that_outlasted_the_retries_makes_the_messages_wait():
    p = ports()
    p.writer.refuse(lambda w: w.sobject == "Campaign",
                    WriteError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", (), RowAction.RETRY_LATER))
    w = work(sample("event"))
    result = p.run(CampaignStage, [w])
    assert result.verdicts.waits(w) and not result.verdicts.failures


def test_a_session_gets_its_child_campaign_once_and_a_known_one_is_read_from_the_store():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    w = work(sample("session_participation"))
    result = p.run(SessionStage, [w], Facts(campaigns={EVENT_ID: cid}))
    [(sid, sf_id)] = result.facts.sessions.items()
    assert sid == "acme/session/123" and result.changes.records[sid] == ("Campaign", sf_id)
    assert p.org.get(sf_id)["ParentId"] == cid and sf_id in result.facts.fresh_campaigns
    again = ports()
    again.state.records_[sid] = {"sobject": "Campaign", "sf_id": sf_id}
    result = again.run(SessionStage, [work(sample("session_participation"))], Facts(campaigns={EVENT_ID: cid}))
    assert result.facts.sessions[sid] == sf_id and not again.writer.sent


def test_statuses_are_numbered_after_those_read_from_the_campaign():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))       # Sent 1, Responded 2
    p.org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": "Invited", "SortOrder": 3})  # the org's flow
    result = p.run(StatusStage, [work(person("p1"))], Facts(campaigns={EVENT_ID: cid}))
    made = {w.record["Label"]: w.record["SortOrder"] for w in p.writer.of("CampaignMemberStatus")}
    assert sorted(made.values()) == list(range(4, 4 + len(LABELS))) and set(made) == set(LABELS)
    assert all(not w.error for w in p.writer.sent) and p.reader.calls == 1
    assert result.changes.statuses == {(cid, label) for label in LABELS} and not result.facts.status_errors


def test_a_new_campaign_a_flow_added_a_status_to_is_repaired_when_nothing_was_read():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    p.org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": "Invited", "SortOrder": 3})
    # This batch's own Campaign, its statuses not read (the lookup call had no room): the
    # documented defaults are assumed, the clash comes back refused, the Campaign is read once.
    result = p.run(StatusStage, [work(person("p1"))],
                   Facts(campaigns={EVENT_ID: cid}, fresh_campaigns=frozenset({cid})))
    assert [w.record["SortOrder"] for w in p.writer.sent if w.error] == [3]
    assert p.reader.calls == 1 and not result.facts.status_errors
    assert result.changes.statuses == {(cid, label) for label in LABELS}
    held = {r["Label"]: r["SortOrder"] for r in p.org.records("CampaignMemberStatus") if r["CampaignId"] == cid}
    assert set(LABELS) <= set(held) and len(set(held.values())) == len(held)


def test_statuses_read_by_the_people_lookup_cost_no_call_of_their_own():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    p.org.insert("CampaignMemberStatus", {"CampaignId": cid, "Label": "Invited", "SortOrder": 3})
    read = {cid: {"Sent": 1, "Responded": 2, "Invited": 3}}
    p.run(StatusStage, [work(person("p1"))], Facts(campaigns={EVENT_ID: cid}, status_reads=read))
    assert p.reader.calls == 0
    assert min(w.record["SortOrder"] for w in p.writer.of("CampaignMemberStatus")) == 4
    assert all(not w.error for w in p.writer.sent)


def test_an_event_alone_makes_no_statuses_its_members_will_when_they_come():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    result = p.run(StatusStage, [work(sample("event"))],
                   Facts(campaigns={EVENT_ID: cid}, fresh_campaigns=frozenset({cid})))
    assert not p.writer.sent and p.reader.calls == 0 and not result.changes.statuses


def test_a_status_the_campaign_refuses_fails_that_campaigns_members_later():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    p.writer.refuse(lambda w: w.record.get("Label") == "Attended",
                    WriteError("FIELD_INTEGRITY_EXCEPTION", "bad status", ("Label",)))
    result = p.run(StatusStage, [work(person("p1"))], Facts(campaigns={EVENT_ID: cid}))
    assert "bad status" in result.facts.status_errors[cid]
    assert (cid, "Attended") not in result.changes.statuses and (cid, "Registered") in result.changes.statuses


def _metadata_update(p, cid: str):
    """A person message saying the event's metadata changed: the stored Campaign is updated by Id."""
    msg = person("p1")
    msg["context"]["event_metadata"] = {"region": "EMEA"}
    p.state.events_[EVENT_ID] = {"campaign_id": cid, "metadata": {"region": "APAC"}, "metadata_at": None}
    return work(msg)


def test_a_stored_campaign_deleted_in_salesforce_is_forgotten_and_the_message_retried():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    p.org.delete(cid)
    w = _metadata_update(p, cid)
    result = p.run(CampaignStage, [w])
    assert [x.op for x in p.writer.sent] == ["update"]
    assert result.verdicts.waits(w) and result.changes.forgotten_campaigns == {cid}
    assert EVENT_ID not in result.facts.campaigns


def test_an_invalid_reference_on_a_live_campaign_is_the_fields_problem():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    p.writer.refuse(lambda x: x.sobject == "Campaign",
                    WriteError("INVALID_CROSS_REFERENCE_KEY", "Record Type ID: this ID value isn't valid for the user",
                               ("RecordTypeId",), RowAction.BAD_REFERENCE))
    w = _metadata_update(p, cid)
    result = p.run(CampaignStage, [w])
    assert result.verdicts.failures[w.msg.resource_key][0][1] == "RecordTypeId"
    assert not result.changes.forgotten_campaigns
