"""Record types in the emulated org: switched on per test with :func:`add_record_type`.

What Salesforce does, and where it is written down:

- The describe lists an object's record types in ``recordTypeInfos``: ``active``, ``available``
  (to the current user), ``defaultRecordTypeMapping``, ``developerName``, ``master``, ``name``,
  ``recordTypeId``, ``urls`` (REST API Developer Guide, "sObject Describe"; the same fields as
  Apex ``Schema.RecordTypeInfo``). The Master record type (``012000000000000AAA``) is listed too;
  an object with record types has a ``RecordTypeId`` field (Object Reference, RecordType).
- A write naming a record type the user may not use is refused with
  ``{"message":"Record Type ID: this ID value isn't valid for the user: 012…",
  "errorCode":"INVALID_CROSS_REFERENCE_KEY","fields":["RecordTypeId"]}`` (a real answer pasted
  in public issues; the message ends with the id given). Comparing ids on their first 15
  characters is inferred (REST accepts the 15- and 18-character forms of an id alike).

The record types live in the object's catalog entry (``objects[sobject]["record_types"]``), so the
describe (:func:`record_type_infos`) and the write check (:func:`refusals`) need no Org.
"""

from __future__ import annotations

import copy
from typing import Any

from .automation import ensure_object

# The Master record type's fixed id, and its describe entry (name "Master", master true, urls.layout
# .../describe/layouts/<id>), as in describe responses pasted in public code (v38.0 to v61.0
# describes found with find_string "describe/layouts/012000000000000AAA"). That Master is
# available and the default only when no other record type is, is inferred from the
# describe's field definitions (Object Reference, RecordType; Apex Schema.RecordTypeInfo).
MASTER_ID = "012000000000000AAA"
_KEY = "record_types"


def add_record_type(org: Any, sobject: str, developer_name: str, *, available: bool = True,
                    default: bool = False, label: str | None = None, active: bool = True) -> str:
    """Give ``sobject`` a record type; returns its 18-character RecordTypeId."""
    with org.lock:
        name = org.resolve_object(sobject)
        obj = org.objects[name]
        fields = obj["fields"]
        if "RecordTypeId" not in fields:
            meta = copy.deepcopy(fields.get("OwnerId") or next(iter(fields.values())))
            meta.update({"type": "reference", "length": 18, "required": False, "createable": True,
                         "updateable": True, "reference_to": ["RecordType"], "custom": False,
                         "default": None})
            fields["RecordTypeId"] = meta
        kinds = obj.setdefault(_KEY, [])
        label = label or developer_name.replace("_", " ")
        # A RecordType row, so RecordTypeId references a record as every lookup does.
        record_type_id = org.seed(ensure_object(org, "RecordType"), {
            "Name": label, "DeveloperName": developer_name,
            "SobjectType": name, "IsActive": active})
        kinds.append({"developerName": developer_name, "name": label,
                      "recordTypeId": record_type_id, "available": available, "active": active,
                      "defaultRecordTypeMapping": default, "master": False})
        return record_type_id


def record_type_infos(obj: dict[str, Any], sobject: str, version: str = "62.0") -> list[dict[str, Any]]:
    """The describe's ``recordTypeInfos`` (empty for an object without record types)."""
    kinds = obj.get(_KEY) or []
    if not kinds:
        return []
    master = {"developerName": "Master", "name": "Master", "recordTypeId": MASTER_ID, "active": True,
              "available": not any(k["available"] for k in kinds),
              "defaultRecordTypeMapping": not any(k["defaultRecordTypeMapping"] for k in kinds),
              "master": True}
    base = f"/services/data/v{version}/sobjects/{sobject}/describe/layouts/"
    return [{**k, "urls": {"layout": base + k["recordTypeId"]}} for k in [*kinds, master]]


def refusals(obj: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(code, message, fields) for a RecordTypeId the integration user may not use."""
    given = values.get("RecordTypeId")
    if not given:
        return []
    usable = {k["recordTypeId"][:15] for k in obj.get(_KEY) or [] if k["available"] and k["active"]}
    if str(given)[:15] in usable:
        return []
    return [("INVALID_CROSS_REFERENCE_KEY",
             f"Record Type ID: this ID value isn't valid for the user: {given}", ["RecordTypeId"])]
