"""What one emulated org holds: the connector's data model plus the org's own data and metadata.

Each :class:`~connector_devkit.emulator.org.Org` gets its own deep copy of
:data:`connector.salesforce.schema.OBJECTS`, adjusted the way a real customer org differs from
the connector's default model:

- **LeadSource is org data and restricted.** Deploying the ``LeadSource`` standard value set
  replaces the org's values, so adding ``Jomablue`` is a documented admin step
  (salesforce/README.md); the default emulator org is one where the admin did it. A test can
  build an org without it (``lead_sources=``) to see ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``
  (Metadata API, StandardValueSet; recorded body: forcedotcom/sf-fx-runtime-java
  mappings/create-invalid-picklist-value.json).
- **Standard fields every org has** (Lead.Description, Contact.MobilePhone, ...) that the
  connector's model leaves out, so an admin who maps one can test it.
- **Fields deployed from metadata**: the project's ``salesforce/`` folder (or a given folder)
  is read, so what an admin deploys is what the emulator has; fields already in the model keep
  the model's definition (a test keeps the two equal).
- **Setup objects** doctor queries: DuplicateRule, AssignmentRule, PermissionSet,
  PermissionSetAssignment (read-only over the API; the org seeds them).
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from connector.salesforce import schema as sf_schema
from connector.salesforce.schema import _f

NS = "{http://soap.sforce.com/2006/04/metadata}"
PROJECT_METADATA = Path(__file__).resolve().parents[2] / "salesforce"

#: Standard fields present in every org but absent from the connector's model. Lengths and
#: types from the Salesforce object reference (Lead, Contact, Campaign).
_ADDRESS = {"Street": _f("textarea", 255), "City": _f("string", 40), "State": _f("string", 80),
            "PostalCode": _f("string", 20), "Country": _f("string", 80)}
STANDARD_EXTRAS: dict[str, dict[str, dict[str, Any]]] = {
    "Lead": {"Description": _f("textarea", 32000), "MobilePhone": _f("phone", 40),
             "Website": _f("string", 255), "Industry": _f("picklist", 255, picklist=[
                 "Agriculture", "Banking", "Education", "Technology", "Other"]),
             "NumberOfEmployees": _f("int"), **copy.deepcopy(_ADDRESS)},
    "Contact": {"Description": _f("textarea", 32000), "MobilePhone": _f("phone", 40),
                "Department": _f("string", 80),
                **{f"Mailing{k}": copy.deepcopy(v) for k, v in _ADDRESS.items()}},
    "Campaign": {"NumberSent": _f("double")},
}

_RO = {"createable": False, "updateable": False}


def _setup_objects() -> dict[str, dict[str, Any]]:
    """Setup objects doctor reads; fields as documented in the object reference."""
    system = {"Id": _f("id", 18, **_RO), "IsDeleted": _f("boolean", **_RO),
              "CreatedDate": _f("datetime", **_RO), "LastModifiedDate": _f("datetime", **_RO),
              "SystemModstamp": _f("datetime", **_RO)}

    def obj(prefix: str, **fields: Any) -> dict[str, Any]:
        return {"key_prefix": prefix, "custom": False, "setup": True,
                "fields": {**copy.deepcopy(system), **fields}}

    return {
        "DuplicateRule": obj("0Bm", DeveloperName=_f("string", 80, **_RO),
                             MasterLabel=_f("string", 80, **_RO),
                             SobjectType=_f("picklist", 40, **_RO),
                             IsActive=_f("boolean", **_RO)),
        "AssignmentRule": obj("01Q", Name=_f("string", 120, **_RO),
                              SobjectType=_f("picklist", 40, **_RO), Active=_f("boolean", **_RO)),
        "PermissionSet": obj("0PS", Name=_f("string", 80, **_RO), Label=_f("string", 80, **_RO),
                             IsOwnedByProfile=_f("boolean", **_RO)),
        "PermissionSetAssignment": obj(
            "0Pa", AssigneeId=_f("reference", 18, reference_to=["User"], **_RO),
            PermissionSetId=_f("reference", 18, reference_to=["PermissionSet"], **_RO)),
    }


def build_objects(lead_sources: list[str] | None = None, restrict_lead_source: bool = True,
                  metadata_dir: Path | str | None | bool = True) -> dict[str, dict[str, Any]]:
    """The object catalog of one org (see the module docstring).

    ``metadata_dir``: True reads the project's ``salesforce/`` folder when it exists, a path reads
    that folder (an SFDX project or a ``force-app/main/default``-like folder), False/None none.
    """
    objects = copy.deepcopy(sf_schema.OBJECTS)
    for sobject, extra in STANDARD_EXTRAS.items():
        for name, meta in extra.items():
            objects[sobject]["fields"].setdefault(name, copy.deepcopy(meta))
    values = list(sf_schema.LEAD_SOURCES if lead_sources is None else lead_sources)
    for sobject in ("Lead", "Contact"):  # one standard value set serves both objects
        field = objects[sobject]["fields"]["LeadSource"]
        field["picklist"] = list(values)
        field["restricted"] = restrict_lead_source
    objects.update(_setup_objects())
    if metadata_dir is True:
        metadata_dir = PROJECT_METADATA if PROJECT_METADATA.is_dir() else None
    if metadata_dir:
        load_metadata(objects, Path(metadata_dir))
    return objects


# ------------------------------------------------------------------------ metadata loading

def _text(node: ET.Element, tag: str) -> str | None:
    child = node.find(NS + tag)
    return child.text.strip() if child is not None and child.text else None


def _flag(node: ET.Element, tag: str) -> bool:
    return (_text(node, tag) or "").lower() == "true"


def field_from_metadata(root: ET.Element) -> dict[str, Any] | None:
    """A schema field from a ``CustomField`` document; None for types the emulator lacks."""
    kind = _text(root, "type")
    length = int(_text(root, "length") or 0) or None
    common = {"required": _flag(root, "required"), "external_id": _flag(root, "externalId"),
              "unique": _flag(root, "unique"), "case_sensitive": _flag(root, "caseSensitive"),
              "custom": (_text(root, "fullName") or "").endswith("__c")}
    if kind == "Text":
        return _f("string", length or 255, **common)
    if kind in ("TextArea", "LongTextArea", "Html"):
        return _f("textarea", length or 255, **common)
    if kind in ("Email", "Phone", "Url"):
        return _f({"Url": "string"}.get(kind, kind.lower()), 255 if kind == "Url" else 80, **common)
    if kind == "Checkbox":
        return _f("boolean", **{**common, "default": _flag(root, "defaultValue")})
    if kind == "Date":
        return _f("date", **common)
    if kind == "DateTime":
        return _f("datetime", **common)
    if kind in ("Number", "Currency", "Percent"):
        scale = int(_text(root, "scale") or 0)
        return _f("int" if kind == "Number" and scale == 0 else "double", **common)
    if kind in ("Lookup", "MasterDetail"):
        target = _text(root, "referenceTo")
        return _f("reference", 18, **{**common, "reference_to": [target] if target else [],
                                      "required": common["required"] or kind == "MasterDetail"})
    if kind == "Picklist":
        value_set = root.find(NS + "valueSet")
        values, default, restricted = [], None, False
        if value_set is not None:
            restricted = _flag(value_set, "restricted")
            for value in value_set.iter(NS + "value"):
                name = _text(value, "fullName")
                if name:
                    values.append(name)
                    if _flag(value, "default"):
                        default = name
        return _f("picklist", 255, **{**common, "picklist": values, "restricted": restricted,
                                      "default": default})
    return None


def _object_folder(folder: Path) -> Path | None:
    for candidate in (folder, folder / "force-app" / "main" / "default",
                      folder / "main" / "default"):
        if (candidate / "objects").is_dir():
            return candidate / "objects"
    return None


def load_metadata(objects: dict[str, dict[str, Any]], folder: Path) -> list[str]:
    """Add the objects and fields deployed from ``folder``; returns ``Object.Field`` names added.

    Standard fields in metadata (``objects/Lead/fields/Description.field-meta.xml`` has no type)
    are taken from :data:`STANDARD_EXTRAS` when known. Activity fields land on Task.
    """
    base = _object_folder(folder)
    added: list[str] = []
    if base is None:
        return added
    for obj_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        sobject = "Task" if obj_dir.name == "Activity" else obj_dir.name
        if sobject not in objects and (obj_dir / f"{sobject}.object-meta.xml").is_file():
            prefix = f"a{len(objects) % 10}X"
            objects[sobject] = {"key_prefix": prefix, "custom": True, "fields": {
                **copy.deepcopy({k: v for k, v in objects["Jomablue_Lead_Capture__c"]["fields"].items()
                                 if k in ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate",
                                          "SystemModstamp", "Name")})}}
        if sobject not in objects:
            continue
        fields = objects[sobject]["fields"]
        for path in sorted((obj_dir / "fields").glob("*.field-meta.xml")):
            name = path.name.removesuffix(".field-meta.xml")
            if any(existing.lower() == name.lower() for existing in fields):
                continue  # the model's definition wins (tests/test_metadata.py keeps them equal)
            try:
                meta = field_from_metadata(ET.parse(path).getroot())
            except ET.ParseError:
                continue
            if meta is None:
                meta = copy.deepcopy(STANDARD_EXTRAS.get(sobject, {}).get(name))
            if meta is not None:
                fields[name] = meta
                added.append(f"{sobject}.{name}")
    return added
