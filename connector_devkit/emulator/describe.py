"""Describe results in Salesforce's shape, built from an org's object catalog (:mod:`.orgschema`)."""

from __future__ import annotations

import re
from typing import Any

from .recordtypes import record_type_infos

Objects = dict[str, dict[str, Any]]

_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "date": "xsd:date",
    "datetime": "xsd:dateTime", "int": "xsd:int", "double": "xsd:double",
}
_DESCRIBE_TYPES = {"datetime": "datetime", "int": "int"}  # others keep their schema name
_SYSTEM_DEFAULTED = {"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp",
                     "OwnerId"}


def label_of(name: str) -> str:
    """Jomablue_Id__c → Jomablue Id, FirstName → First Name, CampaignId → Campaign ID."""
    if name == "Id":
        return "Record ID"
    base = name[:-3] if name.endswith("__c") else name
    base = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base.replace("_", " "))
    return re.sub(r"\bId$", "ID", base)


def object_label(sobject: str) -> str:
    return label_of(sobject)


def _field(name: str, meta: dict[str, Any]) -> dict[str, Any]:
    text = meta["type"] in ("string", "textarea", "email", "phone", "picklist")
    default = meta["default"]
    return {
        "name": name,
        "label": label_of(name),
        "type": _DESCRIBE_TYPES.get(meta["type"], meta["type"]),
        "soapType": _SOAP_TYPES.get(meta["type"], "xsd:string"),
        "length": meta["length"] if text and meta["length"] else 0,
        "nillable": not meta["required"] and meta["type"] != "boolean" and name != "Id",
        "createable": meta["createable"],
        "updateable": meta["updateable"],
        "externalId": meta["external_id"],
        "unique": meta["unique"],
        "caseSensitive": meta["case_sensitive"],
        "idLookup": name == "Id" or meta["external_id"],
        "defaultedOnCreate": default is not None or name in _SYSTEM_DEFAULTED,
        "defaultValue": default if meta["type"] == "boolean" else None,
        "referenceTo": list(meta["reference_to"]),
        "relationshipName": (name[:-2] if name.endswith("Id") and name != "Id" else None)
        if meta["type"] == "reference" else None,
        "picklistValues": [
            {"value": v, "label": v, "active": True, "defaultValue": v == default, "validFor": None}
            for v in meta["picklist"]
        ],
        "restrictedPicklist": meta["restricted"],
        "custom": meta["custom"],
        "filterable": not (meta["type"] == "textarea" and (meta["length"] or 0) > 255),
        "sortable": not (meta["type"] == "textarea" and (meta["length"] or 0) > 255),
        "calculated": False,
        "autoNumber": False,
    }


def _summary(objects: Objects, sobject: str) -> dict[str, Any]:
    obj = objects[sobject]
    setup = bool(obj.get("setup"))
    base = f"/services/data/v62.0/sobjects/{sobject}"
    return {
        "name": sobject,
        "label": object_label(sobject),
        "labelPlural": object_label(sobject) + "s",
        "keyPrefix": obj["key_prefix"],
        "custom": obj["custom"],
        "createable": not setup,
        "updateable": not setup,
        "deletable": not setup,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "urls": {"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"},
    }


def describe_global(objects: Objects) -> dict[str, Any]:
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [_summary(objects, name) for name in objects]}


def describe_object(objects: Objects, sobject: str) -> dict[str, Any]:
    out = _summary(objects, sobject)
    out["fields"] = [_field(n, m) for n, m in objects[sobject]["fields"].items()]
    out["childRelationships"] = []
    out["recordTypeInfos"] = record_type_infos(objects[sobject], sobject)
    return out
