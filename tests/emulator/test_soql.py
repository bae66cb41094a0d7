"""The SOQL tokenizer/parser/evaluator, directly and over /query (with simple-salesforce)."""

from __future__ import annotations

import pytest

from connector_devkit.emulator.soql import parse, tokenize


@pytest.fixture
def people(emu):
    org = emu.org
    rows = [
        ("O'Brien", "Irish Co", "obrien@example.com", "ep/1", "Web"),
        ("Smith", "acme", "smith@example.com", "ep/2", "Jomablue"),
        ("smith", "ACME", None, "EP/2", "Jomablue"),
        ("Back\\slash", "Path", "bs@example.com", "ep/3", None),
        ("100% Real", "Pct", "pct@example.com", "ep/4", "Other"),
    ]
    return [org.insert("Lead", {"LastName": ln, "Company": co, "Email": em, "Jomablue_Id__c": ext,
                                **({"LeadSource": src} if src else {})})
            for ln, co, em, ext, src in rows]


def names(api, where, order=" ORDER BY Jomablue_Id__c"):
    return [r["LastName"] for r in api.query(f"SELECT LastName FROM Lead WHERE {where}{order}")["records"]]


def test_string_escapes(api, people):
    assert names(api, r"LastName = 'O\'Brien'") == ["O'Brien"]
    assert names(api, r"LastName = 'Back\\slash'") == ["Back\\slash"]
    assert tokenize(r"'a\nb\t\"c\"'")[0].value == 'a\nb\t"c"'


def test_like_wildcards_and_escaped_percent(api, people):
    assert names(api, "LastName LIKE 'o%'") == ["O'Brien"]
    assert names(api, r"LastName LIKE '100\% R%'") == ["100% Real"]
    assert names(api, r"LastName LIKE '100\%'") == []
    assert names(api, "LastName LIKE 'Smit_'", "") == ["Smith", "smith"]


def test_text_is_case_insensitive_but_external_id_is_exact(api, people):
    assert sorted(names(api, "LastName = 'SMITH'")) == ["Smith", "smith"]
    assert sorted(names(api, "Company IN ('Acme')")) == ["Smith", "smith"]
    assert names(api, "Jomablue_Id__c = 'ep/2'") == ["Smith"]
    assert names(api, "Jomablue_Id__c IN ('EP/2', 'ep/9')") == ["smith"]


def test_and_binds_tighter_than_or(api, people):
    # parsed as A OR (B AND C): O'Brien matches through A alone
    assert names(api, "LastName = 'O\\'Brien' OR LastName = 'Smith' AND Email = null", "") == ["O'Brien", "smith"]
    assert names(api, "(LastName = 'O\\'Brien' OR LastName = 'Smith') AND Email = null") == ["smith"]
    assert names(api, "NOT LastName = 'Smith' AND Company = 'Path'") == ["Back\\slash"]


def test_null_semantics(api, people):
    assert names(api, "Email != null AND LeadSource != 'Jomablue'") == ["O'Brien", "Back\\slash", "100% Real"]
    assert names(api, "LeadSource NOT IN ('Jomablue', 'Web')") == ["Back\\slash", "100% Real"]


def test_ids_match_in_15_and_18_char_form(api, people):
    ids = f"'{people[0][:15]}', '{people[1]}'"
    rows = api.query(f"SELECT Id FROM Lead WHERE Id IN ({ids}) ORDER BY Id")["records"]
    assert {r["Id"] for r in rows} == {people[0], people[1]}
    assert all(len(r["Id"]) == 18 for r in rows)


def test_count_order_limit_offset(api, people):
    body = api.query("SELECT COUNT() FROM Lead WHERE Company = 'acme'")
    assert body == {"totalSize": 2, "done": True, "records": []}
    rows = api.query("SELECT Jomablue_Id__c FROM Lead ORDER BY Jomablue_Id__c DESC LIMIT 2 OFFSET 1")
    assert [r["Jomablue_Id__c"] for r in rows["records"]] == ["ep/3", "ep/2"]
    nulls = api.query("SELECT LeadSource FROM Lead ORDER BY LeadSource ASC NULLS LAST")["records"]
    assert nulls[-1]["LeadSource"] is None and nulls[0]["LeadSource"] == "Jomablue"


def test_result_shape_and_canonical_field_names(api, people):
    body = api.query("select lastname, ISCONVERTED, createddate from lead where jomablue_id__c = 'ep/1'")
    rec = body["records"][0]
    assert list(rec) == ["attributes", "LastName", "IsConverted", "CreatedDate"]
    assert rec["attributes"] == {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/{people[0]}"}
    assert rec["IsConverted"] is False
    assert rec["CreatedDate"][10] == "T"
    assert rec["CreatedDate"].endswith("+0000") and len(rec["CreatedDate"]) == 28


def test_dates_and_datetimes(emu, api):
    emu.org.insert("Campaign", {"Name": "Early", "StartDate": "2025-01-05"})
    emu.org.insert("Campaign", {"Name": "Late", "StartDate": "2025-09-10"})
    rows = api.query("SELECT Name, StartDate FROM Campaign WHERE StartDate >= 2025-02-01")["records"]
    assert [(r["Name"], r["StartDate"]) for r in rows] == [("Late", "2025-09-10")]
    assert api.query("SELECT COUNT() FROM Campaign WHERE CreatedDate > 2020-01-01T00:00:00Z")["totalSize"] == 2
    r = api.get("query", params={"q": "SELECT Name FROM Campaign WHERE StartDate = '2025-01-05'"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"


@pytest.mark.parametrize("soql,code", [
    ("SELECT FROM Lead", "MALFORMED_QUERY"),
    ("SELECT Id Lead", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE LastName = 'unterminated", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE (LastName = 'a'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE LastName = 'a' AND", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead LIMIT x", "MALFORMED_QUERY"),
    ("SELECT Shoe__c FROM Lead", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE Shoe__c = 'x'", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity", "INVALID_TYPE"),
    ("SELECT Id FROM Lead WHERE Id = 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id FROM Lead WHERE IsConverted = 'true'", "INVALID_QUERY_FILTER_OPERATOR"),
])
def test_query_errors(api, soql, code):
    r = api.get("query", params={"q": soql})
    assert r.status_code == 400
    assert r.json()[0]["errorCode"] == code and r.json()[0]["message"]


def test_parser_structure():
    q = parse("SELECT Id FROM Lead WHERE a = 1 OR b = 2 AND c = 3")
    assert q.where.op == "OR" and q.where.args[1].op == "AND"
    assert parse("select count() from Lead").count is True


def test_pagination_with_query_all(emu, sf):
    campaign = emu.org.insert("Campaign", {"Name": "Big"})
    for i in range(2500):
        emu.org.insert("Contact", {"LastName": f"C{i:04d}"})
    first = sf.query("SELECT Id, LastName FROM Contact ORDER BY LastName")
    assert first["totalSize"] == 2500 and first["done"] is False and len(first["records"]) == 2000
    assert "/query/" in first["nextRecordsUrl"]
    everything = sf.query_all("SELECT Id, LastName FROM Contact ORDER BY LastName")
    assert everything["totalSize"] == 2500
    assert [r["LastName"] for r in everything["records"]] == [f"C{i:04d}" for i in range(2500)]
    assert emu.calls_by_kind["query"] == 3  # first page, then first page + one more
    assert campaign
