"""Render the connector's Salesforce metadata (source format) from ``sf_schema``.

``salesforce/`` is generated, never edited by hand: the custom fields, the lead-capture custom
object and the integration permission set all come from :data:`connector.salesforce.schema.OBJECTS`, so
the metadata an admin deploys and the data model the connector, the emulator and the mapping
validator use cannot drift. A test compares the committed tree with :func:`render_all`.

    python -m connector_devkit.metadata [ROOT]          # (re)write ROOT/salesforce (ROOT: repo root)
    python -m connector_devkit.metadata --check [ROOT]  # exit 1 and list files that differ or are missing

Only fields with ``custom=True`` (and the whole custom object) are rendered; standard fields
already exist in every org. Elements are written in the order the Metadata API returns them on
retrieve (``fullName`` first, then alphabetical), so a later ``sf project retrieve`` produces
no diff noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from connector.salesforce.schema import OBJECTS, Field

NAMESPACE = "http://soap.sforce.com/2006/04/metadata"
API_VERSION = "62.0"

SF_DIR = "salesforce"
PACKAGE_DIR = "force-app"
DEFAULT_DIR = f"{SF_DIR}/{PACKAGE_DIR}/main/default"

PERMISSION_SET = "Jomablue_Connector"
LEAD_CAPTURE = "Jomablue_Lead_Capture__c"

#: Custom fields of Task and Event are defined on the Activity object in metadata; field-level
#: security still names the concrete object (``Task.X__c``).
METADATA_OBJECT = {"Task": "Activity", "Event": "Activity"}

#: Object permissions of the permission set: (read, create, edit, delete) per object. Task is
#: absent on purpose: activities have no object permissions (the "Edit Tasks" user permission
#: governs them). CampaignMember is absent too: it has no object permissions of its own (a
#: member needs Read on its Campaign, Edit on the Lead/Contact and the Marketing User flag), and
#: a permission set naming it can fail to deploy (issue 9; see salesforce/README.md).
OBJECT_ACCESS: dict[str, tuple[bool, bool, bool, bool]] = {
    "Lead": (True, True, True, False),
    "Contact": (True, True, True, False),
    "Campaign": (True, True, True, False),
    LEAD_CAPTURE: (True, True, True, False),
}

LONG_TEXT_VISIBLE_LINES = 5
FIELD_DESCRIPTION = "Written by the Jomablue connector. Generated from connector/salesforce/schema.py."

_LABEL_WORDS = {"Id": "ID", "Ids": "IDs"}


class UnsupportedField(ValueError):
    """A custom field in sf_schema whose type has no metadata rendering here."""


# --------------------------------------------------------------------------- helpers


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _elements(items: Iterable[tuple[str, Any]], indent: int = 1) -> list[str]:
    """Lines for ``(tag, value)`` pairs; a value that is a list of pairs nests, None is skipped."""
    pad = "    " * indent
    lines: list[str] = []
    for tag, value in items:
        if value is None:
            continue
        if isinstance(value, list):
            lines.append(f"{pad}<{tag}>")
            lines.extend(_elements(value, indent + 1))
            lines.append(f"{pad}</{tag}>")
        else:
            lines.append(f"{pad}<{tag}>{_xml_value(value)}</{tag}>")
    return lines


def _document(root: str, items: Iterable[tuple[str, Any]]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{root} xmlns="{NAMESPACE}">']
    lines.extend(_elements(items))
    lines.append(f"</{root}>")
    return "\n".join(lines) + "\n"


def label_for(api_name: str) -> str:
    """``Jomablue_Checked_In_At__c`` -> ``Jomablue Checked In At``; ``..._Id__c`` -> ``... ID``."""
    base = api_name.removesuffix("__c")
    return " ".join(_LABEL_WORDS.get(word, word) for word in base.split("_") if word)


def metadata_object(sobject: str) -> str:
    """The object folder that holds ``sobject``'s custom fields (Task -> Activity)."""
    return METADATA_OBJECT.get(sobject, sobject)


def custom_fields() -> list[tuple[str, str, Field]]:
    """Every ``(sobject, field_name, field)`` with ``custom=True``, in sf_schema order."""
    return [
        (sobject, name, spec)
        for sobject, obj in OBJECTS.items()
        for name, spec in obj["fields"].items()
        if spec.get("custom")
    ]


