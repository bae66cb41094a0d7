"""Offline validation (one broken folder per defect) and checks against a describe built from sf_schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connector.mapping import (
    MappingError,
    Problem,
    default_mapping_folder,
    load_mapping_set,
    validate_mapping_folder,
)
from connector.salesforce import schema as sf_schema

from .helpers import HERE, describe_from_schema

BROKEN = HERE / "broken"

# defect folder -> every problem it must produce, exactly, as `file:line: message`
EXPECTED: dict[str, list[str]] = {
    "yaml-syntax-error": [
        "person.yaml:15: YAML syntax error: an unclosed { ... } mapping: close it with '}' (it opened at line 14)"],
    # One mistake, one error: the misspelt key is not also reported as a missing 'source'.
    "unknown-key": ["person.yaml:15: person contact field rule: unknown key 'sorce' (did you mean 'source'?)"],
    "missing-field": ["person.yaml:15: person contact field rule: missing 'field'"],
    "source-and-value": [
        "person.yaml:16: person contact field Jomablue_Id__c: give only one of 'source', 'value' or 'ref' "
        "(found source and value)"],
    "role-not-allowed": [
        "person.yaml:15: role 'capture' is not allowed in a person mapping "
        "(allowed: matching, person, campaign, membership)"],
    "unknown-transform": [
        "person.yaml:18: person contact field Jomablue_Id__c: unknown transform 'titlecase' (known: trim, "
        "lower, upper, truncate, local_date, date, datetime, join, map, default, placeholder, json, "
        "string, boolean, number)"],
    "bad-transform-argument": [
        "person.yaml:16: person contact field Jomablue_Id__c: transform 'truncate': truncate takes a "
        "positive whole number of characters"],
    "transform-takes-no-argument": [
        "person.yaml:16: person contact field Jomablue_Id__c: transform 'trim' takes no argument"],
    "condition-does-not-parse": [
        "person.yaml:16: person contact field Jomablue_Id__c: cannot parse condition "
        "'data.checked_in = true': unexpected character '=' at column 17"],
    "unknown-ref": [
        "person.yaml:15: person contact field AccountId: unknown ref 'account.id' (known: campaign.id, "
        "session_campaign.id, person.id, person.lead_id, person.contact_id, status, categories.names, "
        "event.timezone)"],
    "upsert-key-not-mapped": [
        "person.yaml:12: person contact: upsert key 'Jomablue_Id__c' is not mapped by any field rule"],
    "duplicate-field": [
        "person.yaml:16: person contact field Email: duplicate target field (first mapped at line 15)"],
    "truncate-length-unknown": [
        "person.yaml:15: warning: person contact field Nickname__c: truncate on Contact.Nickname__c: "
        "length unknown, add an argument or validate --against-org"],
    "unknown-source-path": [
        "person.yaml:15: warning: person contact field Title: path 'data.jobtitle' is not in any known "
        "person payload (did you mean 'data.job_title'?)"],
    "undeclared-status": [
        "person.yaml:23: status 'Canceled' is not declared in event.yaml 'statuses'",
        "person.yaml:26: status 'Canceled' is not declared in event.yaml 'statuses'"],
    "unknown-file-name": [
        "persons.yaml:1: unknown mapping file 'persons.yaml' (expected one of event.yaml, person.yaml, "
        "session_participation.yaml, lead.yaml)"],
    "resource-type-mismatch": [
        "lead.yaml:2: resource_type 'person' does not match the file name (expected 'lead')"],
    "wrong-types": [
        "person.yaml:3: matching 'email' must be true or false, not 'sometimes'",
        "person.yaml:4: matching 'create_as' must be Lead or Contact, not 'Account'",
        "person.yaml:16: person contact: 'fields' must be a list"],
    "missing-required-role": ["event.yaml:1: an event mapping needs a 'campaign' section"],
}


def test_every_broken_folder_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("defect", sorted(EXPECTED))
def test_broken_folder(defect: str) -> None:
    folder = BROKEN / defect
    problems = validate_mapping_folder(folder)
    assert [str(p) for p in problems] == [f"{folder / e}" for e in EXPECTED[defect]]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        with pytest.raises(MappingError) as info:
            load_mapping_set(folder)
        assert info.value.problems == problems
    else:
        load_mapping_set(folder)  # warnings alone never stop the connector


def test_problem_str() -> None:
    assert str(Problem("m/person.yaml", 3, "bad")) == "m/person.yaml:3: bad"
    assert str(Problem("m/person.yaml", 3, "meh", "warning")) == "m/person.yaml:3: warning: meh"


def test_missing_folder_and_missing_files(tmp_path: Path) -> None:
    assert [str(p) for p in validate_mapping_folder(tmp_path / "nope")] == [
        f"{tmp_path / 'nope'}: mapping folder not found"]
    # An empty folder is a configuration error (issue 16: it used to skip every message).
    with pytest.raises(MappingError, match="no mapping file in this folder"):
        load_mapping_set(tmp_path)
    (tmp_path / "event.yaml").write_bytes((default_mapping_folder() / "event.yaml").read_bytes())
    ms = load_mapping_set(tmp_path)  # some files: the other resource types are skipped
    assert ms.for_type("person") is None and ms.for_type("event") is not None
    assert str(Problem("mapping.path", 0, "bad")) == "mapping.path: bad"


# ---------------------------------------------------------------------------------------------
# Against the org


def test_defaults_have_no_problems_offline_or_against_the_org() -> None:
    assert validate_mapping_folder(None) == []
    assert validate_mapping_folder(None, describe_from_schema()) == []


@pytest.fixture
def copy_defaults(tmp_path: Path):
    def make(file: str, old: str, new: str) -> Path:
        folder = tmp_path / "mappings"
        shutil.copytree(default_mapping_folder(), folder)
        path = folder / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) >= 1, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return folder
    return make


def _line(folder: Path, file: str, needle: str) -> int:
    for i, line in enumerate((folder / file).read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


ORG_CASES = [
    # (file, old, new, line needle, message)
    ("person.yaml", "      - field: FirstName\n        source: identifiers.first_name",
     "      - field: FirstNme\n        source: identifiers.first_name", "FirstNme",
     "field Lead.FirstNme does not exist in the org; did you mean 'FirstName'?"),
    ("lead.yaml", "object: Jomablue_Lead_Capture__c", "object: Jomablue_Lead_Capture_c",
     "Jomablue_Lead_Capture_c", "object 'Jomablue_Lead_Capture_c' does not exist in the org"),
    ("person.yaml", "{field: CampaignId, ref: campaign.id, overwrite: on_create}",
     "{field: CampaignId, ref: campaign.id}", "field: CampaignId",
     "field CampaignMember.CampaignId is not updateable; use 'overwrite: on_create'"),
    ("lead.yaml", "    - {field: Lead__c, ref: person.lead_id}",
     "    - {field: Lead__c, ref: person.lead_id}\n    - {field: Name, source: data.vendor_name}",
     "field: Name, source: data.vendor_name",
     "field Jomablue_Lead_Capture__c.Name is not createable"),
    ("person.yaml", "    object: Lead\n    upsert_key: Jomablue_Id__c", "    object: Lead\n    upsert_key: Email",
     "upsert_key: Email", "upsert key Lead.Email is not an External ID field"),
    ("event.yaml", "      source: data.timezone\n      transforms: [trim, truncate]",
     "      source: data.timezone\n      transforms: [local_date]", "source: data.timezone",
     "Campaign.Jomablue_Timezone__c is a string field but the rule produces a date "
     "(remove local_date/date or map a date field)"),
    ("event.yaml", "      source: data.start_time\n      transforms: [local_date]",
     "      source: data.start_time", "source: data.start_time",
     "Campaign.StartDate is a date field but the rule produces text; add a 'local_date or date' transform"),
    ("event.yaml", "      value: true", "      value: \"yes\"", "value: \"yes\"",
     "Campaign.IsActive is a boolean field: constant 'yes' does not fit (expected true or false)"),
    ("person.yaml", "      - field: LeadSource\n        value: Jomablue",
     "      - field: Status\n        value: Open", "value: Open",
     "Lead.Status: 'Open' is not a value of this restricted picklist"),
    ("person.yaml", "transforms: [datetime]", "transforms: [datetime, truncate]",
     "transforms: [datetime, truncate]", "truncate on CampaignMember.Jomablue_Checked_In_At__c: length unknown, "
     "add an argument"),
    ("event.yaml", "source: data.name\n      transforms: [trim, truncate]",
     "source: data.name\n      transforms: [trim, {truncate: 100}]", "{truncate: 100}",
     "truncate on Campaign.Name: 100 is longer than the field (80)"),
]


def _needle_line(folder: Path, file: str, needle: str) -> int:
    if "\n" in needle:
        needle = needle.split("\n")[0]
    return _line(folder, file, needle)


@pytest.mark.parametrize(("file", "old", "new", "needle", "message"), ORG_CASES,
                         ids=[c[4][:40] for c in ORG_CASES])
def test_against_org(copy_defaults, file: str, old: str, new: str, needle: str, message: str) -> None:
    folder = copy_defaults(file, old, new)
    offline = [p for p in validate_mapping_folder(folder) if p.severity == "error"]
    assert offline == []
    problems = validate_mapping_folder(folder, describe_from_schema())
    expected = f"{folder / file}:{_needle_line(folder, file, needle)}: {message}"
    assert [str(p) for p in problems] == [expected]


def test_campaign_member_status_checks() -> None:
    objects = dict(sf_schema.OBJECTS)
    cms = dict(objects["CampaignMemberStatus"])
    cms["fields"] = {**cms["fields"], "Label": {**cms["fields"]["Label"], "length": 9}}
    objects["CampaignMemberStatus"] = cms
    problems = validate_mapping_folder(None, describe_from_schema(objects))
    folder = default_mapping_folder()
    assert [str(p) for p in problems] == [
        f"{folder / 'event.yaml'}:{_line(folder, 'event.yaml', 'label: Registered')}: "
        "status 'Registered' is longer than CampaignMemberStatus.Label (9)"]
    del objects["CampaignMemberStatus"]
    problems = validate_mapping_folder(None, describe_from_schema(objects))
    assert [str(p) for p in problems] == [
        f"{folder / 'event.yaml'}:{_line(folder, 'event.yaml', 'statuses:')}: "
        "CampaignMemberStatus is not createable in the org"]


def test_truncate_uses_org_length_when_describe_given() -> None:
    objects = dict(sf_schema.OBJECTS)
    lead = dict(objects["Lead"])
    lead["fields"] = {**lead["fields"], "FirstName": {**lead["fields"]["FirstName"], "length": 3}}
    objects["Lead"] = lead
    rm = load_mapping_set(None, describe=describe_from_schema(objects)).for_type("person")
    assert rm is not None and rm.person is not None
    assert rm.person.lead.build({"identifiers": {"first_name": "김민준님"}}, {})["FirstName"] == "김민준"


# ---------------------------------------------------------------------------------------------
# One mistake, one error that says what to check (issue 10)

ONE_MISTAKE = [
    # (file, old, new, the one error, its line needle)
    ("person.yaml", "  lead:\n    object: Lead", "  lead:\n\tobject: Lead",
     "YAML syntax error: a tab character: indent with spaces only", "\tobject: Lead"),
    ("event.yaml", "    - field: Name", "    - field: Name: x",
     "YAML syntax error: a ':' where YAML did not expect one: quote a value", "field: Name: x"),
    ("person.yaml", "    object: Lead\n    upsert_key: Jomablue_Id__c",
     "    object: Lead\n     upsert_key: Jomablue_Id__c",
     "check this line's indentation", "     upsert_key: Jomablue_Id__c"),
    ("person.yaml", "membership:", "membershp:", "unknown key 'membershp' (did you mean 'membership'?)", "membershp"),
    ("person.yaml", "transforms: [trim, truncate]\n      - field: LastName",
     "transforms: [trim, trunc]\n      - field: LastName",
     "unknown transform 'trunc' (did you mean 'truncate'?)", "trunc]"),
    ("person.yaml", "  lead:\n    object: Lead\n    upsert_key", "  lead:\n    objet: Lead\n    upsert_key",
     "unknown key 'objet' (did you mean 'object'?)", "objet"),
    ("session_participation.yaml", "{field: Status, ref: status}", "{field: Status, ref: statu}",
     "unknown ref 'statu' (did you mean 'status'?)", "ref: statu}"),
]


@pytest.mark.parametrize("file,old,new,message,needle", ONE_MISTAKE, ids=[c[3][:30] for c in ONE_MISTAKE])
def test_one_mistake_gives_one_error_that_says_what_to_check(copy_defaults, file, old, new, message, needle):
    folder = copy_defaults(file, old, new)
    errors = [p for p in validate_mapping_folder(folder) if p.severity == "error"]
    assert len(errors) == 1, [str(p) for p in errors]
    assert message in errors[0].message and errors[0].file.endswith(file)
    assert errors[0].line == _line(folder, file, needle)


def test_a_broken_event_yaml_does_not_cascade_into_the_files_that_use_its_statuses(copy_defaults):
    folder = copy_defaults("event.yaml", "statuses:", "statuses: [oops\nx:")
    errors = [str(p) for p in validate_mapping_folder(folder) if p.severity == "error"]
    assert len(errors) == 1 and "event.yaml" in errors[0] and "unclosed [ ... ] list" in errors[0], errors


def test_a_mistyped_source_path_gets_a_did_you_mean_warning(copy_defaults):
    folder = copy_defaults("person.yaml", "source: identifiers.first_name", "source: identifiers.firstname")
    problems = validate_mapping_folder(folder)
    assert [p.severity for p in problems] == ["warning"]
    assert "(did you mean 'identifiers.first_name'?)" in problems[0].message
