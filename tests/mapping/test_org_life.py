"""What an admin does to the org while the connector runs (issue 16), end to end through the CLI,
the in-memory queue and the emulator: record types named in the mapping, and a mapped field
deleted after preflight cached the describes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jbtest import cli, log_lines, open_config_state, sample, write_config

from connector.mapping import default_mapping_folder, load_mapping_set
from connector.mapping.model import refused_column
from connector_devkit.emulator import recordtypes

pytestmark = pytest.mark.e2e


def _mappings(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(default_mapping_folder(), folder, ignore=shutil.ignore_patterns("examples"))
    return folder


def _add_record_type(folder: Path, file: str, sobject: str, name: str, nth: int = 0) -> int:
    """`record_type: name` under the nth `object: sobject` of a mapping file; returns its line."""
    path = folder / file
    lines = path.read_text(encoding="utf-8").splitlines()
    i = [i for i, line in enumerate(lines) if line.strip() == f"object: {sobject}"][nth]
    lines.insert(i + 1, lines[i][: len(lines[i]) - len(lines[i].lstrip())] + f"record_type: {name}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return i + 2


def test_records_are_created_with_the_mapped_record_type_and_updates_leave_it(tmp_path, emu, memq):
    partner = recordtypes.add_record_type(emu.org, "Lead", "Partner_Lead")
    other = recordtypes.add_record_type(emu.org, "Lead", "Other_Lead", default=True)
    event_type = recordtypes.add_record_type(emu.org, "Campaign", "Event_Campaign")
    folder = _mappings(tmp_path)
    _add_record_type(folder, "person.yaml", "Lead", "Partner_Lead")
    _add_record_type(folder, "person.yaml", "Campaign", "Event_Campaign")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    first = sample("person")
    memq.publish(first)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stdout + res.stderr
    [lead] = emu.org.records("Lead")
    assert lead["RecordTypeId"] == partner
    assert [c["RecordTypeId"] for c in emu.org.records("Campaign")] == [event_type]

    emu.org.update(lead["Id"], {"RecordTypeId": other})        # an admin moves the Lead to another type
    memq.publish(sample("person", data__job_title="Head of Marketing",
                        generated_at="2025-09-11T01:00:00.000Z"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stdout + res.stderr
    [lead] = emu.org.records("Lead")
    assert lead["Title"] == "Head of Marketing"               # the update was written ...
    assert lead["RecordTypeId"] == other                      # ... and left the record type alone


def test_an_unknown_record_type_stops_the_run_before_any_message(tmp_path, emu, memq):
    recordtypes.add_record_type(emu.org, "Lead", "Partner_Lead")
    recordtypes.add_record_type(emu.org, "Lead", "Staff_Lead", available=False)
    folder = _mappings(tmp_path)
    line = _add_record_type(folder, "person.yaml", "Lead", "Partner_Leads")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stdout + res.stderr
    assert (f"{folder / 'person.yaml'}:{line}: Lead has no record type 'Partner_Leads' (available to the "
            "integration user: Partner_Lead)") in res.stderr
    assert memq.depth() == 1 and emu.org.records("Lead") == []
    res = cli("mapping", "validate", "--config", str(cfg), "--against-org")
    assert res.returncode == 2 and f"person.yaml:{line}: Lead has no record type" in res.stderr


def test_a_record_type_that_is_not_a_developer_name_is_refused_offline(tmp_path, emu, memq):
    folder = _mappings(tmp_path)
    line = _add_record_type(folder, "event.yaml", "Campaign", "'Event Campaign'")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res = cli("mapping", "validate", "--config", str(cfg))
    assert res.returncode == 2
    assert (f"event.yaml:{line}: campaign: record_type 'Event Campaign' is not a DeveloperName (letters, "
            "digits and single underscores, starting with a letter; the API name, not the label); did you "
            "mean 'Event_Campaign'?") in res.stderr


def test_a_field_deleted_while_the_connector_runs_stops_the_run_until_it_is_back(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0   # preflight cached the describes
    title = {o: emu.org.objects[o]["fields"].pop("Title") for o in ("Lead", "Contact")}  # the admin deletes it
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stdout + res.stderr
    where = load_mapping_set(None).locate("Lead", "Title")
    assert where and where.startswith(str(default_mapping_folder() / "person.yaml"))
    assert f"{where}: Lead.Title: Salesforce refuses it for every record (INVALID_FIELD: No such column " \
           "'Title' on sobject of type Lead)" in res.stderr
    assert memq.depth() == 1 and emu.org.records("Lead") == []
    state = open_config_state(cfg)
    try:
        assert state.describes() == {}                         # forgotten: the next preflight reads afresh
        assert state.quarantined() == []
    finally:
        state.close()

    res = cli("run", "--config", str(cfg), "--drain")           # the next run: preflight sees it is gone
    assert res.returncode == 2 and "field Lead.Title does not exist in the org" in res.stderr
    assert memq.depth() == 1

    for sobject, meta in title.items():                          # the admin restores the field
        emu.org.objects[sobject]["fields"]["Title"] = meta
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stdout + res.stderr
    assert memq.depth() == 0 and emu.org.records("Lead")[0]["Title"] == "Marketing Manager"


def test_the_refused_field_is_found_from_the_message_and_located_in_the_mapping():
    assert refused_column("No such column 'Title' on sobject of type Lead") == "Title"
    assert refused_column("entity is deleted") is None
    ms = load_mapping_set(None)
    assert ms.locate("lead", "title") == ms.locate("Lead", "Title")
    assert ms.locate("Lead", "RecordTypeId") is None and ms.locate("Account", "Name") is None


@pytest.mark.parametrize(("version", "needs"), [
    ("45.0", 'salesforce.api_version: "45.0" is below 46.0, which sObject Collections upsert needs'),
    ("51.0", 'salesforce.api_version: "51.0" is below 52.0, which the Sforce-Duplicate-Rule-Header'),
])
def test_a_too_low_api_version_fails_preflight_naming_the_setting(tmp_path, emu, memq, version, needs):
    cfg = write_config(tmp_path, emu, memq, salesforce__api_version=version)
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stdout + res.stderr
    assert any(line.get("reason", "").startswith(f"preflight: {needs}") for line in log_lines(res.stderr))
    assert memq.depth() == 1 and emu.api_calls == 0


def test_the_emulator_answers_record_types_and_tooling_as_salesforce_does(emu):
    """Over HTTPS: the describe's recordTypeInfos, the refusal of a record type the user may not
    use (the pasted real body), and a Tooling query inside a /composite request."""
    import requests

    from connector_devkit.emulator import automation

    usable = recordtypes.add_record_type(emu.org, "Lead", "Partner_Lead")
    hidden = recordtypes.add_record_type(emu.org, "Lead", "Staff_Lead", available=False)
    automation.add_validation_rule(emu.org, "Lead", "Needs_Company", "Company is required")
    base = f"{emu.url}/services/data/v62.0"
    session = requests.Session()
    session.verify = emu.ca_path
    session.headers["Authorization"] = f"Bearer {emu.issue_token()['access_token']}"
    infos = session.get(f"{base}/sobjects/Lead/describe").json()["recordTypeInfos"]
    assert [(i["developerName"], i["available"], i["master"]) for i in infos] == [
        ("Partner_Lead", True, False), ("Staff_Lead", False, False), ("Master", False, True)]
    refused = session.post(f"{base}/sobjects/Lead", json={"LastName": "Doe", "Company": "Acme",
                                                           "RecordTypeId": hidden})
    assert refused.status_code == 400
    assert refused.json() == [{"message": f"Record Type ID: this ID value isn't valid for the user: {hidden}",
                               "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": ["RecordTypeId"]}]
    assert session.post(f"{base}/sobjects/Lead", json={"LastName": "Doe", "Company": "Acme",
                                                        "RecordTypeId": usable}).status_code == 201
    soql = "SELECT ValidationName, EntityDefinition.QualifiedApiName FROM ValidationRule WHERE Active = true"
    sub = session.post(f"{base}/composite", json={"compositeRequest": [
        {"method": "GET", "url": f"/services/data/v62.0/tooling/query/?q={requests.utils.quote(soql)}",
         "referenceId": "v"}]}).json()["compositeResponse"][0]
    assert sub["httpStatusCode"] == 200
    assert [(r["ValidationName"], r["EntityDefinition"]["QualifiedApiName"]) for r in sub["body"]["records"]] == [
        ("Needs_Company", "Lead")]
