"""The gateway driven through its transport seam (MockTransport + FakeOrg), no HTTPS emulator:
composite subrequests classified like top-level calls, one failed subrequest never costs the
others' results, smaller collections for automation limits, storage full, write headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests

from connector.errors import BudgetExhausted, FatalError, SalesforceUnavailable, StorageFull
from connector.salesforce.results import RowAction
from tests.salesforce.fakeorg import PREFIX, FakeOrg, Seen, error, failed, gateway, ok, subresponse

UPSERT = "composite/sobjects/Lead/Jomablue_Id__c"
HEADERS = {"Sforce-Auto-Assign": "FALSE", "Sforce-Duplicate-Rule-Header": "allowSave=true"}


def leads(n: int) -> list[dict[str, Any]]:
    return [{"Jomablue_Id__c": f"p/{k}", "LastName": f"L{k}"} for k in range(n)]


def composite_of(answer_sub) -> Any:
    """A /composite route answering each subrequest with answer_sub(n, sub, seen)."""
    def answer(seen: Seen):
        subs = seen.body["compositeRequest"]
        return 200, {"compositeResponse": [answer_sub(n, sub, seen) for n, sub in enumerate(subs)]}
    return answer


def test_a_query_subrequest_over_the_concurrency_limit_is_retried_not_a_budget_stop():
    org = FakeOrg()
    page = {"totalSize": 0, "done": True, "records": []}
    org.on("POST", "composite", [
        (200, {"compositeResponse": [subresponse("q0", 200, page), subresponse("q1", 403, error(
            "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded."))]}),
        (200, {"compositeResponse": [subresponse("q0", 200, page), subresponse("q1", 200, page)]})])
    gw = gateway(org)
    assert asyncio.run(gw.query_many(["SELECT Id FROM Lead", "SELECT Id FROM Contact"])) == [[], []]
    assert len(org.calls("composite")) == 2 and gw.stats.retries == 1


def test_a_query_subrequest_naming_the_daily_limit_stops_the_run():
    org = FakeOrg()
    org.on("POST", "composite", [(200, {"compositeResponse": [
        subresponse("q0", 403, error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")),
        subresponse("q1", 200, {"done": True, "records": []})]})])
    with pytest.raises(BudgetExhausted):
        asyncio.run(gateway(org).query_many(["SELECT Id FROM Lead", "SELECT Id FROM Contact"]))
    assert len(org.calls("composite")) == 1


def test_a_5xx_query_subrequest_is_retried_like_a_top_level_5xx():
    org = FakeOrg()
    org.on("POST", "composite", [
        (200, {"compositeResponse": [subresponse("q0", 503, error("SERVER_UNAVAILABLE", "x")),
                                     subresponse("q1", 200, {"done": True, "records": [{"Id": "1"}]})]}),
        (200, {"compositeResponse": [subresponse("q0", 200, {"done": True, "records": [{"Id": "0"}]}),
                                     subresponse("q1", 200, {"done": True, "records": [{"Id": "1"}]})]})])
    assert asyncio.run(gateway(org).query_many(["SELECT Id FROM Lead", "SELECT Id FROM Contact"])) == \
        [[{"Id": "0"}], [{"Id": "1"}]]


def test_a_malformed_query_subrequest_is_poison_with_status_and_code():
    org = FakeOrg()
    org.on("POST", "composite", [(200, {"compositeResponse": [
        subresponse("q0", 400, error("MALFORMED_QUERY", "unexpected token")),
        subresponse("q1", 200, {"done": True, "records": []})]})])
    with pytest.raises(FatalError) as err:
        asyncio.run(gateway(org).query_many(["SELECT", "SELECT Id FROM Contact"]))
    assert (err.value.status, err.value.code) == (400, "MALFORMED_QUERY")


def test_get_many_answers_none_for_what_the_org_lacks():
    org = FakeOrg()
    org.on("POST", "composite", [(200, {"compositeResponse": [
        subresponse("d0", 200, {"name": "Lead"}), subresponse("d1", 404, error("NOT_FOUND", "no such"))]})])
    out = asyncio.run(gateway(org).get_many("describe", ["sobjects/Lead/describe", "sobjects/X__c/describe"], 5, "d"))
    assert out == [{"name": "Lead"}, None]


@pytest.mark.parametrize(("status", "code", "message"), [
    (503, "SERVER_UNAVAILABLE", "try again"),
    (403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded")])
def test_a_failed_collections_subrequest_keeps_the_others_and_only_its_rows_are_sent_again(status, code, message):
    org = FakeOrg()
    tries = {"n": 0}

    def sub(n, s, seen):
        records = s["body"]["records"]
        if n == 1 and tries["n"] == 0:
            tries["n"] += 1
            return subresponse(s["referenceId"], status, error(code, message))
        return subresponse(s["referenceId"], 200, ok(len(records)))
    org.on("POST", "composite", composite_of(sub))

    def single(seen: Seen):
        return 200, ok(len(seen.body["records"]))
    org.on("PATCH", UPSERT, single)
    gw = gateway(org)
    results = asyncio.run(gw.upsert("Lead", "Jomablue_Id__c", leads(450)))
    assert all(r.ok for r in results) and len(results) == 450
    # The first call carried 200 + 200 + 50; only subrequest c1's 200 records went again.
    first = org.calls("composite")[0].body["compositeRequest"]
    assert [len(s["body"]["records"]) for s in first] == [200, 200, 50]
    again = org.calls(UPSERT)
    assert len(again) == 1 and [r["Jomablue_Id__c"] for r in again[0].body["records"]] == \
        [f"p/{k}" for k in range(200, 400)]


@pytest.mark.parametrize(("status", "code", "message", "raised"), [
    (403, "INSUFFICIENT_ACCESS", "insufficient access rights", FatalError),
    (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", BudgetExhausted),
    (400, "STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", StorageFull)])
def test_a_subrequest_refused_for_good_raises_after_the_others_are_journaled(status, code, message, raised):
    org = FakeOrg()

    def sub(n, s, seen):
        if n == 1:
            return subresponse(s["referenceId"], status, error(code, message))
        return subresponse(s["referenceId"], 200, ok(len(s["body"]["records"])))
    org.on("POST", "composite", composite_of(sub))
    gw = gateway(org)
    journal: list = []
    gw.on_written = journal.extend
    with pytest.raises(raised) as err:
        asyncio.run(gw.upsert("Lead", "Jomablue_Id__c", leads(450)))
    assert err.value.code == code
    assert len(journal) == 250 and {row[1] for row in journal} == {"Lead"}
    assert len(org.seen) == 1          # nothing sent again


def test_too_many_soql_queries_shrinks_the_collection_until_the_trigger_copes():
    org = FakeOrg()
    sizes: list[int] = []

    def trigger(seen: Seen):
        records = seen.body["records"]
        sizes.append(len(records))
        if len(records) > 10:   # the org's trigger runs a query per record
            return 200, [failed("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                                "LeadTrigger: execution of AfterInsert caused by: System.LimitException: "
                                "Too many SOQL queries: 101")] * len(records)
        return 200, ok(len(records))
    org.on("PATCH", UPSERT, trigger)
    org.on("POST", "composite", composite_of(
        lambda n, s, seen: subresponse(s["referenceId"], *trigger(Seen("PATCH", UPSERT, s["body"], {})))))
    gw = gateway(org)
    results = asyncio.run(gw.upsert("Lead", "Jomablue_Id__c", leads(60)))
    assert all(r.ok for r in results)
    # 60 in one collection; then 50 + 10 in one composite call; then the 50 as five 10s.
    assert sizes == [60, 50, 10, 10, 10, 10, 10, 10]
    assert [len(c.body["compositeRequest"]) for c in org.calls("composite")] == [2, 5]


def test_a_trigger_that_fails_even_for_one_record_is_rejected_with_its_own_message():
    org = FakeOrg()
    sizes: list[int] = []
    text = "LeadTrigger: execution of AfterInsert caused by: System.LimitException: Too many SOQL queries: 101"

    def trigger(seen: Seen):
        sizes.append(len(seen.body["records"]))
        return 200, [failed("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", text)] * len(seen.body["records"])
    org.on("PATCH", UPSERT, trigger)
    [result] = asyncio.run(gateway(org).upsert("Lead", "Jomablue_Id__c", leads(1)))
    assert sizes == [1]                       # already alone: nothing smaller to try
    assert result.action is RowAction.REJECT and text in result.error.describe()


def test_a_wrapped_row_lock_is_retried_alone():
    org = FakeOrg()
    lock = ("LeadTrigger: execution of AfterInsert caused by: System.DmlException: first error: "
            "UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record")
    org.on("PATCH", UPSERT, [(200, [*ok(1), failed("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", lock)]), (200, ok(1))])
    results = asyncio.run(gateway(org).upsert("Lead", "Jomablue_Id__c", leads(2)))
    assert all(r.ok for r in results)
    assert [len(s.body["records"]) for s in org.calls(UPSERT)] == [2, 1]


def test_storage_full_stops_the_run_after_the_written_rows_are_journaled():
    org = FakeOrg()
    org.on("PATCH", UPSERT, [(200, [*ok(2), failed("STORAGE_LIMIT_EXCEEDED", "storage limit exceeded")])])
    gw = gateway(org)
    journal: list = []
    gw.on_written = journal.extend
    with pytest.raises(StorageFull, match="Setup → Storage Usage") as err:
        asyncio.run(gw.upsert("Lead", "Jomablue_Id__c", leads(3)))
    assert err.value.code == "STORAGE_LIMIT_EXCEEDED"
    assert [row[2]["Jomablue_Id__c"] for row in journal] == ["p/0", "p/1"]
    assert len(org.seen) == 1


def test_write_headers_go_on_the_composite_request_and_every_subrequest():
    org = FakeOrg()
    org.on("POST", "composite", composite_of(
        lambda n, s, seen: subresponse(s["referenceId"], 200, ok(len(s["body"]["records"])))))
    asyncio.run(gateway(org, headers=HEADERS).upsert("Lead", "Jomablue_Id__c", leads(250)))
    [call] = org.calls("composite")
    assert {k: call.headers.get(k) for k in HEADERS} == HEADERS
    assert all(s["httpHeaders"] == HEADERS for s in call.body["compositeRequest"])
    assert "collateSubrequests" not in call.body     # independent upserts may be collated


def test_ordered_writes_are_not_collated():
    org = FakeOrg()
    org.on("POST", "composite", composite_of(
        lambda n, s, seen: subresponse(s["referenceId"], 200, ok(len(s["body"]["records"]), "00v"))))
    members = [{"Jomablue_Member_Key__c": f"m/{k}", "CampaignId": "701000000000001AAA"} for k in range(300)]
    asyncio.run(gateway(org).upsert("CampaignMember", "Jomablue_Member_Key__c", members, serial=True))
    [call] = org.calls("composite")
    assert call.body["collateSubrequests"] is False
    assert [s["url"] for s in call.body["compositeRequest"]] == \
        [f"{PREFIX}composite/sobjects/CampaignMember/Jomablue_Member_Key__c"] * 2


def test_a_single_collection_carries_the_write_headers():
    org = FakeOrg()
    org.on("PATCH", UPSERT, [(200, ok(1))])
    asyncio.run(gateway(org, headers=HEADERS).upsert("Lead", "Jomablue_Id__c", leads(1)))
    assert org.calls(UPSERT)[0].headers["Sforce-Auto-Assign"] == "FALSE"


def test_a_dropped_connection_is_retried_and_a_storm_stops_the_run():
    org = FakeOrg()
    org.on("GET", "limits/", [(200, {})])
    drops = {"n": 1}
    inner = org.__call__

    def flaky(request):
        if "limits" in (request.url or "") and drops["n"]:
            drops["n"] -= 1
            raise requests.ConnectionError("reset")
        return inner(request)
    from connector.salesforce.transport import MockTransport, mount
    gw = gateway(org)
    mount(gw.session, MockTransport(flaky))
    asyncio.run(gw.limits())
    assert gw.stats.retries == 1

    drops["n"] = 99
    with pytest.raises(SalesforceUnavailable, match="after 3 attempts"):
        asyncio.run(gw.limits())


def test_an_unmocked_path_is_a_not_found_so_a_test_cannot_pass_by_accident():
    org = FakeOrg()
    assert asyncio.run(gateway(org).describe("Nope__c")) is None


def test_ordered_writes_stop_sending_once_the_org_is_full():
    org = FakeOrg()
    org.on("POST", "composite", composite_of(lambda n, s, seen: subresponse(
        s["referenceId"], 200,
        [failed("STORAGE_LIMIT_EXCEEDED", "storage limit exceeded")] * len(s["body"]["records"]))))
    members = [{"Jomablue_Member_Key__c": f"m/{k}", "CampaignId": "701000000000001AAA"} for k in range(1100)]
    with pytest.raises(StorageFull):
        asyncio.run(gateway(org).upsert("CampaignMember", "Jomablue_Member_Key__c", members, serial=True))
    assert len(org.seen) == 1       # the second group (the last 100) was never sent
