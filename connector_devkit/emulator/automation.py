"""The org's own automation as `connector doctor` reads it: switched on per test.

- ``ApexTrigger`` rows (queryable with SOQL through ``/query``; fields as in the Object Reference
  for the Salesforce Platform, "ApexTrigger": Name, TableEnumOrId, Status, UsageBeforeInsert,
  UsageAfterInsert, UsageBeforeUpdate, UsageAfterUpdate, ...): :func:`add_apex_trigger`.
- ``FlowDefinitionView`` rows (queryable, API 46.0+; "FlowDefinitionView" in the Object
  Reference: ApiName, Label, ProcessType, TriggerType, RecordTriggerType,
  TriggerObjectOrEventLabel, IsActive, ...): :func:`add_record_flow`.
- ``ValidationRule`` through the Tooling API only (``/tooling/query/``; Tooling API Developer
  Guide, "ValidationRule": ValidationName, Active, ErrorMessage, EntityDefinition, ...):
  :func:`add_validation_rule`. :func:`deny_tooling` makes the tooling query answer as Salesforce
  does for an object the user cannot see: 400 ``INVALID_TYPE`` "sObject type 'ValidationRule'
  is not supported. ..." (the recorded INVALID_TYPE body of a query on an unknown object: REAL-REC
  openstax/tutor-server spec/cassettes/PushSalesforceCourseStats/... @405f933 and
  SFDO-Tooling/Snowfakery tests/cassettes/TestSOQLDatasets.test_dataset_bad_query.yaml; that the
  Tooling API answers a user without access this way is inferred from those).

These rows describe the automation; they do not run it (running a validation rule or a failing
trigger on writes is the org's data rules, :mod:`.rules`).
"""

from __future__ import annotations

import copy
from typing import Any

from connector.salesforce.schema import _f

from . import soql

_RO = {"createable": False, "updateable": False}


def _system() -> dict[str, dict[str, Any]]:
    return {"Id": _f("id", 18, **_RO), "IsDeleted": _f("boolean", **_RO),
            "CreatedDate": _f("datetime", **_RO), "LastModifiedDate": _f("datetime", **_RO),
            "SystemModstamp": _f("datetime", **_RO)}


def _text(length: int = 255) -> dict[str, Any]:
    return _f("string", length, **_RO)


def _flag() -> dict[str, Any]:
    return _f("boolean", default=False, **_RO)


#: Setup objects (read-only over the API) this module adds to an org when first used.
#: Key prefixes 01q (ApexTrigger), 300 (FlowDefinition), 012 (RecordType), 03d (ValidationRule): Salesforce
#: Help, "Standard Field Record ID Prefix Decoder"; the emulator's ids only need them distinct.
SETUP_OBJECTS: dict[str, dict[str, Any]] = {
    "ApexTrigger": {"key_prefix": "01q", "fields": {
        "Name": _text(), "TableEnumOrId": _text(40), "Status": _text(40), "NamespacePrefix": _text(15),
        **{f"Usage{when}{event}": _flag() for when in ("Before", "After")
           for event in ("Insert", "Update", "Delete")}}},
    "FlowDefinitionView": {"key_prefix": "300", "fields": {
        "ApiName": _text(), "Label": _text(), "ProcessType": _text(40), "TriggerType": _text(40),
        "RecordTriggerType": _text(40), "TriggerObjectOrEventLabel": _text(),
        "TriggerObjectOrEventId": _text(), "IsActive": _flag()}},
    "RecordType": {"key_prefix": "012", "fields": {
        "Name": _text(80), "DeveloperName": _text(80), "SobjectType": _text(40), "IsActive": _flag()}},
}

#: The Tooling API's objects (a separate catalog: ``/query`` does not know them).
TOOLING_OBJECTS: dict[str, dict[str, Any]] = {
    "ValidationRule": {"key_prefix": "03d", "custom": False, "setup": True, "fields": {
        **_system(), "ValidationName": _text(40), "Active": _flag(), "ErrorMessage": _text(),
        "ErrorDisplayField": _text(), "Description": _text(),
        # EntityDefinition is a relationship; the emulator's SOQL takes the dotted path as one name.
        "EntityDefinition.QualifiedApiName": _text(), "EntityDefinition.DeveloperName": _text(),
        "EntityDefinitionId": _text(18)}},
}


def _catalog_entry(name: str) -> dict[str, Any]:
    spec = SETUP_OBJECTS[name]
    return {"key_prefix": spec["key_prefix"], "custom": False, "setup": True,
            "fields": {**_system(), **copy.deepcopy(spec["fields"])}}


def setup_objects() -> dict[str, dict[str, Any]]:
    """Catalog entries of :data:`SETUP_OBJECTS`: every org has them (empty until a test adds rows)."""
    return {name: _catalog_entry(name) for name in SETUP_OBJECTS}


def ensure_object(org: Any, name: str) -> str:
    """The setup object's name, added to the org's catalog if a test replaced the catalog."""
    with org.lock:
        if name not in org.objects:
            org.objects[name] = _catalog_entry(name)
            org._by_type.setdefault(name, {})  # noqa: SLF001 - the org's per-object index
    return name


