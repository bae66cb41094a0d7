"""The shipped default mappings write the data model `mappings/README.md` documents field by field."""

from __future__ import annotations

import pytest

from connector.mapping import load_mapping_set

LEAD = {
    "FirstName": ("source", "identifiers.first_name"), "LastName": ("source", "identifiers.last_name"),
    "Email": ("source", "identifiers.email"), "Phone": ("source", "identifiers.phone"),
    "Company": ("source", "identifiers.company"), "Title": ("source", "data.job_title"),
    "LeadSource": ("value", "Jomablue"), "Jomablue_Id__c": ("source", "identifiers.id"),
}
CONTACT = {k: v for k, v in LEAD.items() if k not in ("Company", "LeadSource")}
EVENT_CAMPAIGN = {
    "Name": ("source", "data.name"), "StartDate": ("source", "data.start_time"),
    "EndDate": ("source", "data.end_time"), "Description": ("source", "data.short_description"),
    "Type": ("value", "Conference"), "IsActive": ("value", True), "Jomablue_Id__c": ("source", "identifiers.id"),
    "Jomablue_Timezone__c": ("source", "data.timezone"), "Jomablue_Venue__c": ("source", "data.venue_name"),
    "Jomablue_Region__c": ("source", "data.metadata.region"),
    "Jomablue_Cost_Centre__c": ("source", "data.metadata.cost_centre"),
    "Jomablue_Owner__c": ("source", "data.metadata.owner"),
    "Jomablue_Source__c": ("source", "data.metadata.source"),
    "Jomablue_Metadata__c": ("source", "data.metadata"),
}
MEMBER = {
    "CampaignId": ("ref", "campaign.id"), "LeadId": ("ref", "person.lead_id"),
    "ContactId": ("ref", "person.contact_id"), "Status": ("ref", "status"),
    "Jomablue_Id__c": ("source", "identifiers.id"),
    "Jomablue_Category_Ids__c": ("source", "data.categories[*].id"),
    "Jomablue_Categories__c": ("ref", "categories.names"),
    "Jomablue_Checked_In_At__c": ("source", "data.first_check_in"),
}
CAPTURE = {
    "Jomablue_Id__c": ("source", "identifiers.id"), "Lead__c": ("ref", "person.lead_id"),
    "Contact__c": ("ref", "person.contact_id"), "Campaign__c": ("ref", "campaign.id"),
    "Vendor_Id__c": ("source", "identifiers.vendor_id"), "Vendor_Name__c": ("source", "data.vendor_name"),
    "Captured_At__c": ("source", "data.captured_at"), "Notes__c": ("source", "data.notes"),
    "Tags__c": ("source", "data.tags[*]"),
}


def _rules(rec) -> dict:
    return {r.field: (r.kind, r.spec) for r in rec.rules}


def _ctx(mapping: dict) -> dict:
    repl = {"identifiers.first_name": "context.person_first_name",
            "identifiers.last_name": "context.person_last_name", "identifiers.email": "context.person_email",
            "identifiers.phone": "context.person_phone", "identifiers.company": "context.person_company",
            "identifiers.id": "context.person_id"}
    return {k: (kind, repl.get(spec, spec)) for k, (kind, spec) in mapping.items()
            if k != "Title"}


def test_person_defaults() -> None:
    ms = load_mapping_set(None)
    rm = ms.for_type("person")
    assert rm is not None and rm.person is not None and rm.membership is not None
    assert _rules(rm.person.lead) == LEAD
    assert _rules(rm.person.contact) == CONTACT
    assert rm.person.lead.fields_with_policy("on_create") == ["LeadSource", "Jomablue_Id__c"]
    assert rm.person.contact.fields_with_policy("if_empty") == ["Jomablue_Id__c"]
    assert _rules(rm.membership) == MEMBER
    assert rm.membership.object == "CampaignMember" and rm.membership.upsert_key == "Jomablue_Id__c"
    assert rm.membership.fields_with_policy("on_create") == ["CampaignId", "LeadId", "ContactId"]
    assert rm.membership.status.progression == ("Registered", "Attended")
    assert rm.membership.status.final == ("Cancelled",)
    assert ms.matching.organisation_uid_field is None and ms.matching.email is True
    assert ms.matching.create_as == "Lead" and ms.matching.placeholder == "[not provided]"


