"""Record types: a mapping names one by DeveloperName (``record_type: Event_Campaign``).

Checked offline as a name, and against the org's describe: the describe's ``recordTypeInfos``
lists every record type of the object with ``developerName``, ``recordTypeId``, ``master`` and
``available`` ("true if this record type is available to the current user": Apex
``Schema.RecordTypeInfo.isAvailable()``, the same fields as the REST describe's
``recordTypeInfos``, Salesforce REST API Developer Guide, "sObject Describe"). A record type the
integration user may not use is refused at write time with ``INVALID_CROSS_REFERENCE_KEY``
("Record Type ID: this ID value isn't valid for the user", ``fields: ["RecordTypeId"]``), so
preflight refuses it first. The resolved ``RecordTypeId`` is written on create only
(:meth:`connector.mapping.model.RecordMapping.build`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import Problems

if TYPE_CHECKING:
    from .model import RecordMapping

# RecordType.DeveloperName: 80 characters (Object Reference, RecordType); API names start with a
# letter, hold letters, digits and single underscores, and do not end with one.
_DEVELOPER_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*")
MAX_LENGTH = 80


def record_type_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a record type's DeveloperName, or None when it can."""
    if not isinstance(name, str) or not name.strip():
        return "'record_type' must be a record type's API name (DeveloperName), such as Event_Campaign"
    if len(name) > MAX_LENGTH:
        return f"record_type {name!r} is longer than a DeveloperName ({MAX_LENGTH} characters)"
    if not _DEVELOPER_NAME.fullmatch(name) or name.endswith("_"):
        hint = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]+", "_", name)).strip("_")
        spelt = f"; did you mean {hint!r}?" if hint and _DEVELOPER_NAME.fullmatch(hint) else ""
        return (f"record_type {name!r} is not a DeveloperName (letters, digits and single underscores, "
                f"starting with a letter; the API name, not the label){spelt}")
    return None


def record_types(describe: dict[str, Any]) -> list[dict[str, Any]]:
    """The object's record types other than the Master one (the describe lists it too)."""
    return [rt for rt in describe.get("recordTypeInfos") or [] if not rt.get("master")]


def available_names(describe: dict[str, Any]) -> list[str]:
    return [str(rt.get("developerName")) for rt in record_types(describe) if rt.get("available")]


def resolve_record_type(p: Problems, rec: RecordMapping, describe: dict[str, Any]) -> None:
    """Set ``rec.record_type_id`` from the describe, or add an error at the ``record_type`` line."""
    name = rec.record_type
    rec.record_type_id = None
    if not name:
        return
    infos = record_types(describe)
    available = available_names(describe)
    listed = f"available to the integration user: {', '.join(available)}" if available else \
        "none is available to the integration user"
    match = next((rt for rt in infos if str(rt.get("developerName", "")).lower() == name.lower()), None)
    if match is None:
        what = f"{rec.object} has no record type {name!r}" if infos else f"{rec.object} has no record types"
        p.error(rec.file, rec.record_type_line, f"{what} ({listed})")
    elif not match.get("available"):
        p.error(rec.file, rec.record_type_line,
                f"record type {rec.object}.{match.get('developerName')} is not available to the integration user "
                f"(assign it in the Jomablue_Connector permission set; {listed})")
    elif not match.get("active", True):
        p.error(rec.file, rec.record_type_line,
                f"record type {rec.object}.{match.get('developerName')} is inactive ({listed})")
    else:
        rec.record_type_id = str(match.get("recordTypeId"))
