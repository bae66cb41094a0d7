"""The writer's "never the data" check switches on the classifier: a field the org lacks is the
org's setup (the run stops, exit 2), one private record or one bad reference is that record's."""

from __future__ import annotations

import asyncio

import pytest

from connector.salesforce.results import RowAction
from connector.sync.model import Write
from connector.sync.writer import SalesforceWriter
from tests.salesforce.fakeorg import FakeOrg, failed, gateway

UPSERT = "composite/sobjects/Contact/Jomablue_Id__c"


def refused(code: str, message: str, fields: list[str] | None = None) -> dict[str, RowAction]:
    org = FakeOrg()
    org.on("PATCH", UPSERT, lambda seen: (200, [failed(code, message, fields)] * len(seen.body["records"])))
    writer = SalesforceWriter(gateway(org))
    writer.start_batch()
    writes = [Write("Contact", "upsert", {"Jomablue_Id__c": f"p/{n}", "LastName": "x"}, []) for n in range(2)]
    asyncio.run(writer.send(writes, "Jomablue_Id__c"))
    return {sobject: err.action for sobject, err in writer.org_refusals().items()}


@pytest.mark.parametrize(("code", "message", "fields", "org_wide"), [
    ("INVALID_FIELD", "No such column 'Nope__c' on sobject of type Contact", [], True),
    ("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", [], False),
    ("INVALID_CROSS_REFERENCE_KEY", "Record Type ID: this ID value isn't valid for the user: 012", ["RecordTypeId"],
     False),
    ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Email is required for partners", ["Email"], False),
])
def test_only_refusals_no_data_can_cause_are_org_wide(code, message, fields, org_wide):
    assert refused(code, message, fields) == ({"Contact": RowAction.ORG_SETUP} if org_wide else {})
