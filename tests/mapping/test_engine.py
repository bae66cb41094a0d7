"""Unit tables for the runtime pieces: transforms, conditions, paths, status policy, build modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.mapping import MappingError, StatusPolicy, load_mapping_set
from connector.mapping.conditions import ConditionError, parse_condition
from connector.mapping.paths import compile_path
from connector.mapping.transforms import NO_ARG, REGISTRY, CompileContext


def run(name: str, value: Any, arg: Any = NO_ARG, msg: dict | None = None, refs: dict | None = None,
        length: int | None = None) -> Any:
    fn = REGISTRY[name].factory(arg, CompileContext(length, "[not provided]"))
    return fn(value, msg or {}, refs or {})


@pytest.mark.parametrize(("name", "value", "arg", "kw", "expected"), [
    ("trim", "  a b  ", NO_ARG, {}, "a b"),
    ("trim", ["  a ", "b "], NO_ARG, {}, ["a", "b"]),
    ("lower", "ÄBC", NO_ARG, {}, "äbc"),
    ("upper", "abc", NO_ARG, {}, "ABC"),
    ("truncate", "🎉🎉🎉", 2, {}, "🎉🎉"),                      # characters, never bytes
    ("truncate", "김민준김민준", NO_ARG, {"length": 3}, "김민준"),   # field length when no argument
    ("truncate", "abc", NO_ARG, {"length": None}, "abc"),
    ("truncate", "👩🏽‍💻x", 1, {}, "👩"),                          # code points: never half a surrogate pair
    # local_date: an event at 15:30 UTC in Asia/Seoul is already the next day
    ("local_date", "2025-09-10T15:30:00.000Z", NO_ARG, {"refs": {"event.timezone": "Asia/Seoul"}}, "2025-09-11"),
    ("local_date", "2025-09-10T15:30:00.000Z", NO_ARG, {"msg": {"data": {"timezone": "Asia/Seoul"}}}, "2025-09-11"),
    ("local_date", "2025-09-10T15:30:00.000Z", NO_ARG, {}, "2025-09-10"),                     # UTC
    ("local_date", "2025-09-10T15:30:00.000Z", NO_ARG, {"refs": {"event.timezone": "Bad/Zone"}}, "2025-09-10"),
    ("local_date", "2025-09-10T15:30:00.000Z", NO_ARG,
     {"refs": {"event.timezone": "America/New_York"}, "msg": {"data": {"timezone": "Asia/Seoul"}}}, "2025-09-10"),
    ("local_date", "garbage", NO_ARG, {}, None),
    ("date", "2025-09-10T23:30:00.000Z", NO_ARG, {}, "2025-09-10"),
    ("datetime", "2025-09-10T23:04:49.88Z", NO_ARG, {}, "2025-09-10T23:04:49.880Z"),
    ("datetime", "2025-09-11T09:04:49+10:00", NO_ARG, {}, "2025-09-10T23:04:49.000Z"),
    ("datetime", "", NO_ARG, {}, None),
    ("datetime", "yesterday", NO_ARG, {}, None),
    ("join", ["a", "", None, "b"], NO_ARG, {}, "a;b"),
    ("join", ["a", "b"], ", ", {}, "a, b"),
    ("map", True, {True: "Yes", False: "No"}, {}, "Yes"),
    ("map", "true", {True: "Yes", False: "No"}, {}, "Yes"),
    ("map", "maybe", {True: "Yes"}, {}, "maybe"),
    ("map", "maybe", {True: "Yes", "_else": "Unknown"}, {}, "Unknown"),
    ("default", "", "fallback", {}, "fallback"),
    ("default", "x", "fallback", {}, "x"),
    ("placeholder", "  ", NO_ARG, {}, "[not provided]"),
    ("json", {"b": 1, "a": "김"}, NO_ARG, {}, '{"a":"김","b":1}'),
    ("json", {}, NO_ARG, {}, None),
    ("string", False, NO_ARG, {}, "false"),
    ("string", 1500, NO_ARG, {}, "1500"),
    ("boolean", "yes", NO_ARG, {}, True),
    ("boolean", "1", NO_ARG, {}, True),
    ("boolean", "no", NO_ARG, {}, False),
    ("boolean", "", NO_ARG, {}, None),
    ("number", "12.5", NO_ARG, {}, 12.5),
    ("number", "x", NO_ARG, {}, None),
])
def test_transform(name: str, value: Any, arg: Any, kw: dict, expected: Any) -> None:
    assert run(name, value, arg, **kw) == expected


def test_truncate_by_characters_not_bytes() -> None:
    text = "🎉" * 100
    out = run("truncate", text, 80)
    assert len(out) == 80 and len(out.encode("utf-8")) == 320
    out.encode("utf-8")  # no lone surrogate


MSG = {"data": {"cancelled": "true", "checked_in": False, "n": "1200", "name": "Ann",
                "tags": ["a", "b"], "empty": "", "metadata": {"fiscal-year": "FY26"}},
       "context": {"event_metadata": {"region": "UK"}}}


@pytest.mark.parametrize(("expr", "expected"), [
    ("data.cancelled == true", True),
    ("data.cancelled", True),
    ("data.checked_in == false", True),
    ("data.checked_in == 'false'", True),
    ("data.checked_in", False),
    ("not data.checked_in", True),
    ("data.name == 'ann'", False),                       # case-sensitive
    ("data.name != 'ann'", True),
    ("data.n == 1200", True),
    ("context.event_metadata.region in ['UK', 'US']", True),
    ("context.event_metadata.region not in ['UK', 'US']", False),
    ("exists(data.name) and empty(data.empty)", True),
    ("exists(data.missing)", False),
    ("empty(data.missing)", True),
    ("data.missing == null", True),
    ("data.tags[0] == 'a' and data.tags[1] == \"b\"", True),
    ("(data.checked_in or data.cancelled) and not empty(data.name)", True),
    ("data.checked_in or data.name == 'x'", False),
    ("data.metadata.fiscal-year == 'FY26'", True),
    ("data.tags[*] == 'b'", True),
    ("data.tags[*] == 'c'", False),
    ("data.tags[*] in ['x', 'a']", True),
    ("data.tags[*] != 'a'", False),
])
def test_condition(expr: str, expected: bool) -> None:
    cond, _ = parse_condition(expr)
    assert cond(MSG) is expected


@pytest.mark.parametrize(("expr", "column"), [
    ("data.x ==", 10), ("data.x = 1", 8), ("(data.x", 8), ("data.x 'a'", 8),
    ("data.x in ['a'", 15), ("data.x not 'a'", 12), ("and data.x", 1),
])
def test_condition_syntax_errors(expr: str, column: int) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(expr)
    assert info.value.column == column


@pytest.mark.parametrize(("path", "expected"), [
    ("data.name", "Ann"), ("data.tags[1]", "b"), ("data.tags[*]", ["a", "b"]),
    ("data.tags[5]", None), ("data.name.deeper", None), ("nothing.here", None),
])
def test_paths(path: str, expected: Any) -> None:
    assert compile_path(path)(MSG) == expected


def test_wildcard_collects_nested() -> None:
    msg = {"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": [{"c": 3}]}, {"x": 1}]}
    assert compile_path("a[*].b[*].c")(msg) == [1, 2, 3]


PERSON = StatusPolicy([], ["Registered", "Attended"], ["Cancelled"], "Registered")
FOLLOW = StatusPolicy([], [], [], "Registered")
LEAD = StatusPolicy([], ["Registered", "Captured", "Attended"], ["Cancelled"], "Registered")


@pytest.mark.parametrize(("policy", "previous", "new", "expected"), [
    (PERSON, None, "Registered", "Registered"),
    (PERSON, "Registered", "Attended", "Attended"),
    (PERSON, "Attended", "Registered", "Attended"),      # never backwards
    (PERSON, "Attended", "Cancelled", "Cancelled"),      # final wins
    (PERSON, "Cancelled", "Attended", "Cancelled"),      # and sticks
    (PERSON, "Cancelled", "Registered", "Cancelled"),
    (PERSON, "Registered", "Custom", "Custom"),          # outside the lists: the new one
    (PERSON, "Custom", "Registered", "Registered"),
    (FOLLOW, "Attended", "Registered", "Registered"),    # empty progression follows the latest
    (FOLLOW, "Registered", "Attended", "Attended"),
    (LEAD, "Attended", "Captured", "Attended"),
    (LEAD, "Registered", "Captured", "Captured"),
    (LEAD, "Captured", "Registered", "Captured"),
])
def test_status_merge(policy: StatusPolicy, previous: str | None, new: str, expected: str) -> None:
    assert policy.merge(previous, new) == expected


def test_status_for_and_labels() -> None:
    membership = load_mapping_set(None).for_type("person").membership
    assert membership is not None
    policy = membership.status
    assert policy.status_for({"data": {"cancelled": True, "checked_in": True}}) == "Cancelled"
    assert policy.status_for({"data": {"cancelled": "false", "checked_in": "true"}}) == "Attended"
    assert policy.status_for({}) == "Registered"
    assert policy.labels() == ["Cancelled", "Attended", "Registered"]


def test_build_modes_and_policies() -> None:
    rm = load_mapping_set(None).for_type("person")
    assert rm is not None and rm.person is not None
    contact = rm.person.contact
    msg = {"identifiers": {"id": "acme/event_person/1", "first_name": "A", "last_name": ""}}
    assert contact.build(msg, {}, "upsert") == {
        "FirstName": "A", "LastName": "[not provided]", "Jomablue_Id__c": "acme/event_person/1"}
    assert "Jomablue_Id__c" not in contact.build(msg, {}, "update")
    assert "Jomablue_Id__c" not in contact.build(msg, {}, "update", current={"Jomablue_Id__c": "x"})
    assert contact.build(msg, {}, "update", current={"Jomablue_Id__c": ""})["Jomablue_Id__c"] == "acme/event_person/1"
    assert contact.fields_with_policy("if_empty") == ["Jomablue_Id__c"]
    lead = rm.person.lead
    assert "LeadSource" in lead.build(msg, {}, "upsert")
    assert "LeadSource" not in lead.build(msg, {}, "update")
    assert rm.membership is not None
    assert rm.membership.field_for_ref("person.lead_id") == "LeadId"
    assert rm.membership.field_for_ref("nope") is None
    assert rm.membership.upsert_value(msg, {}) == "acme/event_person/1"
    assert rm.person.jomablue_id({"identifiers": {"id": "  x  "}}) == "x"
    assert rm.person.email({"identifiers": {"email": "  "}}) is None


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


EVENT = """resource_type: event
campaign:
  object: Campaign
  upsert_key: Jomablue_Id__c
  when: context.event_metadata.region == "UK" or data.metadata.region == "UK"
  fields:
    - {field: Jomablue_Id__c, source: identifiers.id}
    - {field: Name, source: data.name, default: {source: data.venue_name}, transforms: [trim]}
    - {field: OwnerId, value: 005000000000001AAA, when: data.metadata.region == "UK"}