def add_apex_trigger(org: Any, name: str, sobject: str, *, events: tuple[str, ...] = ("AfterInsert",),
                     active: bool = True) -> str:
    """An Apex trigger on ``sobject`` firing on ``events`` (BeforeInsert, AfterUpdate, ...)."""
    # Status values Active / Inactive: Object Reference, ApexTrigger (Status field).
    usage = {f"Usage{e}": True for e in events}
    return org.seed(ensure_object(org, "ApexTrigger"), {
        "Name": name, "TableEnumOrId": sobject, "Status": "Active" if active else "Inactive", **usage})


def add_record_flow(org: Any, api_name: str, sobject: str, *, trigger: str = "RecordAfterSave",
                    on: str = "CreateAndUpdate", active: bool = True, label: str | None = None) -> str:
    """A record-triggered flow: ProcessType AutoLaunchedFlow with a Record* TriggerType, its
    object named by label in TriggerObjectOrEventLabel (as the describe's ``label``)."""
    from .describe import object_label

    # ProcessType AutoLaunchedFlow, TriggerType RecordAfterSave/RecordBeforeSave, RecordTriggerType
    # Create/Update/CreateAndUpdate/Delete: Object Reference, FlowDefinitionView (picklist values).
    return org.seed(ensure_object(org, "FlowDefinitionView"), {
        "ApiName": api_name, "Label": label or api_name.replace("_", " "), "ProcessType": "AutoLaunchedFlow",
        "TriggerType": trigger, "RecordTriggerType": on, "TriggerObjectOrEventLabel": object_label(sobject),
        "TriggerObjectOrEventId": sobject, "IsActive": active})


def _tooling(org: Any) -> dict[str, Any]:
    with org.lock:
        if not hasattr(org, "tooling"):
            org.tooling = {"objects": copy.deepcopy(TOOLING_OBJECTS), "rows": {"ValidationRule": []},
                           "denied": False}
        return org.tooling  # type: ignore[no-any-return]


def add_validation_rule(org: Any, sobject: str, name: str, message: str, *, active: bool = True,
                        field: str | None = None) -> None:
    """A validation rule on ``sobject`` as the Tooling API lists it."""
    tooling = _tooling(org)
    with org.lock:
        rows = tooling["rows"]["ValidationRule"]
        fields = tooling["objects"]["ValidationRule"]["fields"]
        row = {n: m["default"] for n, m in fields.items()}
        row.update({"Id": org._new_id("03d"), "IsDeleted": False,  # noqa: SLF001
                    "ValidationName": name, "Active": active, "ErrorMessage": message,
                    "ErrorDisplayField": field, "EntityDefinition.QualifiedApiName": sobject,
                    # DeveloperName is the API name without its __c suffix (Object
                    # Reference, EntityDefinition); inferred for namespaced names.
                    "EntityDefinition.DeveloperName": sobject.removesuffix("__c"),
                    "EntityDefinitionId": sobject})
        rows.append(row)


def deny_tooling(org: Any) -> None:
    """The integration user cannot read the Tooling API's ValidationRule."""
    _tooling(org)["denied"] = True


def _nest(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Relationship fields as Salesforce returns them: {"EntityDefinition": {"QualifiedApiName": ...}}.

    Nested object with its own ``attributes`` as in query results with parent relationships
    (SOQL and SOSL Reference, "Relationship Queries"); the emulator leaves out ``attributes.url``."""
    out: dict[str, Any] = {}
    for f in fields:
        head, dot, tail = f.partition(".")
        if dot:
            out.setdefault(head, {"attributes": {"type": head}})[tail] = row[f]
        else:
            out[f] = row[f]
    return out


def tooling_query(org: Any, params: dict[str, str]) -> tuple[int, Any]:
    """GET /services/data/vXX.X/tooling/query/?q=...: (HTTP status, body)."""
    text = params.get("q") or ""   # (the server decoded the query string)
    if not text:
        # Same answer as /query without q (server.py); inferred, no recording of an empty q.
        return 400, [{"message": "A query string must be provided", "errorCode": "MALFORMED_QUERY"}]
    tooling = _tooling(org)
    try:
        with org.lock:
            compiled = soql.compile_query(text, lambda v: v, tooling["objects"])
            if tooling["denied"]:
                raise soql.SoqlError("INVALID_TYPE", f"sObject type '{compiled.sobject}' is not supported. "
                                     "If you are attempting to use a custom object, be sure to append the "
                                     "'__c' after the entity name. Please reference your WSDL or the "
                                     "describe call for the appropriate names.")
            rows = compiled.run([r for r in tooling["rows"][compiled.sobject] if not r["IsDeleted"]])
    except soql.SoqlError as exc:
        return 400, [{"message": exc.message, "errorCode": exc.code}]
    records = [{"attributes": {"type": compiled.sobject}, **_nest(r, compiled.fields)} for r in rows]
    # Tooling query result keys size, totalSize, done, queryLocator, entityTypeName, records:
    # Tooling API Developer Guide, "query" resource (example response); no recording found.
    return 200, {"size": len(records), "totalSize": len(records), "done": True, "queryLocator": None,
                 "entityTypeName": compiled.sobject, "records": records}
