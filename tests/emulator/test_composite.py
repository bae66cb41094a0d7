"""POST /composite: independent query subrequests in one call, counted once, limits enforced."""

from __future__ import annotations

from urllib.parse import urlencode


def sub(n: int, soql: str) -> dict:
    return {"method": "GET", "url": f"/services/data/v62.0/query/?{urlencode({'q': soql})}", "referenceId": f"q{n}"}


def test_five_queries_in_one_call(api, emu):
    emu.org.insert("Lead", {"LastName": "김", "Company": "C", "Email": "kim@example.com"})
    emu.reset_counters()
    reqs = [sub(0, "SELECT Id, LastName FROM Lead WHERE Email = 'KIM@example.com'"),
            sub(1, "SELECT COUNT() FROM Contact"),
            sub(2, "SELECT Nope FROM Lead")]
    r = api.post("composite", json={"allOrNone": False, "compositeRequest": reqs})
    assert r.status_code == 200, r.text
    out = {x["referenceId"]: x for x in r.json()["compositeResponse"]}
    assert out["q0"]["httpStatusCode"] == 200 and out["q0"]["body"]["records"][0]["LastName"] == "김"
    assert out["q1"]["body"]["totalSize"] == 0
    assert out["q2"]["httpStatusCode"] == 400 and out["q2"]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert emu.api_calls == 1 and emu.calls_by_kind["composite"] == 1
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_more_than_five_queries_is_refused(api):
    reqs = [sub(n, "SELECT Id FROM Lead") for n in range(6)]
    r = api.post("composite", json={"compositeRequest": reqs})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
