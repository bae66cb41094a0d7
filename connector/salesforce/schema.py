"""The default Salesforce data model, as describe-like metadata.

One source of truth for three consumers: the bundled emulator (which serves it as describe and
enforces it), offline mapping validation (field lengths for truncation, types), and the
Salesforce metadata under ``salesforce/`` (a test checks that the two agree).

Each field: type (id, string, textarea, email, phone, picklist, boolean, date, datetime, double,
int, reference), length (text types), required (must be given on create), createable,
updateable, external_id, unique, case_sensitive, reference_to, picklist (values), restricted,
custom (deployed by ``salesforce/``), default (applied on create when absent).
"""

from __future__ import annotations

from typing import Any

Field = dict[str, Any]


def _f(type_: str, length: int | None = None, **kw: Any) -> Field:
    field: Field = {
        "type": type_,
        "length": length,
        "required": False,
        "createable": True,
        "updateable": True,
        "external_id": False,
        "unique": False,
        "case_sensitive": False,
        "reference_to": [],
        "picklist": [],
        "restricted": False,
        "custom": False,
        "default": None,
    }
    field.update(kw)
    return field


def _system() -> dict[str, Field]:
    ro = {"createable": False, "updateable": False}
    return {
        "Id": _f("id", 18, **ro),
        "IsDeleted": _f("boolean", **ro),
        "CreatedDate": _f("datetime", **ro),
        "LastModifiedDate": _f("datetime", **ro),
        "SystemModstamp": _f("datetime", **ro),
    }


def _jomablue_id() -> Field:
    return _f("string", 255, external_id=True, unique=True, case_sensitive=True, custom=True)


def _owner() -> Field:
    return _f("reference", 18, reference_to=["User"])


def _person(sobject: str, **own: Field) -> dict[str, Field]:
    """The fields Leads and Contacts share, with the object's `own` ones after the standard ones."""
    return {
        **_system(),
        "FirstName": _f("string", 40),
        "LastName": _f("string", 80, required=True),
        "Email": _f("email", 80),
        "Phone": _f("phone", 40),
        "Title": _f("string", 128),
        "LeadSource": _f("picklist", 255, picklist=LEAD_SOURCES),
        "OwnerId": _owner(),
        **own,
        "MasterRecordId": _f("reference", 18, createable=False, updateable=False, reference_to=[sobject]),
        "Jomablue_Id__c": _jomablue_id(),
        "External_Person_Id__c": _f("string", 255, custom=True),
    }


LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other", "Jomablue"]
CAMPAIGN_TYPES = [
    "Advertisement", "Banner Ads", "Conference", "Direct Mail", "Email", "Partners",
    "Public Relations", "Referral Program", "Telemarketing", "Trade Show", "Webinar", "Other",
]

