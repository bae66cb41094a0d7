"""salesforce/ (deployable metadata) is generated from connector/salesforce/schema.py and agrees with it."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from connector.salesforce import schema as sf_schema
from connector_devkit import metadata as sfmeta

REPO = Path(__file__).resolve().parent.parent
NS = {"md": sfmeta.NAMESPACE}
Q = "{" + sfmeta.NAMESPACE + "}"


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def _text(elem: ET.Element, tag: str) -> str | None:
    child = elem.find(f"md:{tag}", NS)
    return None if child is None else child.text


CUSTOM = sfmeta.custom_fields()
RENDERED = sfmeta.render_all()


def test_committed_tree_equals_render_all() -> None:
    problems = sfmeta.check(REPO)
    assert problems == [], (
        "salesforce/ is out of date with connector/salesforce/schema.py; run "
        "`python -m connector_devkit.metadata` and commit the result:\n" + "\n".join(problems)
    )


def test_there_are_custom_fields_and_the_custom_object() -> None:
    assert len(CUSTOM) >= 20
    assert sf_schema.OBJECTS[sfmeta.LEAD_CAPTURE]["custom"] is True


@pytest.mark.parametrize(("sobject", "name", "spec"), CUSTOM, ids=lambda v: v if isinstance(v, str) else "")
def test_every_custom_field_has_a_file(sobject: str, name: str, spec: dict) -> None:
    rel = sfmeta.field_path(sobject, name)
    assert rel in RENDERED
    assert (REPO / rel).is_file()
    root = _parse(RENDERED[rel])
    assert root.tag == f"{Q}CustomField"
    assert _text(root, "fullName") == name
    assert root[0].tag == f"{Q}fullName", "fullName comes first"


def test_only_custom_fields_are_rendered() -> None:
    expected = {sfmeta.field_path(s, n) for s, n, _ in CUSTOM}
    rendered = {p for p in RENDERED if p.endswith(".field-meta.xml")}
    assert rendered == expected
    assert not any("/objects/Lead/fields/LastName" in p for p in RENDERED)


def test_task_fields_live_on_activity() -> None:
    task = [n for s, n, _ in CUSTOM if s == "Task"]
    assert task, "sf_schema declares custom Task fields"
    for name in task:
        assert f"{sfmeta.DEFAULT_DIR}/objects/Activity/fields/{name}.field-meta.xml" in RENDERED
        assert not any(p.startswith(f"{sfmeta.DEFAULT_DIR}/objects/Task/") for p in RENDERED)


@pytest.mark.parametrize("rel", sorted(p for p in RENDERED if p.endswith(".xml")))
def test_xml_parses_with_metadata_namespace(rel: str) -> None:
    text = RENDERED[rel]
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = _parse(text)
    assert root.tag.startswith(Q)
    for elem in root.iter():
        assert elem.tag.startswith(Q), f"{rel}: {elem.tag} outside the metadata namespace"


def test_external_id_fields() -> None:
    ext = [(s, n, f) for s, n, f in CUSTOM if f["external_id"]]
    assert {s for s, _, _ in ext} >= {"Lead", "Contact", "Campaign", "CampaignMember",
                                      sfmeta.LEAD_CAPTURE}
    for sobject, name, spec in ext:
        root = _parse(RENDERED[sfmeta.field_path(sobject, name)])
        assert _text(root, "type") == "Text"
        assert _text(root, "externalId") == "true"
        assert _text(root, "unique") == ("true" if spec["unique"] else "false")
        assert _text(root, "caseSensitive") == ("true" if spec["case_sensitive"] else None)
        if name == "Jomablue_Id__c":
            assert (_text(root, "unique"), _text(root, "caseSensitive")) == ("true", "true")
            assert _text(root, "length") == "255"


def test_lengths_and_types_match_sf_schema() -> None:
    types = {"string": "Text", "datetime": "DateTime", "date": "Date", "boolean": "Checkbox",
             "reference": "Lookup"}
    for sobject, name, spec in CUSTOM:
        root = _parse(RENDERED[sfmeta.field_path(sobject, name)])
        kind = spec["type"]
        sf_type = _text(root, "type")
        if kind == "textarea":
            long = spec["length"] > 255
            assert sf_type == ("LongTextArea" if long else "TextArea"), name
            if long:
                assert _text(root, "length") == str(spec["length"]), f"{sobject}.{name}"
                assert int(_text(root, "visibleLines") or 0) > 0
        else:
            assert sf_type == types[kind], f"{sobject}.{name}"
        if kind == "string":
            assert _text(root, "length") == str(spec["length"]), f"{sobject}.{name}"
        if kind == "boolean":
            assert _text(root, "defaultValue") in ("true", "false")
        if kind not in ("string", "textarea"):
            assert _text(root, "length") is None
        if _text(root, "required") is not None:
            assert _text(root, "required") == ("true" if spec["required"] else "false")


def test_lookups_reference_the_right_object() -> None:
    lookups = [(s, n, f) for s, n, f in CUSTOM if f["type"] == "reference"]
    assert {(s, n) for s, n, _ in lookups} == {
        (sfmeta.LEAD_CAPTURE, "Lead__c"),
        (sfmeta.LEAD_CAPTURE, "Contact__c"),
        (sfmeta.LEAD_CAPTURE, "Campaign__c"),
    }
    for sobject, name, spec in lookups:
        root = _parse(RENDERED[sfmeta.field_path(sobject, name)])
        assert _text(root, "referenceTo") == spec["reference_to"][0]
        assert _text(root, "deleteConstraint") == "SetNull"
        assert _text(root, "relationshipName") == "Jomablue_Lead_Captures"
        assert _text(root, "relationshipLabel") == "Jomablue Lead Captures"


def test_custom_object() -> None:
    rel = (f"{sfmeta.DEFAULT_DIR}/objects/{sfmeta.LEAD_CAPTURE}/"
           f"{sfmeta.LEAD_CAPTURE}.object-meta.xml")
    root = _parse(RENDERED[rel])
    assert root.tag == f"{Q}CustomObject"
    assert _text(root, "label") == "Jomablue Lead Capture"
    assert _text(root, "pluralLabel") == "Jomablue Lead Captures"
    assert _text(root, "deploymentStatus") == "Deployed"
    assert _text(root, "sharingModel") == "ReadWrite"
    name_field = root.find("md:nameField", NS)
    assert name_field is not None
    assert _text(name_field, "type") == "AutoNumber"
    assert _text(name_field, "displayFormat") == "LC-{000000}"
    # Bulk API, sharing and Streaming API must be enabled together.
    assert {_text(root, t) for t in ("enableBulkApi", "enableSharing", "enableStreamingApi")} == {
        "true"}


def test_permission_set() -> None:
    rel = f"{sfmeta.DEFAULT_DIR}/permissionsets/Jomablue_Connector.permissionset-meta.xml"
    root = _parse(RENDERED[rel])
    assert root.tag == f"{Q}PermissionSet"
    assert _text(root, "label") == "Jomablue Connector"

    objects = {
        _text(p, "object"): tuple(_text(p, t) == "true" for t in
                                  ("allowRead", "allowCreate", "allowEdit", "allowDelete"))
        for p in root.findall("md:objectPermissions", NS)
    }
    assert objects == {
        "Lead": (True, True, True, False),
        "Contact": (True, True, True, False),
        "Campaign": (True, True, True, False),
        # No CampaignMember: it has no object permissions of its own (members need Read on the
        # Campaign, Edit on the Lead/Contact and the Marketing User flag; issue 9).
        "Jomablue_Lead_Capture__c": (True, True, True, False),
    }
    for p in root.findall("md:objectPermissions", NS):
        assert _text(p, "modifyAllRecords") == "false"
        assert _text(p, "viewAllRecords") == "false"

    fields = {
        _text(p, "field"): (_text(p, "readable"), _text(p, "editable"))
        for p in root.findall("md:fieldPermissions", NS)
    }
    # Field-level security names the concrete object (Task.X__c, not Activity.X__c).
    assert fields == {f"{s}.{n}": ("true", "true") for s, n, _ in CUSTOM}

    tags = [child.tag.removeprefix(Q) for child in root]
    order = ["description", "fieldPermissions", "hasActivationRequired", "label",
             "objectPermissions"]
    assert [t for i, t in enumerate(tags) if i == 0 or tags[i - 1] != t] == order


def test_sfdx_project() -> None:
    project = json.loads(RENDERED["salesforce/sfdx-project.json"])
    assert project["sourceApiVersion"] == "62.0"
    assert project["packageDirectories"] == [{"path": "force-app", "default": True}]


def test_schema_change_without_regenerating_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfmeta.write_all(tmp_path)
    assert sfmeta.check(tmp_path) == []
    assert sfmeta.main(["--check", str(tmp_path)]) == 0

    objects = copy.deepcopy(sf_schema.OBJECTS)
    objects["Campaign"]["fields"]["Jomablue_Venue__c"]["length"] = 200
    del objects["Campaign"]["fields"]["Jomablue_Region__c"]
    objects["Lead"]["fields"]["Jomablue_Badge__c"] = sf_schema._f("string", 32, custom=True)
    monkeypatch.setattr(sfmeta, "OBJECTS", objects)

    problems = sfmeta.check(tmp_path)
    fields = f"{sfmeta.DEFAULT_DIR}/objects"
    assert f"differs: {fields}/Campaign/fields/Jomablue_Venue__c.field-meta.xml" in problems
    assert f"stale: {fields}/Campaign/fields/Jomablue_Region__c.field-meta.xml" in problems
    assert f"missing: {fields}/Lead/fields/Jomablue_Badge__c.field-meta.xml" in problems
    assert any(p.startswith("differs: ") and "permissionset" in p for p in problems)
    assert sfmeta.main(["--check", str(tmp_path)]) == 1

    sfmeta.write_all(tmp_path)
    assert sfmeta.check(tmp_path) == []
    assert not (tmp_path / fields / "Campaign/fields/Jomablue_Region__c.field-meta.xml").exists()


def test_unsupported_field_type_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = copy.deepcopy(sf_schema.OBJECTS)
    objects["Lead"]["fields"]["Weird__c"] = sf_schema._f("anyType", custom=True)
    monkeypatch.setattr(sfmeta, "OBJECTS", objects)
    with pytest.raises(sfmeta.UnsupportedField, match="Weird__c"):
        sfmeta.render_all()
