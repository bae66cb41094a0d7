"""The emulator's in-memory Salesforce org: records, validation rules, queries.

Everything happens under one re-entrant lock, so each REST call (a collection of up to 200
rows included) is atomic, as a Salesforce transaction is. Records are stored with every
schema field present (None when unset), values already in wire form (dates YYYY-MM-DD,
datetimes 2025-09-10T23:04:49.880+0000 in UTC, ids 18 characters), so queries and reads
can copy them out unchanged. Stored record dicts are never mutated in place: a write
replaces the dict, which keeps the undo log used for allOrNone rollback trivial.

Wrong value types (a date that is not YYYY-MM-DD, text for a number, ...) fail the row with
INVALID_TYPE_ON_FIELD_IN_RECORD rather than failing the whole request with
JSON_PARSER_ERROR, so one bad row does not sink its 199 neighbours.

Each org has its own object catalog (:mod:`.orgschema`: the connector's model plus the org's
LeadSource values, standard fields and deployed metadata) and its own automation
(:mod:`.rules`: duplicate rules, the Lead assignment rule), which runs only for API requests, and
its own life (:mod:`.orglife`: failing triggers, validation rules, full storage, private records,
a flow adding Campaign statuses, fields removed at run time, merges), each off until a test
switches it on.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from connector.salesforce.ids import to18

from . import soql
from .automation import setup_objects
from .describe import describe_object, label_of
from .errors import RecordError
from .ids import normalise_id
from .orglife import OrgLife, OrgLifeSwitches
from .orgschema import build_objects
from .recordtypes import refusals as record_type_refusals
from .rules import AssignmentRule, Automation, DuplicateRule, RequestOptions, duplicate_result

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Ids spread the counter over 9 base62 digits with a multiplier coprime to 62, so
# consecutive ids differ in mixed-case letters and the 18-char checksum is exercised.
_ID_SPACE = 62**9
_ID_MULTIPLIER = 1_000_000_007 * 1_009  # odd and not a multiple of 31
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_CAMPAIGN_DEPTH = 5
# django-salesforce #164 (REAL-PASTE): "MALFORMED_QUERY: SOQL statements can not be longer than
# 100000 characters".
MAX_SOQL_LENGTH = 100_000
PERMISSION_SET = "Jomablue_Connector"
ROLLED_BACK = ("ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "Record rolled back because not all records were valid and the request was "
               "using AllOrNone header")


class DuplicatesDetected(RecordError):
    """A duplicate rule blocked the save; the two wire shapes are in :mod:`.rules`."""

    def __init__(self, rule: DuplicateRule, matches: list[tuple[str, str]], version: str):
        super().__init__("DUPLICATES_DETECTED", rule.message, [])
        self.rule, self.matches, self.version = rule, matches, version

    def detail(self) -> dict[str, Any]:
        return duplicate_result(self.rule, self.matches, self.version)

    def as_results(self) -> list[dict[str, Any]]:
        """Collections row (REST API Developer Guide, "Create Records Using sObject Collections"):
        no match details unless configured."""
        error: dict[str, Any] = {"statusCode": "DUPLICATES_DETECTED", "message": self.rule.message,
                                 "fields": []}
        if self.rule.collection_detail != "none":
            error[self.rule.collection_detail] = self.detail()
        return [error]

    def as_response(self) -> list[dict[str, Any]]:
        """Single-record REST (v50-v54 captures, see .rules): the key is spelt
        ``duplicateResut``; key order duplicateResut, errorCode, message; no ``fields``."""
        return [{"duplicateResut": self.detail(), "errorCode": "DUPLICATES_DETECTED",
                 "message": self.rule.message}]


def now_iso() -> str:
    return soql.format_datetime(_dt.datetime.now(_dt.timezone.utc))


class Org(OrgLifeSwitches):
    """An in-memory org: the objects of :func:`.orgschema.build_objects` and their records.

    ``lead_sources`` replaces the LeadSource values (default: the connector's list with
    ``Jomablue``, i.e. the admin did the documented step); ``metadata_dir`` is where deployed
    fields come from (True: the project's ``salesforce/``); ``permission_set_assigned`` says
    whether the integration user holds the Jomablue_Connector permission set. The switches of the
    org's own life (``fail_trigger``, ``add_validation_rule``, ``storage_full``, ``make_private``,
    ``add_campaign_status_on_insert``, ``remove_field``) come from :class:`.orglife.OrgLifeSwitches`.
    """

    def __init__(self, daily_limit: int = 100_000, *, lead_sources: list[str] | None = None,
                 restrict_lead_source: bool = True, metadata_dir: Path | str | bool | None = True,
                 permission_set_assigned: bool = True):
        self.objects = {**build_objects(lead_sources, restrict_lead_source, metadata_dir), **setup_objects()}
        self.automation = Automation()
        self.life = OrgLife()
        self._request = threading.local()
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Any]] = {}  # id18 → record (deleted ones too)
        self._type_of: dict[str, str] = {}
        self._by_type: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in self.objects}
        self._unique: dict[tuple, str] = {}  # (sobject, field, key) / member & status keys → id
        self._children: dict[tuple, set[str]] = {}  # (kind, parent id) → child ids
        self._undo: list[tuple[str, str, dict[str, Any] | None]] | None = None
        self._counter = 0
        self.api_used = 0
        self.api_max = daily_limit
        self.org_id = self._new_id("00D")
        self.user_id = self.insert("User", {"Name": "Integration User",
                                            "Username": "integration@emulator.example"})
        self.permission_set_id = self.seed("PermissionSet", {
            "Name": PERMISSION_SET, "Label": "Jomablue Connector", "IsOwnedByProfile": False})
        if permission_set_assigned:
            self.seed("PermissionSetAssignment", {"AssigneeId": self.user_id,
                                                  "PermissionSetId": self.permission_set_id})

    # ------------------------------------------------------------------ public (tests, demo)

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def insert(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record as the REST API would; raises RecordError (a ValueError)."""
        with self._lock:
            return self.create(self._object(sobject), fields)

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._live(record_id)
            return dict(rec) if rec else None

    def records(self, sobject: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._by_type[self._object(sobject)].values()
                    if not r["IsDeleted"]]

    def query(self, text: str) -> list[dict[str, Any]]:
        """Rows of selected fields; for COUNT() one {"Id"} row per match (len() is the count)."""
        with self._lock:
            compiled, rows = self.run_query(text)
            if compiled.query.count:
                return [{"Id": r["Id"]} for r in rows]
            return [{f: r[f] for f in compiled.fields} for r in rows]

    def count(self, text: str) -> int:
        return len(self.query(text))

    def update(self, record_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.update_by_id(None, record_id, fields)

    def delete(self, record_id: str) -> None:
        with self._lock:
            self.delete_by_id(record_id)

    def describe(self, sobject: str) -> dict[str, Any]:
        return describe_object(self.objects, self._object(sobject))

    def seed(self, sobject: str, fields: dict[str, Any]) -> str:
        """Store a record without validation: setup rows (read-only over the API) for tests."""
        with self._lock:
            sobject = self._object(sobject)
            now = now_iso()
            record = {name: meta["default"] for name, meta in self._fields(sobject).items()}
            record.update(fields)
            record.update({"Id": self._new_id(self.objects[sobject]["key_prefix"]),
                           "IsDeleted": False, "CreatedDate": now, "LastModifiedDate": now,
                           "SystemModstamp": now})
            self._put(sobject, record)
            return record["Id"]

    # ------------------------------------------------------------------ org automation

    def add_duplicate_rule(self, sobject: str, action: str = "alert", **kw: Any) -> DuplicateRule:
        """Activate a duplicate rule (default: Salesforce's standard rule for the object,
        matching on Email, set to Allow + Alert); also queryable as a DuplicateRule row."""
        name = kw.pop("developer_name", f"Standard_{sobject}_Duplicate_Rule")
        rule = DuplicateRule(sobject=sobject, developer_name=name, action=action, **kw)
        with self._lock:
            rule.id = self.seed("DuplicateRule", {"DeveloperName": name, "IsActive": True,
                                                  "MasterLabel": name.replace("_", " "),
                                                  "SobjectType": sobject})
            self.automation.duplicate_rules.append(rule)
        return rule

    def set_lead_assignment_rule(self, owner_name: str = "Sales Queue Owner",
                                 rule_name: str = "Standard") -> AssignmentRule:
        """Activate a Lead assignment rule that gives every Lead it runs on to a new user."""
        with self._lock:
            owner = self.insert("User", {"Name": owner_name,
                                         "Username": f"{owner_name.lower().replace(' ', '.')}@emulator.example"})
            rule = AssignmentRule(name=rule_name, owner_id=owner)
            rule.id = self.seed("AssignmentRule", {"Name": rule_name, "SobjectType": "Lead",
                                                   "Active": True})
            self.automation.lead_assignment = rule
        return rule

    @contextmanager
    def request_options(self, options: RequestOptions) -> Iterator[None]:
        """Run the block as an API request with these header options (thread-local)."""
        previous = getattr(self._request, "options", None)
        self._request.options = options
        try:
            yield
        finally:
            self._request.options = previous

    @property
    def options(self) -> RequestOptions:
        return getattr(self._request, "options", None) or RequestOptions()

    def set_api_usage(self, used: int, max: int | None = None) -> None:  # noqa: A002 (spec name)
        """Set the daily API usage; once used >= max every API request gets 403."""
        with self._lock:
            self.api_used = used
            if max is not None:
                self.api_max = max

    def convert_lead(self, lead_id: str, account_name: str | None = None) -> str:
        """Convert a Lead like Salesforce: new Account + Contact, members move to the Contact."""
        with self._lock, self.transaction():
            lead = self._live(lead_id)
            if lead is None or self._type_of[lead["Id"]] != "Lead":
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", f"no such lead: {lead_id}")
            if lead["IsConverted"]:
                raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            account_id = self.create("Account", {"Name": account_name or lead["Company"]})
            contact = {f: lead[f] for f in ("FirstName", "LastName", "Email", "Phone", "Title",
                                            "LeadSource") if lead[f] is not None}
            contact_id = self.create("Contact", {**contact, "AccountId": account_id})
            self._put("Lead", {**lead, "IsConverted": True, "ConvertedContactId": contact_id,
                               "ConvertedAccountId": account_id, "Status": "Closed - Converted",
                               "ConvertedDate": _dt.date.today().isoformat(),
                               "LastModifiedDate": now_iso(), "SystemModstamp": now_iso()})
            for member_id in sorted(self._children.get(("member_of", lead["Id"]), set())):
                member = self._records[member_id]
                self._put("CampaignMember", {**member, "LeadId": None, "ContactId": contact_id,
                                             "LastModifiedDate": now_iso()})
            return contact_id

    def merge(self, master_id: str, *loser_ids: str) -> None:
        """Merge one or two Leads (or Contacts) into a third like Salesforce: each loser is deleted with
        MasterRecordId set to the survivor, and its CampaignMembers move to the survivor (one
        the survivor already has in that Campaign wins; the loser's is deleted). The survivor
        keeps its own field values (email, external id); the loser's external id no longer
        matches an upsert, since deleted records are not matched.

        Sources: SOAP API Developer Guide, merge(): "the losing records are deleted" and their
        related records are reparented to the master; Object Reference, Lead and Contact:
        MasterRecordId "If this record was deleted as the result of a merge, this field contains
        the ID of the record that remains"; REST API Developer Guide, QueryAll: the result
        "includes information about records that have been deleted because of a merge or
        delete". A chain (A into B, then B into C) leaves A pointing at B, and a survivor may be
        converted later: followers go MasterRecordId, then ConvertedContactId. At most three records
        take part in one merge (SOAP API merge(): the master and up to two others)."""
        if not 1 <= len(loser_ids) <= 2:
            raise ValueError("a merge takes one or two losing records")
        with self._lock, self.transaction():
            for loser_id in loser_ids:
                self._merge_one(master_id, loser_id)

    def _merge_one(self, master_id: str, loser_id: str) -> None:
        with self._lock:
            master, loser = self._live(master_id), self._live(loser_id)
            if master is None or loser is None or self._type_of[master["Id"]] != self._type_of[loser["Id"]]:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "merge needs two live records of one object")
            sobject = self._type_of[loser["Id"]]
            who = "ContactId" if sobject == "Contact" else "LeadId"
            for member_id in sorted(self._children.get(("member_of", loser["Id"]), set())):
                member = self._records[member_id]
                if ("member", member["CampaignId"], master["Id"]) in self._unique:
                    self._put("CampaignMember", {**member, "IsDeleted": True})
                else:
                    self._put("CampaignMember", {**member, who: master["Id"], "LastModifiedDate": now_iso()})
            self._put(sobject, {**loser, "IsDeleted": True, "MasterRecordId": master["Id"],
                                "SystemModstamp": now_iso()})

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Undo every write made inside the block if it raises (nested blocks join the outer)."""
        with self._lock:
            if self._undo is not None:
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException:
                self.rollback()
                raise
            finally:
                self._undo = None

    def rollback(self) -> None:
        """Restore the state at the start of the current transaction (the log stays open)."""
        assert self._undo is not None
        log, self._undo = self._undo, None
        for record_id, sobject, old in reversed(log):
            self._store(sobject, record_id, old)
        log.clear()
        self._undo = log

    # ------------------------------------------------------------------ REST operations
    # (callers hold the lock)

    def run_query(self, text: str, include_deleted: bool = False) -> tuple[soql.Compiled, list[dict[str, Any]]]:
        """`include_deleted`: queryAll, which also returns deleted and merged-away records."""
        if len(text) > MAX_SOQL_LENGTH:
            raise soql.malformed(f"SOQL statements can not be longer than {MAX_SOQL_LENGTH} characters")
        compiled = soql.compile_query(text, normalise_id, self.objects)
        live = [r for r in self._by_type[compiled.sobject].values() if include_deleted or not r["IsDeleted"]]
        return compiled, compiled.run(live)

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        values = self._validate(sobject, fields, existing=None)
        now = now_iso()
        record = {name: meta["default"] for name, meta in self._fields(sobject).items()}
        record.update(values)
        record_id = self._new_id(self.objects[sobject]["key_prefix"])
        record.update({"Id": record_id, "IsDeleted": False, "CreatedDate": now,
                       "LastModifiedDate": now, "SystemModstamp": now})
        if "OwnerId" in record and record["OwnerId"] is None:
            record["OwnerId"] = self.user_id
        api = self.options.api
        # Order of the org's own checks: storage, then system validation and before-save rules,
        # then custom validation rules, then after-save triggers (Apex Developer Guide, "Triggers
        # and Order of Execution"); that full storage is refused before any other check is inferred.
        if api:
            self.life.before_create(sobject)
        with self.transaction():
            self._apply_rules_before(sobject, record, None)
            if api:
                self.life.validate(sobject, "insert", record)
            self._run_automation(sobject, record, None)
            self._put(sobject, record)
            self._apply_rules_after(sobject, record, None)
            if api:
                self.life.after_save(sobject, "insert", *self._call())
        return record_id

    def update_by_id(self, sobject: str | None, record_id: Any, fields: dict[str, Any],
                     lenient: bool = False) -> str:
        existing = self._existing_for_write(record_id, sobject)
        sobject = self._type_of[existing["Id"]]
        api = self.options.api
        # Sharing is checked before the field values (inferred: a record the user may not edit
        # is refused whatever the body says); order of the rest as in create().
        if api:
            self.life.before_write(existing["Id"])
        values = self._validate(sobject, fields, existing=existing, lenient=lenient)
        now = now_iso()
        record = {**existing, **values, "LastModifiedDate": now, "SystemModstamp": now}
        with self.transaction():
            self._apply_rules_before(sobject, record, existing)
            if api:
                self.life.validate(sobject, "update", record)
            self._run_automation(sobject, record, existing)
            self._put(sobject, record)
            self._apply_rules_after(sobject, record, existing)
            if api:
                self.life.after_save(sobject, "update", *self._call())
        return existing["Id"]

    def find_by_external_id(self, sobject: str, field: str, value: Any) -> list[str]:
        meta = self._fields(sobject)[field]
        if meta["unique"]:
            hit = self._unique.get(self._unique_key(sobject, field, meta, value))
            return [hit] if hit else []
        want = self._unique_key(sobject, field, meta, value)
        return [rid for rid, r in self._by_type[sobject].items() if not r["IsDeleted"]
                and r[field] is not None and self._unique_key(sobject, field, meta, r[field]) == want]

    def upsert(self, sobject: str, ext_field: str, fields: dict[str, Any]) -> tuple[str, bool]:
        """Upsert by external id (the value is in ``fields``); returns (id, created)."""
        if any(k.lower() == "id" for k in fields):
            raise RecordError("INVALID_FIELD",
                              "Id is not allowed in an upsert by external id", ["Id"])
        value = fields.get(ext_field)
        if value in (None, ""):
            raise RecordError("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])
        matches = self.find_by_external_id(sobject, ext_field, value)
        if len(matches) > 1:
            raise RecordError("DUPLICATE_EXTERNAL_ID",
                              f"{ext_field}: more than one record found for external id field: "
                              f"{matches}", [ext_field])
        if matches:
            return self.update_by_id(sobject, matches[0], fields, lenient=True), False
        return self.create(sobject, fields), True

    def delete_by_id(self, record_id: Any) -> str:
        existing = self._existing_for_write(record_id, None, converted_ok=True)
        sobject = self._type_of[existing["Id"]]
        if self.options.api:
            self.life.before_write(existing["Id"])
        if sobject == "CampaignMemberStatus" and existing["IsDefault"]:
            raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                              "cannot delete the default campaign member status")
        with self.transaction():
            self._put(sobject, {**existing, "IsDeleted": True, "SystemModstamp": now_iso()})
            # Salesforce deletes a campaign's members and statuses, and a person's memberships.
            for kind in ("member_of", "status_of"):
                for child in sorted(self._children.get((kind, existing["Id"]), set())):
                    child_rec = self._records[child]
                    self._put(self._type_of[child], {**child_rec, "IsDeleted": True})
        return existing["Id"]

    def resolve_object(self, name: str) -> str | None:
        try:
            return self._object(name)
        except KeyError:
            return None

    # ------------------------------------------------------------------ validation

    def _validate(self, sobject: str, fields: dict[str, Any], existing: dict[str, Any] | None,
                  lenient: bool = False) -> dict[str, Any]:
        """Check and convert the given values; raise RecordError with every problem found."""
        schema = self._fields(sobject)
        errors: list[tuple[str, str, list[str]]] = []
        values: dict[str, Any] = {}
        failed: set[str] = set()  # given but refused: not also "missing"
        for raw_name, raw in fields.items():
            if raw_name == "attributes":
                continue
            name = self._field_name(sobject, raw_name)
            if name is None:
                # An unknown key (fieldsToNull included) is refused, with no `fields`: REAL-REC
                # sf-fx-runtime-java create-invalid-field.json (forcedotcom/sf-fx-runtime-java mappings).
                errors.append(("INVALID_FIELD",
                               f"No such column '{raw_name}' on sobject of type {sobject}", []))
                continue
            if name == "Id":  # never writable: reported below as INVALID_FIELD_FOR_INSERT_UPDATE
                values[name] = normalise_id(raw) or raw
                continue
            try:
                values[name] = self._convert(sobject, name, schema[name], raw)
            except RecordError as exc:
                errors.extend(exc.errors)
                failed.add(name)
        if sobject == "CampaignMember" and values.get("ContactId") and "LeadId" in values:
            values.pop("LeadId")  # both given: Salesforce keeps the Contact only
        blocked = []
        for name in values:
            meta = schema[name]
            allowed = meta["createable"] if existing is None else meta["updateable"]
            if not allowed and not (lenient and existing is not None
                                    and values[name] == existing.get(name)):
                blocked.append(name)
        if blocked:
            errors.append(("INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {', '.join(blocked)}. Please check "
                           "the security settings of this field and verify that it is "
                           "read/write for your profile or permission set.", blocked))
        if existing is None:
            missing = [n for n, m in schema.items()
                       if m["required"] and values.get(n) is None and m["default"] is None
                       and n not in failed]
            if missing:
                errors.append(("REQUIRED_FIELD_MISSING",
                               f"Required fields are missing: [{', '.join(missing)}]", missing))
        else:
            cleared = [n for n in values if schema[n]["required"] and values[n] is None]
            if cleared:
                errors.append(("REQUIRED_FIELD_MISSING",
                               f"Required fields are missing: [{', '.join(cleared)}]", cleared))
        # After the field checks, so a record-type refusal comes after them in the error list
        # (inferred: no recording with more than one error of these kinds).
        errors.extend(record_type_refusals(self.objects[sobject], values))
        if errors:
            code, message, flds = errors[0]
            raise RecordError(code, message, flds, errors[1:])
        if lenient and existing is not None:  # unchanged read-only values were only echoes
            values = {n: v for n, v in values.items() if schema[n]["updateable"]}
        return values

    def _convert(self, sobject: str, name: str, meta: dict[str, Any], raw: Any) -> Any:
        ftype = meta["type"]
        label = label_of(name)

        def bad(kind: str) -> RecordError:
            return RecordError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                               f"{label}: value not of required type: {raw!r} (expected {kind})",
                               [name])

        if ftype == "boolean":
            if raw is None:
                return False  # checkboxes are never null in Salesforce
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            raise bad("boolean")
        if raw is None or raw == "":
            return None
        if ftype in soql.TEXT_TYPES:
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise bad("string")
            text = raw if isinstance(raw, str) else str(raw)
            if meta["length"] and len(text) > meta["length"]:
                raise RecordError("STRING_TOO_LONG", f"{label}: data value too large: "
                                  f"{text[:40]}... (max length={meta['length']})", [name])
            if ftype == "email" and not _EMAIL.match(text):
                raise RecordError("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}",
                                  [name])
            if ftype == "picklist" and meta["restricted"] and text not in meta["picklist"]:
                # Label-prefixed message, API name in `fields`: REAL-REC sf-fx-runtime-java
                # create-invalid-picklist-value.json (forcedotcom/sf-fx-runtime-java mappings).
                raise RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                  f"{label}: bad value for restricted picklist field: {text}", [name])
            return text
        if ftype in ("int", "double"):
            if isinstance(raw, str):
                try:
                    raw = float(raw) if ftype == "double" or "." in raw else int(raw)
                except ValueError:
                    raise bad("number") from None
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise bad("number")
            if ftype == "int":
                if raw != int(raw):
                    raise bad("integer")
                return int(raw)
            return float(raw)
        if ftype == "date":
            if not isinstance(raw, str) or not _DATE.match(raw):
                raise bad("date YYYY-MM-DD")
            try:
                return _dt.date.fromisoformat(raw).isoformat()
            except ValueError:
                raise bad("date YYYY-MM-DD") from None
        if ftype == "datetime":
            if not isinstance(raw, str) or "T" not in raw:
                raise bad("ISO-8601 datetime")
            text = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
            try:
                return soql.format_datetime(_dt.datetime.fromisoformat(text))
            except ValueError:
                raise bad("ISO-8601 datetime") from None
        if ftype in ("reference", "id"):
            ref = normalise_id(raw)
            target = self._records.get(ref) if ref else None
            if target is None or self._type_of[ref] not in meta["reference_to"]:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY",
                                  f"{label}: invalid cross reference id", [name])
            if target["IsDeleted"]:
                # A parent in the recycle bin: a real org answers ENTITY_IS_DELETED with an
                # empty fields list, not naming the lookup (body as recorded in
                # forcedotcom/sf-fx-runtime-java mappings/delete-already-deleted.json).
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
            if sobject == "CampaignMember" and name == "LeadId" and target["IsConverted"]:
                raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead",
                                  [name])
            return ref
        raise bad(ftype)

    # ------------------------------------------------------------------ object rules

    def _apply_rules_before(self, sobject: str, record: dict[str, Any],
                            old: dict[str, Any] | None) -> None:
        """Cross-record rules; may adjust ``record`` (defaults) or raise RecordError."""
        if sobject == "CampaignMember":
            if old is None:
                if not record["LeadId"] and not record["ContactId"]:
                    raise RecordError("REQUIRED_FIELD_MISSING",
                                      "Required fields are missing: [LeadId, ContactId]",
                                      ["LeadId", "ContactId"])
                person = record["ContactId"] or record["LeadId"]
                other = self._unique.get(("member", record["CampaignId"], person))
                if other:
                    raise RecordError("DUPLICATE_VALUE", "Already a campaign member.", [])
            statuses = [self._records[s] for s in self._children.get(("status_of", record["CampaignId"]), ())
                        if not self._records[s]["IsDeleted"]]
            if record["Status"] is None and old is None:
                default = next((s for s in statuses if s["IsDefault"]), None)
                record["Status"] = default["Label"] if default else None
            if record["Status"] is not None and (old is None or record["Status"] != old["Status"]):
                match = next((s for s in statuses
                              if s["Label"].lower() == record["Status"].lower()), None)
                if match is None:
                    raise RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                      f"Status: bad value for restricted picklist field: "
                                      f"{record['Status']}", ["Status"])
                record["Status"] = match["Label"]
                record["HasResponded"] = match["HasResponded"]
        elif sobject == "CampaignMemberStatus":
            # Label and SortOrder are each unique per Campaign (object reference: SortOrder is
            # a "Unique number order"). No recorded REST error exists; clients number new
            # statuses after the maximum (x2od/campaign-member-status CMS_CampaignTriggerHandler.cls,
            # NPSP CON_AddToCampaign.cls), so a clash is refused; we infer DUPLICATE_VALUE with the
            # field and id hidden, which is what we answer, so
            # a client cannot tell which of the two clashed without reading the statuses.
            if old is None and record["SortOrder"] is None:
                orders = [self._records[s]["SortOrder"] or 0
                          for s in self._children.get(("status_of", record["CampaignId"]), ())
                          if not self._records[s]["IsDeleted"]]
                record["SortOrder"] = max(orders, default=0) + 1
            label_owner = self._unique.get(("status", record["CampaignId"],
                                            (record["Label"] or "").lower()))
            order_owner = self._unique.get(("status_order", record["CampaignId"], record["SortOrder"]))
            if (label_owner and label_owner != record["Id"]) or \
                    (order_owner and order_owner != record["Id"]):
                raise RecordError("DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates "
                                  "value on record with id: <unknown>", [])
        elif sobject == "Campaign" and record["ParentId"]:
            self._check_hierarchy(record)
        for name, meta in self._fields(sobject).items():
            if meta["unique"] and record.get(name) is not None:
                other = self._unique.get(self._unique_key(sobject, name, meta, record[name]))
                if other and other != record["Id"]:
                    raise RecordError("DUPLICATE_VALUE", f"duplicate value found: {name} "
                                      f"duplicates value on record with id: {other}", [])

    def _run_automation(self, sobject: str, record: dict[str, Any],
                        old: dict[str, Any] | None) -> None:
        """Duplicate rules, then the Lead assignment rule, for API requests only (see .rules)."""
        options = self.options
        if not options.api:
            return
        for rule in self.automation.duplicate_rules:
            if rule.sobject != sobject or (old is not None and not rule.on_edit):
                continue
            key = rule.key(record)
            if key is None:
                continue
            matches = [(sobject, rid) for rid, other in self._by_type[sobject].items()
                       if rid != record["Id"] and not other["IsDeleted"] and rule.key(other) == key]
            if matches and (rule.action == "block" or not options.allow_save):
                raise DuplicatesDetected(rule, matches[:10], options.version)
        rule_ = self.automation.lead_assignment
        if sobject == "Lead" and rule_ is not None and options.auto_assign is not False:
            wanted = options.auto_assign
            if wanted is True or normalise_id(wanted) == rule_.id:
                record["OwnerId"] = rule_.owner_id

    def _apply_rules_after(self, sobject: str, record: dict[str, Any],
                           old: dict[str, Any] | None) -> None:
        if sobject == "Campaign" and old is None:
            self.create("CampaignMemberStatus", {"CampaignId": record["Id"], "Label": "Sent",
                                                 "IsDefault": True, "SortOrder": 1})
            self.create("CampaignMemberStatus", {"CampaignId": record["Id"], "Label": "Responded",
                                                 "HasResponded": True, "SortOrder": 2})
            # Sent (default, 1) and Responded (2) on every new Campaign; orgs add more with a
            # flow or trigger (x2od/campaign-member-status force-app/main/default/classes/
            # CMS_CampaignTriggerHandler.cls numbers added ones from 3, after those two).
            for status in self.life.campaign_statuses:  # a flow or template (add_campaign_status_on_insert)
                self.create("CampaignMemberStatus", {"CampaignId": record["Id"], **status})
        elif sobject == "CampaignMemberStatus" and record["IsDefault"]:
            for sid in sorted(self._children.get(("status_of", record["CampaignId"]), ())):
                other = self._records[sid]
                if sid != record["Id"] and other["IsDefault"]:
                    self._put("CampaignMemberStatus", {**other, "IsDefault": False})

    def _check_hierarchy(self, record: dict[str, Any]) -> None:
        depth, parent, seen = 1, record["ParentId"], {record["Id"]}
        while parent:
            if parent in seen:
                raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                                  "Parent Campaign: a campaign cannot be its own ancestor", ["ParentId"])
            seen.add(parent)
            depth += 1
            parent = self._records[parent]["ParentId"]
        height = self._subtree_height(record["Id"])
        if depth + height - 1 > MAX_CAMPAIGN_DEPTH:
            raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                              f"Parent Campaign: campaign hierarchy cannot exceed "
                              f"{MAX_CAMPAIGN_DEPTH} levels", ["ParentId"])

    def _subtree_height(self, campaign_id: str) -> int:
        kids = [c for c in self._children.get(("child_of", campaign_id), ())
                if not self._records[c]["IsDeleted"]]
        return 1 + max((self._subtree_height(k) for k in kids), default=0)

    # ------------------------------------------------------------------ storage & indexes

    def _put(self, sobject: str, record: dict[str, Any]) -> None:
        record_id = record["Id"]
        if self._undo is not None:
            self._undo.append((record_id, sobject, self._records.get(record_id)))
        self._store(sobject, record_id, record)

    def _store(self, sobject: str, record_id: str, record: dict[str, Any] | None) -> None:
        old = self._records.get(record_id)
        if old is not None:
            self._unindex(sobject, old)
        if record is None:
            self._records.pop(record_id, None)
            self._type_of.pop(record_id, None)
            self._by_type[sobject].pop(record_id, None)
            return
        self._records[record_id] = record
        self._type_of[record_id] = sobject
        self._by_type[sobject][record_id] = record
        self._index(sobject, record)

    def _keys(self, sobject: str, record: dict[str, Any]) -> tuple[list[tuple], list[tuple]]:
        """Unique keys and parent-group keys of a live record."""
        if record["IsDeleted"]:
            return [], []
        unique, groups = [], []
        for name, meta in self._fields(sobject).items():
            if meta["unique"] and record.get(name) is not None:
                unique.append(self._unique_key(sobject, name, meta, record[name]))
        if sobject == "CampaignMember":
            person = record["ContactId"] or record["LeadId"]
            unique.append(("member", record["CampaignId"], person))
            groups += [("member_of", record["CampaignId"]), ("member_of", person)]
        elif sobject == "CampaignMemberStatus":
            unique.append(("status", record["CampaignId"], (record["Label"] or "").lower()))
            if record["SortOrder"] is not None:
                unique.append(("status_order", record["CampaignId"], record["SortOrder"]))
            groups.append(("status_of", record["CampaignId"]))
        elif sobject == "Campaign" and record["ParentId"]:
            groups.append(("child_of", record["ParentId"]))
        return unique, groups

    def _index(self, sobject: str, record: dict[str, Any]) -> None:
        unique, groups = self._keys(sobject, record)
        for key in unique:
            self._unique[key] = record["Id"]
        for key in groups:
            self._children.setdefault(key, set()).add(record["Id"])

    def _unindex(self, sobject: str, record: dict[str, Any]) -> None:
        unique, groups = self._keys(sobject, record)
        for key in unique:
            if self._unique.get(key) == record["Id"]:
                del self._unique[key]
        for key in groups:
            self._children.get(key, set()).discard(record["Id"])

    @staticmethod
    def _unique_key(sobject: str, name: str, meta: dict[str, Any], value: Any) -> tuple:
        if isinstance(value, str) and not meta["case_sensitive"]:
            value = value.lower()
        return (sobject, name, value)

    # ------------------------------------------------------------------ helpers

    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        n = (self._counter * _ID_MULTIPLIER) % _ID_SPACE
        digits = []
        for _ in range(9):
            n, r = divmod(n, 62)
            digits.append(_BASE62[r])
        return to18(prefix + "000" + "".join(reversed(digits)))

    def _object(self, name: str) -> str:
        if name in self.objects:
            return name
        for canonical in self.objects:
            if canonical.lower() == name.lower():
                return canonical
        raise KeyError(name)

    def _fields(self, sobject: str) -> dict[str, dict[str, Any]]:
        return self.objects[sobject]["fields"]

    def field_names(self, sobject: str) -> list[str]:
        return list(self.objects[sobject]["fields"])

    def field_meta(self, sobject: str, name: str) -> tuple[str, dict[str, Any]] | None:
        """(canonical name, metadata) of a field, matched case-insensitively as Salesforce does
        (API names are case-insensitive in REST bodies and SOQL: SOQL and SOSL Reference,
        "SOQL Typographical Conventions")."""
        canonical = self._field_name(sobject, name)
        return (canonical, self._fields(sobject)[canonical]) if canonical else None

    def _field_name(self, sobject: str, name: str) -> str | None:
        fields = self._fields(sobject)
        if name in fields:
            return name
        return next((f for f in fields if f.lower() == name.lower()), None)

    def _live(self, record_id: Any) -> dict[str, Any] | None:
        rid = normalise_id(record_id)
        rec = self._records.get(rid) if rid else None
        return rec if rec is not None and not rec["IsDeleted"] else None

    def lookup(self, record_id: Any) -> tuple[str, dict[str, Any]] | None:
        """(sobject, record) including deleted records; None when unknown."""
        rid = normalise_id(record_id)
        rec = self._records.get(rid) if rid else None
        return (self._type_of[rid], rec) if rec is not None else None

    def _existing_for_write(self, record_id: Any, sobject: str | None,
                            converted_ok: bool = False) -> dict[str, Any]:
        rid = normalise_id(record_id)
        if rid is None:
            raise RecordError("MALFORMED_ID", f"malformed id {record_id}", ["Id"])
        rec = self._records.get(rid)
        if rec is None or (sobject and self._type_of[rid] != sobject):
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if rec["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
        if not converted_ok and self._type_of[rid] == "Lead" and rec["IsConverted"]:
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        return rec

    def run_rows(self, rows: list[Callable[[], dict[str, Any]]], all_or_none: bool,
                 failed: Callable[[RecordError], dict[str, Any]],
                 rolled_back: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
        """Run one collection call: each row callable returns its success result or raises.

        Each row is its own savepoint (a failed row leaves nothing behind); with allOrNone
        any failure undoes the whole call and the other rows report the rollback.
        """
        results: list[dict[str, Any]] = []
        ok: list[bool] = []
        previous = getattr(self._request, "call", None)
        # One call: triggers see its size and fire once for all its records (see .orglife; Apex
        # Developer Guide, "Triggers and Bulk Requests").
        self._request.call = (len(rows), {})
        try:
            with self._lock, self.transaction():
                start = len(self._undo or [])  # a composite may hold an outer transaction
                for row in rows:
                    mark = len(self._undo or [])
                    try:
                        results.append(row())
                        ok.append(True)
                    except RecordError as exc:
                        self._undo_to(mark)
                        results.append(failed(exc))
                        ok.append(False)
                if all_or_none and not all(ok):
                    # Only this call is undone, not an enclosing /composite: "each sObject
                    # Collections subrequest behaves according to its value of allOrNone" (REST
                    # API Developer Guide, resources_composite_allornone).
                    self._undo_to(start)
                    results = [r if not good else rolled_back() for r, good in zip(results, ok)]
        finally:
            self._request.call = previous
        return results

    def _call(self) -> tuple[int, dict[int, bool] | None]:
        """(records in the current REST call, its trigger decisions); (1, None) for one record."""
        return getattr(self._request, "call", None) or (1, None)

    def _undo_to(self, mark: int) -> None:
        assert self._undo is not None
        while len(self._undo) > mark:
            record_id, sobject, old = self._undo.pop()
            self._store(sobject, record_id, old)
