"""Checks of a compiled mapping against the org's describe (``mapping validate --against-org``).

CumulusCI's split: the offline compile runs first (always), then these checks, which need each
object's describe: objects and fields exist, permissions fit the overwrite policy, upsert keys
are External IDs, record types exist and are available to the user, value types fit, picklist
values exist (a value missing from a restricted picklist is an error, from an open one a
warning), truncate lengths are known, and the campaign member statuses can be created. Field
names match case-insensitively, as Salesforce's do.

The same checks run before every ``run`` (connector/preflight.py) and in ``connector doctor``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from .errors import Problems
from .model import FieldRule, MappingSet, RecordMapping
from .recordtypes import resolve_record_type
from .transforms import NO_ARG

Describe = Callable[[str], "dict[str, Any] | None"]

TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist",
              "combobox", "encryptedstring"}
NUMBER_TYPES = {"double", "int", "currency", "percent", "long"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SFID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


class _Org:
    def __init__(self, describe: Describe) -> None:
        self._describe = describe
        self._cache: dict[str, dict[str, Any] | None] = {}

    def obj(self, name: str) -> dict[str, Any] | None:
        if name not in self._cache:
            self._cache[name] = self._describe(name)
        return self._cache[name]

    def fields(self, name: str) -> dict[str, dict[str, Any]]:
        desc = self.obj(name) or {}
        return {f["name"]: f for f in desc.get("fields", []) if "name" in f}

    def field(self, sobject: str, name: str) -> dict[str, Any] | None:
        """A field's describe, matched case-insensitively (Salesforce field names are)."""
        fields = self.fields(sobject)
        if name in fields:
            return fields[name]
        return next((f for n, f in fields.items() if n.lower() == name.lower()), None)


def _did_you_mean(name: str, choices: list[str]) -> str:
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return f"; did you mean '{lowered[close[0]]}'?" if close else ""


def _check_value_type(p: Problems, rec: RecordMapping, rule: FieldRule, meta: dict[str, Any]) -> None:
    ftype = meta.get("type", "string")
    where = f"{rec.object}.{rule.field}"
    file, line = rec.file, rule.kind_line
    produced = rule.produces
    if produced == "date" and ftype not in ("date", "datetime"):
        p.error(file, line, f"{where} is a {ftype} field but the rule produces a date "
                            f"(remove local_date/date or map a date field)")
        return
    if rule.kind == "value":
        _check_constant(p, rec, rule, meta)
        return
    needs = {"date": "date", "datetime": "datetime", "boolean": "boolean"}.get(ftype)
    if ftype in NUMBER_TYPES:
        needs = "number"
    if needs is None:
        return
    ok = produced == needs or (needs == "datetime" and produced == "date")
    if not ok and rule.kind == "ref" and needs is not None:
        ok = False
    if not ok:
        hint = {"date": "local_date or date", "datetime": "datetime", "boolean": "boolean",
                "number": "number"}[needs]
        p.error(file, line, f"{where} is a {ftype} field but the rule produces {produced}; "
                            f"add a '{hint}' transform")


def _check_constant(p: Problems, rec: RecordMapping, rule: FieldRule, meta: dict[str, Any]) -> None:
    ftype = meta.get("type", "string")
    value = rule.spec
    where = f"{rec.object}.{rule.field}"
    file, line = rec.file, rule.kind_line
    transformed = rule.produces != ("boolean" if isinstance(value, bool) else
                                    "number" if isinstance(value, (int, float)) else "text")
    if transformed:
        return  # a transform decides what is sent
    bad = None
    if ftype == "boolean" and not isinstance(value, bool):
        bad = "true or false"
    elif ftype in NUMBER_TYPES and (isinstance(value, bool) or not isinstance(value, (int, float))):
        bad = "a number"
    elif ftype == "date" and not (isinstance(value, str) and _DATE.fullmatch(value)):
        bad = "a date YYYY-MM-DD"
    elif ftype in ("reference", "id") and not (isinstance(value, str) and _SFID.fullmatch(value)):
        bad = "a 15- or 18-character Salesforce id"
    elif ftype in TEXT_TYPES and isinstance(value, bool):
        bad = "text"
    if bad:
        p.error(file, line, f"{where} is a {ftype} field: constant {value!r} does not fit (expected {bad})")
        return
    if ftype in TEXT_TYPES and isinstance(value, str):
        length = meta.get("length")
        if length and len(value) > length and not any(u.name == "truncate" for u in rule.transforms):
            p.error(file, line, f"{where}: constant is {len(value)} characters, the field holds {length}")


def _static_values(rule: FieldRule) -> list[tuple[int, str]]:
    """(line, text) of every value the rule can write that is known without a message:
    a constant, a ``map`` transform's replacements (and ``_else``), a ``default``'s argument."""
    out: list[tuple[int, str]] = []
    if rule.kind == "value" and isinstance(rule.spec, str) and not rule.transforms:
        out.append((rule.kind_line, rule.spec))
    for use in rule.transforms:
        if use.name == "map" and isinstance(use.arg, dict):
            out += [(use.line, v) for v in use.arg.values() if isinstance(v, str)]
        elif use.name == "default" and isinstance(use.arg, str):
            out.append((use.line, use.arg))
    return out