OBJECTS: dict[str, dict[str, Any]] = {
    "User": {
        "key_prefix": "005",
        "custom": False,
        "fields": {**_system(), "Name": _f("string", 121), "Username": _f("string", 80)},
    },
    "Account": {
        "key_prefix": "001",
        "custom": False,
        "fields": {**_system(), "Name": _f("string", 255, required=True), "OwnerId": _owner()},
    },
    "Lead": {
        "key_prefix": "00Q",
        "custom": False,
        "fields": _person(
            "Lead",
            Company=_f("string", 255, required=True),
            Status=_f(
                "picklist", 255, default="Open - Not Contacted", restricted=True,
                picklist=["Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                          "Closed - Not Converted"],
            ),
            IsConverted=_f("boolean", createable=False, updateable=False, default=False),
            ConvertedContactId=_f("reference", 18, createable=False, updateable=False, reference_to=["Contact"]),
            ConvertedAccountId=_f("reference", 18, createable=False, updateable=False, reference_to=["Account"]),
            ConvertedDate=_f("date", createable=False, updateable=False),
        ),
    },
    "Contact": {
        "key_prefix": "003",
        "custom": False,
        "fields": _person("Contact", AccountId=_f("reference", 18, reference_to=["Account"])),
    },
    "Campaign": {
        "key_prefix": "701",
        "custom": False,
        "fields": {
            **_system(),
            "Name": _f("string", 80, required=True),
            "StartDate": _f("date"),
            "EndDate": _f("date"),
            "Description": _f("textarea", 32000),
            "Type": _f("picklist", 255, picklist=CAMPAIGN_TYPES),
            "Status": _f("picklist", 255, default="Planned",
                         picklist=["Planned", "In Progress", "Completed", "Aborted"]),
            "IsActive": _f("boolean", default=False),
            "ParentId": _f("reference", 18, reference_to=["Campaign"]),
            "OwnerId": _owner(),
            "Jomablue_Id__c": _jomablue_id(),
            "Jomablue_Timezone__c": _f("string", 64, custom=True),
            "Jomablue_Venue__c": _f("string", 255, custom=True),
            "Jomablue_Region__c": _f("string", 255, custom=True),
            "Jomablue_Cost_Centre__c": _f("string", 255, custom=True),
            "Jomablue_Owner__c": _f("string", 255, custom=True),
            "Jomablue_Source__c": _f("string", 255, custom=True),
            "Jomablue_Metadata__c": _f("textarea", 32768, custom=True),
        },
    },
    "CampaignMember": {
        "key_prefix": "00v",
        "custom": False,
        "fields": {
            **_system(),
            "CampaignId": _f("reference", 18, required=True, updateable=False,
                             reference_to=["Campaign"]),
            "LeadId": _f("reference", 18, updateable=False, reference_to=["Lead"]),
            "ContactId": _f("reference", 18, updateable=False, reference_to=["Contact"]),
            "Status": _f("picklist", 40),
            "HasResponded": _f("boolean", createable=False, updateable=False, default=False),
            "Jomablue_Id__c": _jomablue_id(),
            "Jomablue_Category_Ids__c": _f("textarea", 32768, custom=True),
            "Jomablue_Categories__c": _f("textarea", 32768, custom=True),
            "Jomablue_Checked_In_At__c": _f("datetime", custom=True),
        },
    },
    "CampaignMemberStatus": {
        "key_prefix": "01Y",
        "custom": False,
        "fields": {
            **_system(),
            "CampaignId": _f("reference", 18, required=True, updateable=False,
                             reference_to=["Campaign"]),
            "Label": _f("string", 765, required=True),
            "HasResponded": _f("boolean", default=False),
            "IsDefault": _f("boolean", default=False),
            "SortOrder": _f("int"),
        },
    },
    "Jomablue_Lead_Capture__c": {
        "key_prefix": "a0J",
        "custom": True,
        "fields": {
            **_system(),
            "Name": _f("string", 80, createable=False, updateable=False),
            "Jomablue_Id__c": _jomablue_id(),
            "Lead__c": _f("reference", 18, reference_to=["Lead"], custom=True),
            "Contact__c": _f("reference", 18, reference_to=["Contact"], custom=True),
            "Campaign__c": _f("reference", 18, reference_to=["Campaign"], custom=True),
            "Vendor_Id__c": _f("string", 255, custom=True),
            "Vendor_Name__c": _f("string", 255, custom=True),
            "Captured_At__c": _f("datetime", custom=True),
            "Notes__c": _f("textarea", 32768, custom=True),
            "Tags__c": _f("textarea", 32768, custom=True),
        },
    },
    "Task": {
        "key_prefix": "00T",
        "custom": False,
        "fields": {
            **_system(),
            "Subject": _f("string", 255),
            "WhoId": _f("reference", 18, reference_to=["Lead", "Contact"]),
            "WhatId": _f("reference", 18, reference_to=["Campaign", "Account"]),
            "ActivityDate": _f("date"),
            "Description": _f("textarea", 32000),
            "Status": _f("picklist", 255, required=True, default="Not Started",
                         picklist=["Not Started", "In Progress", "Completed"]),
            "Priority": _f("picklist", 255, default="Normal", picklist=["High", "Normal", "Low"]),
            "OwnerId": _owner(),
            "Jomablue_Id__c": _jomablue_id(),
        },
    },
}


def field(sobject: str, name: str) -> Field | None:
    """Metadata of one field of the default data model, or None."""
    found: Field | None = OBJECTS.get(sobject, {}).get("fields", {}).get(name)
    return found
