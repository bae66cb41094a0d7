"""Shared helpers for the mapping tests: fixture messages (samples + hostile) and a describe from sf_schema."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from jbtest import sample  # noqa: F401  (the one samples loader; `from .helpers import sample` keeps working)

from connector.salesforce import schema as sf_schema

HERE = Path(__file__).parent
RESOURCE_TYPES = ("event", "person", "session_participation", "lead")
LONG = "x" * 39_990 + "🎉" * 10  # 40,000 characters, ending in emoji (astral, surrogate pairs in UTF-16)


def _set(msg: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = msg
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


_PERSON_NAME_PATHS = {
    "person": ("identifiers.first_name", "identifiers.last_name", "identifiers.company",
               "identifiers.email", "data.job_title"),
}
_CTX = ("context.person_first_name", "context.person_last_name", "context.person_company",
        "context.person_email", "context.person_phone")


def hostile(rtype: str) -> dict[str, dict[str, Any]]:
    """Hostile variants of the sample of ``rtype``, by name."""
    base = sample(rtype)
    out: dict[str, dict[str, Any]] = {}
    event_names = ("data.name", "data.short_description", "data.venue_name", "data.timezone")
    names = _PERSON_NAME_PATHS.get(rtype, _CTX if rtype != "event" else event_names)

    m = copy.deepcopy(base)
    for p in names:
        _set(m, p, LONG)
    if rtype == "event":
        _set(m, "data.metadata.region", LONG)
        _set(m, "data.categories", [{"id": "c/1", "name": LONG}])
    if rtype == "lead":
        _set(m, "data.notes", LONG)
        _set(m, "data.tags", [LONG, "", "  ok  "])
    if rtype == "session_participation":
        _set(m, "data.session_name", LONG)
    out["long-strings"] = m

    m = copy.deepcopy(base)
    unicode_values = ["  김민준 🎉 ", "สมชาย", "Zoë 👩🏽‍💻 Ñandú", "김민준"]
    for p, v in zip(names, unicode_values * 3):
        _set(m, p, v)
    if rtype == "event":
        _set(m, "data.metadata", {"region": "대한민국", "owner": "สมชาย", "source": "jomablue"})
    else:
        _set(m, "context.event_name", "서울 컨퍼런스 🎉")
    out["unicode"] = m

    m = copy.deepcopy(base)
    for p in names:
        _set(m, p, "")
    if rtype == "person":
        _set(m, "identifiers.organisation_uid", "")
        _set(m, "data.first_check_in", "")
        _set(m, "data.categories", [])
    if rtype == "event":
        _set(m, "data.start_time", "")
        _set(m, "data.metadata", {})
    if rtype == "session_participation":
        _set(m, "data.session_name", "")
    if rtype == "lead":
        _set(m, "data.captured_at", "not a date")
        _set(m, "data.tags", [])
    out["empty-required"] = m

    m = copy.deepcopy(base)
    m.pop("data", None)
    m.pop("context", None)
    out["missing-sections"] = m

    m = copy.deepcopy(base)
    if rtype == "person":
        _set(m, "data.cancelled", "true")
        _set(m, "data.checked_in", "true")
    elif rtype == "session_participation":
        _set(m, "data.attended", "false")
    elif rtype == "event":
        _set(m, "data.metadata.cost_centre", 1200)
        _set(m, "data.timezone", "Not/AZone")
    else:
        _set(m, "data.tags", "Hot")
    out["string-booleans"] = m

    m = copy.deepcopy(base)
    m["surprise"] = {"nested": [1, 2, 3]}
    _set(m, "data.unknown_extra", "🦄")
    _set(m, "identifiers.extra_id", None)
    out["unknown-keys"] = m
    return out


def messages(rtype: str) -> dict[str, dict[str, Any]]:
    return {"sample": sample(rtype), **hostile(rtype)}


_TYPE = {"string": "string", "textarea": "textarea", "email": "email", "phone": "phone",
         "picklist": "picklist", "boolean": "boolean", "date": "date", "datetime": "datetime",
         "double": "double", "int": "int", "reference": "reference", "id": "id"}


def describe_from_schema(objects: dict[str, Any] | None = None):
    """A ``describe(sobject)`` built from sf_schema.OBJECTS, shaped like Salesforce's describe."""
    objects = sf_schema.OBJECTS if objects is None else objects

    def describe(name: str) -> dict[str, Any] | None:
        obj = objects.get(name)
        if obj is None:
            return None
        fields = []
        for fname, meta in obj["fields"].items():
            fields.append({
                "name": fname, "type": _TYPE[meta["type"]], "length": meta["length"] or 0,
                "createable": meta["createable"], "updateable": meta["updateable"],
                "externalId": meta["external_id"], "nillable": not meta["required"],
                "picklistValues": [{"value": v, "label": v, "active": True} for v in meta["picklist"]],
                "restrictedPicklist": meta["restricted"],
            })
        return {"name": name, "createable": True, "updateable": True, "fields": fields}
    return describe