def _check_picklist(p: Problems, rec: RecordMapping, rule: FieldRule, meta: dict[str, Any]) -> None:
    """Static values against the org's picklist values: restricted → error, open → warning.

    A restricted picklist refuses values it lacks (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST);
    LeadSource values are org data, so the shipped `Jomablue` is an admin step (salesforce/README.md).
    """
    ftype = meta.get("type")
    if ftype not in ("picklist", "multipicklist"):
        return
    allowed = [v.get("value") for v in meta.get("picklistValues", []) if v.get("active", True)]
    if not allowed and not meta.get("restrictedPicklist"):
        return  # values decided elsewhere (CampaignMember.Status: per campaign)
    where = f"{rec.object}.{meta.get('name', rule.field)}"
    for line, value in _static_values(rule):
        for item in value.split(";") if ftype == "multipicklist" else [value]:
            if item in allowed:
                continue
            hint = _did_you_mean(item, [a for a in allowed if a])
            if meta.get("restrictedPicklist"):
                p.error(rec.file, line, f"{where}: {item!r} is not a value of this restricted picklist"
                                        f"{hint}")
            else:
                p.warning(rec.file, line, f"{where}: {item!r} is not a value of this picklist{hint}; "
                                          "Salesforce stores it as an inactive value")


def _check_record(p: Problems, org: _Org, rec: RecordMapping) -> None:
    desc = org.obj(rec.object)
    if desc is None:
        p.error(rec.file, rec.object_line, f"object '{rec.object}' does not exist in the org")
        return
    resolve_record_type(p, rec, desc)
    fields = org.fields(rec.object)
    key = org.field(rec.object, rec.upsert_key)
    if key is not None and not key.get("externalId"):
        p.error(rec.file, rec.upsert_key_line,
                f"upsert key {rec.object}.{rec.upsert_key} is not an External ID field")
    for rule in rec.rules:
        meta = org.field(rec.object, rule.field)
        where = f"{rec.object}.{rule.field}"
        if meta is None:
            p.error(rec.file, rule.line, f"field {where} does not exist in the org"
                                         f"{_did_you_mean(rule.field, list(fields))}")
            continue
        if meta.get("name", rule.field) != rule.field:
            p.warning(rec.file, rule.line, f"field {where} is spelt {meta['name']} in the org; "
                                           "Salesforce accepts either, but write it as the org does")
        if not meta.get("createable", False):
            p.error(rec.file, rule.line, f"field {where} is not createable")
        elif rule.overwrite in ("always", "if_empty") and not meta.get("updateable", False):
            p.error(rec.file, rule.line, f"field {where} is not updateable; use 'overwrite: on_create'")
        for use in rule.transforms:
            if use.name != "truncate":
                continue
            length = meta.get("length") or None
            if use.arg is NO_ARG and length is None:
                p.error(rec.file, use.line, f"truncate on {where}: length unknown, add an argument")
            elif use.arg is not NO_ARG and length is not None and use.arg > length:
                p.error(rec.file, use.line, f"truncate on {where}: {use.arg} is longer than the field ({length})")
        _check_value_type(p, rec, rule, meta)
        _check_picklist(p, rec, rule, meta)


def _check_statuses(p: Problems, org: _Org, ms: MappingSet) -> None:
    if not ms.statuses:
        return
    desc = org.obj("CampaignMemberStatus")
    if desc is None or not desc.get("createable", True):
        p.error(ms.event_file, ms.statuses_line, "CampaignMemberStatus is not createable in the org")
        return
    label = org.field("CampaignMemberStatus", "Label") or {}
    length = label.get("length")
    for status in ms.statuses:  # (CampaignMember.Status's 40 is checked by the compiler)
        if length and len(status.label) > length:
            p.error(ms.event_file, status.line,
                    f"status '{status.label}' is longer than CampaignMemberStatus.Label ({length})")


def check_against_org(ms: MappingSet, describe: Describe, problems: Problems) -> None:
    """Add the org checks' findings for every compiled record to ``problems``."""
    org = _Org(describe)
    for rm in ms.resources.values():
        for rec in rm.records():
            _check_record(problems, org, rec)
    uid_field = ms.matching.organisation_uid_field
    if uid_field and "person" in ms.resources:
        file = ms.resources["person"].file
        for sobject in ("Lead", "Contact"):
            if org.obj(sobject) is not None and org.field(sobject, uid_field) is None:
                problems.error(file, 1, f"matching organisation_uid_field: {sobject}.{uid_field} "
                                        "does not exist in the org")
    _check_statuses(problems, org, ms)
