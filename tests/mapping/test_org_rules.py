"""Validation rules that come from how real orgs behave (issue 9): status lengths, field-name case,
picklist values of the org (restricted → error, open → warning)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from connector.mapping import default_mapping_folder, validate_mapping_folder
from connector.salesforce import schema as sf_schema

from .helpers import describe_from_schema

LONG = "Attended the keynote and both workshops!!"  # 41 characters


def _copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    folder = tmp_path / "mappings"
    if not folder.exists():
        shutil.copytree(default_mapping_folder(), folder)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def _line(folder: Path, file: str, needle: str) -> int:
    lines = (folder / file).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def _objects(lead_sources: list[str], restricted: bool) -> dict:
    objects = copy.deepcopy(sf_schema.OBJECTS)
    for sobject in ("Lead", "Contact"):
        objects[sobject]["fields"]["LeadSource"].update(picklist=lead_sources, restricted=restricted)
    return objects


def test_a_status_label_over_40_characters_is_an_error_offline(tmp_path):
    assert len(LONG) == 41
    folder = _copy(tmp_path, "event.yaml", "  - {label: Captured, responded: true, default: false}\n",
                   "  - {label: Captured, responded: true, default: false}\n"
                   f"  - {{label: {LONG}, responded: true, default: false}}\n")
    errors = [str(p) for p in validate_mapping_folder(folder) if p.severity == "error"]
    assert errors == [f"{folder / 'event.yaml'}:{_line(folder, 'event.yaml', LONG)}: status '{LONG}' "
                      "is 41 characters; CampaignMember.Status holds 40"]
    forty = _copy(tmp_path / "b", "event.yaml", "  - {label: Captured, responded: true, default: false}\n",
                  "  - {label: Captured, responded: true, default: false}\n"
                  f"  - {{label: {LONG[:40]}, responded: true, default: false}}\n")
    assert [p for p in validate_mapping_folder(forty) if p.severity == "error"] == []


def test_field_names_match_the_org_case_insensitively(tmp_path):
    folder = _copy(tmp_path, "person.yaml", "- field: FirstName", "- field: firstname")
    problems = validate_mapping_folder(folder, describe_from_schema())
    assert [p.severity for p in problems] == ["warning"]
    assert "spelt FirstName in the org" in problems[0].message


def test_a_value_missing_from_a_restricted_picklist_is_an_error(tmp_path):
    describe = describe_from_schema(_objects(["Web", "Other"], restricted=True))
    problems = validate_mapping_folder(None, describe)
    folder = default_mapping_folder()
    errors = [p for p in problems if p.severity == "error"]
    assert errors and all("'Jomablue' is not a value of this restricted picklist" in p.message
                          for p in errors)
    line = _line(folder, "person.yaml", "value: Jomablue")
    assert any(p.file == str(folder / "person.yaml") and p.line == line for p in errors)


def test_a_value_missing_from_an_open_picklist_is_a_warning(tmp_path):
    describe = describe_from_schema(_objects(["Web", "Other"], restricted=False))
    problems = validate_mapping_folder(None, describe)
    assert [p for p in problems if p.severity == "error"] == []
    warnings = [p for p in problems if p.severity == "warning"]
    assert warnings and all("'Jomablue' is not a value of this picklist" in p.message for p in warnings)


def test_map_and_default_values_are_checked_too(tmp_path):
    folder = _copy(tmp_path, "person.yaml", "value: Jomablue\n",
                   "source: data.source\n        transforms: [{map: {a: Web, b: Jomablu}}, {default: Other}]\n")
    problems = validate_mapping_folder(folder, describe_from_schema(_objects(["Web", "Other", "Jomablue"],
                                                                             restricted=True)))
    errors = [p.message for p in problems if p.severity == "error"]
    assert any("'Jomablu' is not a value of this restricted picklist; did you mean 'Jomablue'?" in e
               for e in errors), problems


def test_the_default_org_model_passes_clean():
    problems = validate_mapping_folder(None, describe_from_schema())
    assert problems == []
