"""The capture and category stages' decisions, and how verdicts become outcomes, on fakes."""

from __future__ import annotations

from jbtest import sample

from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction, WriteError
from connector.sync.captures import CaptureStage
from connector.sync.categories import CategoryStage
from connector.sync.changes import Facts, PersonRecord
from connector.sync.engine import _outcome_of
from connector.sync.model import OutcomeStatus, Write
from connector.sync.verdicts import Verdicts

from .fakes import EVENT_ID, mappings, person, ports, work


def _capture_setup():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    lead = to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme"}))
    msg = sample("lead")
    jid = mappings().for_type("lead").person.jomablue_id(msg)
    return p, msg, Facts(campaigns={EVENT_ID: cid}, people={jid: PersonRecord("Lead", lead, "link")}), lead


def test_a_booth_capture_is_one_record_linked_to_the_person_and_the_campaign():
    p, msg, facts, lead = _capture_setup()
    w = work(msg)
    result = p.run(CaptureStage, [w], facts)
    [(key, (sobject, sf_id))] = result.changes.records.items()
    assert key == "acme/lead/90311" and sobject == "Jomablue_Lead_Capture__c"
    assert lead in p.org.get(sf_id).values() and result.verdicts.ok(w)


def test_a_capture_of_a_person_whose_write_failed_is_left_alone():
    p, msg, facts, _lead = _capture_setup()
    result = p.run(CaptureStage, [work(msg)], Facts(campaigns=facts.campaigns))
    assert not p.writer.sent and not result.changes.records


def test_a_refused_capture_quarantines_its_message_with_the_orgs_words():
    p, msg, facts, _lead = _capture_setup()
    p.writer.refuse(lambda w: True, WriteError("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Vendor missing", ("Vendor__c",)))
    w = work(msg)
    result = p.run(CaptureStage, [w], facts)
    assert result.verdicts.failures[w.msg.resource_key][0][1] == "Vendor__c"


def test_a_renamed_category_reaches_every_member_of_the_event_with_a_note():
    p = ports()
    cid = to18(p.org.insert("Campaign", {"Name": "Summit"}))
    lead = to18(p.org.insert("Lead", {"LastName": "Doe", "Company": "Acme"}))
    cm = to18(p.org.insert("CampaignMember", {"CampaignId": cid, "LeadId": lead, "Jomablue_Categories__c": "Delegate"}))
    p.state.categories_[EVENT_ID] = {"acme/category/7": "Delegate"}
    p.state.members_["m1"] = {"event_id": EVENT_ID, "campaign_id": cid, "cm_id": cm, "status": "Registered",
                              "category_ids": ["acme/category/7"], "categories_text": "Delegate"}
    ev = work(sample("event"))
    table = {"acme/category/7": "Attendee", "acme/category/9": "VIP"}
    result = p.run(CategoryStage, [ev], Facts(campaigns={EVENT_ID: cid}, category_tables={EVENT_ID: table},
                                              event_messages={EVENT_ID: (ev,)}))
    assert p.org.get(cm)["Jomablue_Categories__c"] == "Attendee"
    assert result.changes.members["m1"]["categories_text"] == "Attendee"
    assert result.notes == ["category acme/category/7 renamed 'Delegate' → 'Attendee': 1 members updated"]


def test_an_unchanged_category_table_costs_nothing():
    p = ports()
    p.state.categories_[EVENT_ID] = {"acme/category/7": "Delegate"}
    result = p.run(CategoryStage, [], Facts(category_tables={EVENT_ID: {"acme/category/7": "Delegate"}}))
    assert not p.writer.sent and not result.notes


def test_verdicts_a_transient_refusal_waits_a_rejection_quarantines_and_a_failure_wins():
    w1, w2 = work(person("p1")), work(person("p2"))
    v = Verdicts()
    locked = Write("Lead", "update", {"Id": "x"}, [w1], label="Lead x")
    locked.error = WriteError("UNABLE_TO_LOCK_ROW", "busy", (), RowAction.RETRY_LATER)
    v.settle(locked)
    rejected = Write("Lead", "update", {"Id": "y"}, [w2], label="Lead y")
    rejected.error = WriteError("FIELD_CUSTOM_VALIDATION_EXCEPTION", "no", ("Title",))
    v.settle(rejected)
    assert _outcome_of(w1, v).status == OutcomeStatus.RETRY
    out = _outcome_of(w2, v)
    assert (out.status, out.field) == (OutcomeStatus.QUARANTINED, "Title") and "Lead y" in out.reason
    # A later refusal of a message already waiting does not quarantine it (settle); an explicit failure does.
    v.settle(rejected.__class__("Lead", "update", {"Id": "z"}, [w1], label="Lead z", error=rejected.error))
    assert _outcome_of(w1, v).status == OutcomeStatus.RETRY
    v.fail(w1, "bad", "f")
    assert _outcome_of(w1, v).status == OutcomeStatus.QUARANTINED
    full = Write("Lead", "update", {"Id": "w"}, [w3 := work(person("p3"))], label="Lead w",
                 error=WriteError("STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", (), RowAction.ORG_FULL))
    v.settle(full)
    assert _outcome_of(w3, v).status == OutcomeStatus.RETRY
    merged = Verdicts().merge(v)
    merged.note(w2, "member", {"key": "p2"})
    assert merged.detail(w2) == {"member": {"key": "p2"}} and not v.detail(w2)