def test_event_defaults() -> None:
    ms = load_mapping_set(None)
    rm = ms.for_type("event")
    assert rm is not None and rm.campaign is not None and rm.categories is not None
    assert _rules(rm.campaign) == EVENT_CAMPAIGN
    assert [(s.label, s.responded, s.default, s.sort_order) for s in ms.statuses] == [
        ("Registered", False, True, 1), ("Attended", True, False, 2),
        ("Cancelled", False, False, 3), ("Captured", True, False, 4)]
    transforms = {r.field: [t.name for t in r.transforms] for r in rm.campaign.rules}
    assert transforms["StartDate"] == ["local_date"] and transforms["Jomablue_Metadata__c"][0] == "json"


@pytest.mark.parametrize("rtype", ["session_participation", "lead"])
def test_context_person_defaults(rtype: str) -> None:
    rm = load_mapping_set(None).for_type(rtype)
    assert rm is not None and rm.person is not None and rm.campaign is not None
    assert _rules(rm.person.lead) == _ctx(LEAD)
    assert _rules(rm.person.contact) == _ctx(CONTACT)
    assert _rules(rm.campaign)["Jomablue_Id__c"] == ("source", "context.event_id")


def test_session_and_lead_records() -> None:
    ms = load_mapping_set(None)
    sp = ms.for_type("session_participation")
    assert sp is not None and sp.session_campaign is not None and sp.membership is not None
    assert _rules(sp.session_campaign) == {
        "Name": ("source", "data.session_name"), "ParentId": ("ref", "campaign.id"),
        "Type": ("value", "Other"), "IsActive": ("value", True),
        "StartDate": ("source", "data.session_start_time"), "EndDate": ("source", "data.session_end_time"),
        "Jomablue_Id__c": ("source", "identifiers.session_id")}
    assert _rules(sp.membership)["CampaignId"] == ("ref", "session_campaign.id")
    assert sp.membership.status.progression == ()
    lead = ms.for_type("lead")
    assert lead is not None and lead.capture is not None and lead.membership is not None
    assert lead.capture.object == "Jomablue_Lead_Capture__c"
    assert _rules(lead.capture) == CAPTURE
    assert _rules(lead.membership)["Jomablue_Id__c"] == ("source", "context.person_id")
    assert lead.membership.status.status_for({}) == "Captured"
    assert lead.membership.status.merge("Attended", "Captured") == "Attended"


def test_example_lead_captures_as_tasks() -> None:
    from pathlib import Path

    from connector.mapping import validate_mapping_folder

    from .helpers import describe_from_schema, sample

    folder = Path(__file__).resolve().parents[2] / "examples" / "lead-captures-as-tasks"
    assert validate_mapping_folder(folder, describe_from_schema()) == []
    rm = load_mapping_set(folder).for_type("lead")
    assert rm is not None and rm.capture is not None and rm.capture.object == "Task"
    refs = {"person.id": "00Q000000000001AAA", "campaign.id": "701000000000001AAA"}
    task = rm.capture.build(sample("lead"), refs)
    assert task["WhoId"] == "00Q000000000001AAA" and task["Priority"] == "High"
    assert task["ActivityDate"] == "2025-09-11"  # 02:17 UTC is the 11th in Sydney (data has no timezone: UTC)
    no_hot = {**sample("lead"), "data": {"tags": ["Cold"]}}
    assert "Priority" not in rm.capture.build(no_hot, refs)
    assert rm.capture.build(no_hot, refs)["Subject"] == "a vendor"