def field_path(sobject: str, name: str) -> str:
    return f"{DEFAULT_DIR}/objects/{metadata_object(sobject)}/fields/{name}.field-meta.xml"


def _child_relationship(sobject: str) -> tuple[str, str]:
    """(relationshipName, relationshipLabel) of a lookup from ``sobject``, seen from the parent."""
    label = OBJECTS[sobject].get("plural_label") or label_for(sobject) + "s"
    return label.replace(" ", "_"), label


# --------------------------------------------------------------------------- renderers


def render_field(sobject: str, name: str, spec: Field) -> str:
    """The ``CustomField`` source file of one custom field."""
    kind = spec["type"]
    required = bool(spec.get("required"))
    length = spec.get("length")
    attrs: dict[str, Any] = {"description": FIELD_DESCRIPTION, "label": label_for(name)}

    if kind == "string":
        attrs.update(type="Text", length=length or 255, required=required,
                     externalId=bool(spec.get("external_id")))
        if spec.get("unique"):
            attrs.update(unique=True, caseSensitive=bool(spec.get("case_sensitive")))
        else:
            attrs["unique"] = False
    elif kind == "textarea":
        if length is not None and length > 255:
            attrs.update(type="LongTextArea", length=length,
                         visibleLines=LONG_TEXT_VISIBLE_LINES)
        else:
            attrs.update(type="TextArea", required=required)
    elif kind in ("email", "phone"):
        attrs.update(type=kind.capitalize(), required=required,
                     externalId=bool(spec.get("external_id")) if kind == "email" else None,
                     unique=bool(spec.get("unique")) if kind == "email" else None)
    elif kind == "datetime":
        attrs.update(type="DateTime", required=required, externalId=False)
    elif kind == "date":
        attrs.update(type="Date", required=required, externalId=False)
    elif kind == "boolean":
        attrs.update(type="Checkbox", defaultValue=bool(spec.get("default")), externalId=False)
    elif kind in ("int", "double"):
        attrs.update(type="Number", precision=18, scale=0 if kind == "int" else 2,
                     required=required, externalId=bool(spec.get("external_id")),
                     unique=bool(spec.get("unique")))
    elif kind == "picklist":
        default = spec.get("default")
        values = [
            ("value", [("fullName", v), ("default", v == default), ("label", v)])
            for v in spec.get("picklist") or []
        ]
        attrs.update(
            type="Picklist",
            required=required,
            externalId=False,
            valueSet=[
                ("restricted", bool(spec.get("restricted"))),
                ("valueSetDefinition", [("sorted", False), *values]),
            ],
        )
    elif kind == "reference":
        targets = spec.get("reference_to") or []
        if len(targets) != 1:
            raise UnsupportedField(f"{sobject}.{name}: a lookup needs exactly one reference_to")
        rel_name, rel_label = _child_relationship(sobject)
        attrs.update(
            type="Lookup",
            referenceTo=targets[0],
            relationshipName=rel_name,
            relationshipLabel=rel_label,
            # A required lookup cannot clear itself when the parent is deleted.
            deleteConstraint="Restrict" if required else "SetNull",
            required=required,
            externalId=False,
        )
    else:
        raise UnsupportedField(f"{sobject}.{name}: no metadata rendering for type {kind!r}")

    # Retrieve order: fullName, then the remaining elements alphabetically.
    return _document(
        "CustomField",
        [("fullName", name), *sorted((k, v) for k, v in attrs.items() if v is not None)],
    )


def render_object(sobject: str) -> str:
    """The ``CustomObject`` source file of a custom object (fields live in their own files)."""
    obj = OBJECTS[sobject]
    label = obj.get("label") or label_for(sobject)
    plural = obj.get("plural_label") or label + "s"
    return _document(
        "CustomObject",
        [
            ("deploymentStatus", "Deployed"),
            ("description", f"{label} records written by the Jomablue connector. "
                            "Generated from connector/salesforce/schema.py."),
            ("enableActivities", False),
            ("enableBulkApi", True),
            ("enableFeeds", False),
            ("enableHistory", False),
            ("enableReports", True),
            ("enableSearch", True),
            ("enableSharing", True),
            ("enableStreamingApi", True),
            ("label", label),
            ("nameField", [
                ("displayFormat", "LC-{000000}"),
                ("label", f"{label} Number"),
                ("type", "AutoNumber"),
            ]),
            ("pluralLabel", plural),
            ("sharingModel", "ReadWrite"),
            ("visibility", "Public"),
        ],
    )


