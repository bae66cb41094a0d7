"""The one classifier, row by row: every row of both tables has an example here, in the
context it is meant for (top-level call or composite subrequest, read or write), and the
exception each whole-request answer becomes."""

from __future__ import annotations

import pytest

from connector.errors import BudgetExhausted, FatalError, StorageFull, TransientError
from connector.salesforce.classify import (
    REQUEST_TABLE,
    ROW_TABLE,
    Failure,
    RowAction,
    Scope,
    Verb,
    is_poison,
    request_error,
    request_rule,
    row_rule,
)
from connector.salesforce.results import RowResult

TOP, SUB = Scope.TOP_LEVEL, Scope.SUBREQUEST
READ, WRITE = Verb.READ, Verb.WRITE

# (status, code, message, scope, verb) → the Failure it must be; each row of REQUEST_TABLE is
# reached by at least one example (checked below), at the top level and inside a composite.
REQUEST_EXAMPLES = [
    ((None, "", "transport error ConnectionError", TOP, READ), Failure.RETRY),
    ((None, "", "", SUB, WRITE), Failure.RETRY),                      # a subresponse missing
    ((403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", TOP, READ), Failure.BUDGET),
    ((403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", SUB, WRITE), Failure.BUDGET),
    ((403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded.", TOP, WRITE),
     Failure.RETRY),
    ((403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded", SUB, WRITE), Failure.RETRY),
    ((403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded", SUB, READ), Failure.RETRY),
    ((400, "STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", TOP, WRITE), Failure.STORAGE_FULL),
    ((400, "STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", SUB, WRITE), Failure.STORAGE_FULL),
    ((503, "SERVER_UNAVAILABLE", "x", TOP, READ), Failure.RETRY),
    ((500, "UNKNOWN_EXCEPTION", "An unexpected error occurred", SUB, WRITE), Failure.RETRY),
    ((502, "", "<html>Bad Gateway</html>", SUB, READ), Failure.RETRY),
    ((401, "INVALID_SESSION_ID", "Session expired or invalid", TOP, READ), Failure.RENEW_SESSION),
    ((401, "INVALID_SESSION_ID", "Session expired or invalid", SUB, READ), Failure.FATAL),
    ((404, "NOT_FOUND", "The requested resource does not exist", TOP, READ), Failure.ABSENT),
    ((404, "NOT_FOUND", "The requested resource does not exist", SUB, READ), Failure.ABSENT),
    ((404, "NOT_FOUND", "The requested resource does not exist", SUB, WRITE), Failure.FATAL),
    ((403, "API_DISABLED_FOR_ORG", "API is not enabled for this Organization or Partner", TOP, READ), Failure.FATAL),
    ((400, "API_DISABLED_FOR_ORG", "API is not enabled", SUB, READ), Failure.FATAL),
    ((403, "API_CURRENTLY_DISABLED", "API is disabled for this User", TOP, WRITE), Failure.FATAL),
    ((400, "MALFORMED_QUERY", "unexpected token: SELEKT", TOP, READ), Failure.POISON),
    ((400, "MALFORMED_QUERY", "SOQL statements can not be longer than 100000 characters", SUB, READ), Failure.POISON),
    ((400, "JSON_PARSER_ERROR", "Cannot deserialize instance of double", SUB, WRITE), Failure.POISON),
    ((414, "", "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>", TOP, READ), Failure.POISON),
    ((431, "", "<h1>Bad Message 431</h1>", TOP, READ), Failure.POISON),
    ((403, "INSUFFICIENT_ACCESS", "insufficient access rights", TOP, WRITE), Failure.FATAL),
    ((300, "", "[]", TOP, WRITE), Failure.FATAL),
]


@pytest.mark.parametrize(("args", "expected"), REQUEST_EXAMPLES,
                         ids=[f"{a[0]}-{a[1] or 'none'}-{a[3].value}-{a[4].value}" for a, _ in REQUEST_EXAMPLES])
def test_each_whole_request_answer_has_its_action(args, expected):
    status, code, message, scope, verb = args
    assert request_rule(status, code, message, scope=scope, verb=verb).failure is expected


def test_every_row_of_the_request_table_has_an_example():
    reached = {id(request_rule(s, c, m, scope=sc, verb=v)) for (s, c, m, sc, v), _ in REQUEST_EXAMPLES}
    assert reached == {id(rule) for rule in REQUEST_TABLE}


@pytest.mark.parametrize(("failure", "exc_type"), [
    (Failure.RETRY, TransientError), (Failure.BUDGET, BudgetExhausted), (Failure.STORAGE_FULL, StorageFull),
    (Failure.ABSENT, FatalError), (Failure.POISON, FatalError), (Failure.FATAL, FatalError)])
def test_each_action_becomes_its_exception_with_status_and_code(failure, exc_type):
    exc = request_error(failure, "query", 400, "SOME_CODE", "the message")
    assert type(exc) is exc_type and (exc.status, exc.code) == (400, "SOME_CODE")


def test_storage_full_says_what_an_admin_does():
    exc = request_error(Failure.STORAGE_FULL, "collections_create", 400, "STORAGE_LIMIT_EXCEEDED", "x")
    assert "Setup → Storage Usage" in str(exc) and "messages stay queued" in str(exc)


@pytest.mark.parametrize(("status", "code", "poison"), [
    (400, "MALFORMED_QUERY", True), (414, "", True), (431, None, True), (400, "JSON_PARSER_ERROR", True),
    (400, "API_DISABLED_FOR_ORG", False), (400, "REQUEST_LIMIT_EXCEEDED", False), (404, "NOT_FOUND", False),
    (403, "INSUFFICIENT_ACCESS", False), (None, None, False)])
def test_poison_is_what_the_request_carries(status, code, poison):
    assert is_poison(FatalError("x", status=status, code=code)) is poison


LOCK = ("LeadTrigger: execution of AfterInsert caused by: System.DmlException: Update failed. First exception on "
        "row 0; first error: UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record: []")
SOQL_101 = "LeadTrigger: execution of AfterInsert caused by: System.LimitException: Too many SOQL queries: 101"
CPU = "LeadTrigger: System.LimitException: Apex CPU time limit exceeded"

# (code, message, shrinkable) → the RowAction; each row of ROW_TABLE is reached (checked below).
ROW_EXAMPLES = [
    (("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", True), RowAction.RETRY_LATER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", LOCK, True), RowAction.RETRY_LATER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", LOCK, False), RowAction.RETRY_LATER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "LeadFlow: Request timed out", True), RowAction.RETRY_LATER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", SOQL_101, True), RowAction.RETRY_SMALLER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", CPU, True), RowAction.RETRY_SMALLER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", CPU, False), RowAction.RETRY_LATER),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", SOQL_101, False), RowAction.REJECT),
    (("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "LeadTrigger: Leads from Acme are not accepted", True),
     RowAction.REJECT),
    (("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Company must not be 'n/a'", True), RowAction.REJECT),
    (("CANNOT_EXECUTE_FLOW_TRIGGER", "The flow failed to access the value", True), RowAction.REJECT),
    (("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", True), RowAction.CONVERTED_LEAD),
    (("DUPLICATE_VALUE", "Already a campaign member.", True), RowAction.ALREADY_A_MEMBER),
    (("DUPLICATE_VALUE", "duplicate value found: Jomablue_Id__c duplicates value on record with id: 00Q", True),
     RowAction.DUPLICATE_KEY),
    (("ENTITY_IS_DELETED", "entity is deleted", True), RowAction.GONE),
    (("INVALID_CROSS_REFERENCE_KEY", "Record Type ID: this ID value isn't valid for the user: 012", True),
     RowAction.BAD_REFERENCE),
    (("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", True), RowAction.NO_ACCESS),
    (("STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", True), RowAction.ORG_FULL),
    (("INVALID_FIELD", "No such column 'Nope__c' on sobject of type Lead", True), RowAction.ORG_SETUP),
    (("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: X", True), RowAction.ORG_SETUP),
    (("INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "insufficient access rights on cross-reference id", True),
     RowAction.ORG_SETUP),
    (("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value for restricted picklist field: X", True),
     RowAction.ORG_SETUP),
    (("INVALID_TYPE", "sObject type 'X' is not supported", True), RowAction.ORG_SETUP),
    (("NOT_FOUND", "The requested resource does not exist", True), RowAction.ORG_SETUP),
]


@pytest.mark.parametrize(("args", "expected"), ROW_EXAMPLES,
                         ids=[f"{a[0]}-{n}" for n, (a, _) in enumerate(ROW_EXAMPLES)])
def test_each_record_error_has_its_action(args, expected):
    code, message, shrinkable = args
    rule = row_rule(code, message, shrinkable=shrinkable)
    assert rule is not None and rule.action is expected


def test_every_row_of_the_row_table_has_an_example():
    reached = {id(row_rule(c, m, shrinkable=s)) for (c, m, s), _ in ROW_EXAMPLES}
    assert reached == {id(rule) for rule in ROW_TABLE}


def test_an_unknown_record_error_is_rejected_with_salesforces_own_words():
    r = RowResult.from_json({"id": None, "success": False, "errors": [
        {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Company must not be 'n/a'",
         "fields": ["Company"]}]})
    assert r.action is RowAction.REJECT
    assert r.error is not None and r.error.describe() == \
        "Salesforce FIELD_CUSTOM_VALIDATION_EXCEPTION: Company must not be 'n/a' (field Company)"
    assert RowResult.failed("SOMETHING_NEW", "x").action is RowAction.REJECT


def test_a_trigger_rejection_keeps_the_automations_message():
    text = "LeadTrigger: execution of BeforeInsert caused by: Leads from Acme are not accepted: Trigger.LeadTrigger"
    r = RowResult.from_json({"success": False, "errors": [
        {"statusCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "message": text, "fields": []}]})
    assert r.action is RowAction.REJECT and text in r.error.describe()