statuses:
  - {label: Registered, default: true}
"""


def test_record_when_rule_when_and_default_source(tmp_path: Path) -> None:
    ms = load_mapping_set(_write(tmp_path / "m", {"event.yaml": EVENT}))
    rm = ms.for_type("event")
    assert rm is not None and rm.campaign is not None and ms.for_type("person") is None
    uk = {"identifiers": {"id": "e/1"}, "data": {"venue_name": " Hall ", "metadata": {"region": "UK"}}}
    us = {"identifiers": {"id": "e/1"}, "data": {"name": "N", "metadata": {"region": "US"}}}
    assert rm.campaign.applies(uk) and not rm.campaign.applies(us)
    assert rm.campaign.build(uk, {}) == {"Jomablue_Id__c": "e/1", "Name": "Hall", "OwnerId": "005000000000001AAA"}
    assert rm.campaign.build(us, {}) == {"Jomablue_Id__c": "e/1", "Name": "N"}
    assert ms.matching.placeholder == "[not provided]" and ms.matching.create_as == "Lead"


def test_version_changes_with_any_mapping(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", {"event.yaml": EVENT})
    before = load_mapping_set(folder).version
    assert load_mapping_set(folder).version == before
    (folder / "event.yaml").write_text(EVENT.replace("Name, source", "Name , source"), encoding="utf-8")
    assert load_mapping_set(folder).version != before


def test_load_raises_mapping_error_with_every_problem(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", {"event.yaml": EVENT.replace("trim]", "trim, nope]").replace(
        "source: identifiers.id", "source: identifiers.id, value: 1")})
    with pytest.raises(MappingError) as info:
        load_mapping_set(folder)
    assert len(info.value.problems) == 2
    assert all(p.severity == "error" for p in info.value.problems)