def render_permission_set() -> str:
    """The integration user's permission set: object CRUD and edit access to every custom field."""
    field_perms = sorted(
        f"{sobject}.{name}"
        for sobject, name, spec in custom_fields()
        # Formula/read-only fields could not be granted edit; none are custom today.
        if spec.get("createable", True) or spec.get("updateable", True)
    )
    items: list[tuple[str, Any]] = [
        ("description", "Grants the Jomablue connector's integration user access to the objects "
                        "and custom fields it writes. Generated from connector/salesforce/schema.py."),
    ]
    items += [
        ("fieldPermissions", [("editable", True), ("field", f), ("readable", True)])
        for f in field_perms
    ]
    items += [("hasActivationRequired", False), ("label", "Jomablue Connector")]
    for sobject in sorted(OBJECT_ACCESS):
        read, create, edit, delete = OBJECT_ACCESS[sobject]
        items.append(("objectPermissions", [
            ("allowCreate", create),
            ("allowDelete", delete),
            ("allowEdit", edit),
            ("allowRead", read),
            ("modifyAllRecords", False),
            ("object", sobject),
            ("viewAllRecords", False),
        ]))
    return _document("PermissionSet", items)


def render_project() -> str:
    project = {
        "packageDirectories": [{"path": PACKAGE_DIR, "default": True}],
        "name": "jomablue-salesforce-connector",
        "namespace": "",
        "sfdcLoginUrl": "https://login.salesforce.com",
        "sourceApiVersion": API_VERSION,
    }
    return json.dumps(project, indent=2) + "\n"


def render_all() -> dict[str, str]:
    """Every generated file: path relative to the repository root -> its text."""
    files: dict[str, str] = {f"{SF_DIR}/sfdx-project.json": render_project()}
    for sobject, obj in OBJECTS.items():
        if obj.get("custom"):
            files[f"{DEFAULT_DIR}/objects/{sobject}/{sobject}.object-meta.xml"] = (
                render_object(sobject)
            )
    for sobject, name, spec in custom_fields():
        path = field_path(sobject, name)
        if path in files:
            raise UnsupportedField(f"{sobject}.{name}: {path} is rendered twice")
        files[path] = render_field(sobject, name, spec)
    files[f"{DEFAULT_DIR}/permissionsets/{PERMISSION_SET}.permissionset-meta.xml"] = (
        render_permission_set()
    )
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------- files


def _existing_generated(root: Path) -> set[str]:
    """Metadata files on disk under the package directory (generated ones and stale ones)."""
    base = root / SF_DIR / PACKAGE_DIR
    if not base.is_dir():
        return set()
    return {p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()}


def check(root: Path) -> list[str]:
    """Problems between ``root/salesforce`` and :func:`render_all`, one line each; [] if equal."""
    expected = render_all()
    problems: list[str] = []
    for rel, text in expected.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {rel}")
    problems += [f"stale: {rel}" for rel in sorted(_existing_generated(root) - expected.keys())]
    return problems


def write_all(root: Path) -> list[str]:
    """Write every generated file under ``root`` and delete stale ones; returns changed paths."""
    expected = render_all()
    changed: list[str] = []
    for rel, text in expected.items():
        path = root / rel
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        changed.append(rel)
    for rel in sorted(_existing_generated(root) - expected.keys()):
        (root / rel).unlink()
        changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connector_devkit.metadata",
        description="Generate salesforce/ (Salesforce metadata) from connector/salesforce/schema.py.",
    )
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any file differs, is missing or is stale")
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: the checkout this module lives in)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.root)
        for line in problems:
            print(line)
        if problems:
            print("run: python -m connector_devkit.metadata", file=sys.stderr)
            return 1
        return 0
    for rel in write_all(args.root):
        print(f"wrote: {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
