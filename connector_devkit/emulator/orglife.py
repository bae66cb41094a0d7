"""What a customer's org does on its own: failing triggers and flows, validation rules, full
storage, private records, flows that add Campaign statuses, fields an admin deletes.

Every behaviour is off in a new org and switched on per test through :class:`~.org.Org`:

    org.fail_trigger("Lead", times=1)                        # wrapped row lock once, then fine
    org.fail_trigger("Lead", cause="cpu", times=2)            # Apex CPU time limit, twice
    org.fail_trigger("Lead", cause="soql", batch_over=50)     # Too many SOQL queries: 101 when
                                                              # one call writes > 50 records
    org.add_validation_rule("Lead", "No_Test_Domain", "Use a company address",
                            field="Email", when=lambda r: r["Email"].endswith("@test.invalid"))
    org.storage_full = True                                   # creates refused, updates work
    org.make_private(lead_id)                                 # updates/deletes of it refused
    org.add_campaign_status_on_insert("Registered", 3)        # a flow on Campaign insert
    org.remove_field("Lead", "Title") / org.restore_field("Lead", "Title")
    org.merge(survivor_id, loser_id)                          # (in org.py)

Triggers, validation rules, storage and sharing apply to API requests only (like the duplicate and
assignment rules of :mod:`.rules`), so tests seed data with ``org.insert`` unhindered; the Campaign
status flow and a removed field apply to every write.

Sources, one per rule (see the comments at each rule below): Salesforce's Apex Developer Guide and
Help, the SOAP API StatusCode list, and texts pasted from live orgs in public issues.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any, Callable

from .errors import RecordError
from .ids import normalise_id

CAUSES = ("row_lock", "cpu", "soql")
EVENTS = ("insert", "update")


def _trigger_name(sobject: str) -> str:
    # Inferred: a made-up but typical trigger name ("LeadTrigger"); real names are the org's own
    # (e.g. dlrs_SMSTrigger in SFDO-Community/declarative-lookup-rollup-summaries#847).
    return sobject.removesuffix("__c").replace("_", "") + "Trigger"


@dataclass
class TriggerFailure:
    """An after-save trigger (or record-triggered flow) on ``sobject`` that throws.

    ``times``: how many DML calls it fails (None: every call it sees). A call is one REST
    request: a trigger runs once for the whole chunk of records a call writes, so when it throws
    every record of ``sobject`` in that call fails with the same message. ``batch_over`` (for any
    cause, typically ``soql``): it throws only when the call writes more than that many records,
    so a smaller collection succeeds.
    """

    sobject: str
    cause: str = "row_lock"
    times: int | None = 1
    on: tuple[str, ...] = EVENTS
    trigger: str = ""
    batch_over: int = 0
    failed_calls: int = 0

    def __post_init__(self) -> None:
        if self.cause not in CAUSES:
            raise ValueError(f"cause must be one of {CAUSES}")
        if any(e not in EVENTS for e in self.on):
            raise ValueError(f"on must name events of {EVENTS}")
        self.trigger = self.trigger or _trigger_name(self.sobject)

    def fires(self, size: int) -> bool:
        """Whether this call (of ``size`` records) fails; consumes one of ``times`` when it does."""
        if size <= self.batch_over or (self.times is not None and self.failed_calls >= self.times):
            return False
        self.failed_calls += 1
        return True

    def error(self, event: str) -> RecordError:
        """CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY wrapping what the trigger threw.

        Sources: the wrapped row lock as pasted from a live org in
        SFDO-Community/declarative-lookup-rollup-summaries#847 ("dlrs_SMSTrigger: execution of
        AfterInsert caused by: System.DmlException: ... first error: UNABLE_TO_LOCK_ROW, unable
        to obtain exclusive access to this record"); "Apex CPU time limit exceeded" inside a
        composite (salesforce.stackexchange.com/questions/377154); "Too many SOQL queries: 101"
        is the synchronous limit of 100 SOQL queries per transaction (Apex Developer Guide,
        "Execution Governors and Limits"), which a trigger that queries per record hits on a
        large chunk. An uncaught exception in a trigger fails the whole chunk (Apex Developer
        Guide, "Triggers and Bulk Requests").
        """
        after = "AfterInsert" if event == "insert" else "AfterUpdate"
        if self.cause == "row_lock":
            dml = "Insert" if event == "insert" else "Update"
            text = (f"{self.trigger}: execution of {after} caused by: System.DmlException: {dml} "
                    "failed. First exception on row 0; first error: UNABLE_TO_LOCK_ROW, unable to "
                    "obtain exclusive access to this record: []")
        # The cpu and soql texts: the limit messages are Salesforce's (Apex Developer Guide,
        # "Execution Governors and Limits"); their "<trigger>: System.LimitException: ..." wrapping
        # is inferred from the row-lock form above, no recording of it exists.
        elif self.cause == "cpu":
            text = f"{self.trigger}: System.LimitException: Apex CPU time limit exceeded"
        else:
            text = f"{self.trigger}: System.LimitException: Too many SOQL queries: 101"
        return RecordError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", text, [])


@dataclass
class ValidationRule:
    """An active validation rule: refuses a save of ``sobject`` when ``when(record)`` holds.

    ``when`` is a predicate on the record as it would be saved (every field, canonical names) or a
    dict of field → value that must all be equal (strings compared case-insensitively, as
    Salesforce's text comparison in formulas is not: use a predicate for exact rules).
    FIELD_CUSTOM_VALIDATION_EXCEPTION with the rule's own message, ``fields`` naming the field
    the rule shows its error at (empty for "top of page"): SOAP API Developer Guide, StatusCode
    FIELD_CUSTOM_VALIDATION_EXCEPTION; Salesforce Help, "Define Validation Rules" (Error Location).
    Permanent: the same data is refused every time.
    """

    sobject: str
    name: str
    message: str
    field: str | None = None
    when: Callable[[dict[str, Any]], bool] | dict[str, Any] = _field(default_factory=dict)
    on: tuple[str, ...] = EVENTS

    def refuses(self, record: dict[str, Any]) -> bool:
        if callable(self.when):
            return bool(self.when(record))
        for name, wanted in self.when.items():
            value = record.get(name)
            if isinstance(value, str) and isinstance(wanted, str):
                if value.lower() != wanted.lower():
                    return False
            elif value != wanted:
                return False
        return bool(self.when)

    def error(self) -> RecordError:
        return RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", self.message,
                           [self.field] if self.field else [])


@dataclass
class OrgLife:
    """The switches (see the module docstring); :class:`~.org.Org` calls the checks below."""

    trigger_failures: list[TriggerFailure] = _field(default_factory=list)
    validation_rules: list[ValidationRule] = _field(default_factory=list)
    storage_full: bool = False
    private_ids: set[str] = _field(default_factory=set)
    campaign_statuses: list[dict[str, Any]] = _field(default_factory=list)
    removed_fields: dict[tuple[str, str], dict[str, Any]] = _field(default_factory=dict)

    def before_create(self, sobject: str) -> None:
        # Data storage full: creates are refused org-wide until an admin frees space, updates
        # still work (Salesforce Help, "Data and File Storage Allocations": "If your org exceeds
        # its allocation, you can't create new records"; SOAP API StatusCode
        # STORAGE_LIMIT_EXCEEDED, message "storage limit exceeded"). No recorded REST body:
        # the message text and the empty ``fields`` are inferred from the StatusCode list.
        if self.storage_full:
            raise RecordError("STORAGE_LIMIT_EXCEEDED", "storage limit exceeded", [])

    def before_write(self, record_id: str) -> None:
        # Record-level sharing: the user may read this record but not edit or delete it
        # (private sharing model, another owner). SOAP API StatusCode
        # INSUFFICIENT_ACCESS_OR_READONLY; Salesforce Help, "Sharing Default Access Settings"
        # (Private: only the owner and users above them can view and edit; Public Read Only:
        # all users can view, not edit). Writing a CampaignMember that names the record is a
        # write of the member, which needs only Read on the Lead/Contact (Object Reference,
        # CampaignMember) and so still works. No recorded REST body: the text is inferred, in the
        # form of the recorded sibling INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY "insufficient
        # access rights on cross-reference id: ..." (REAL-REC openstax/openstax_salesforce_api
        # spec/cassettes/api/v1/opportunities/.../returns_a_200_response.yml @04d5a95).
        if record_id in self.private_ids:
            raise RecordError("INSUFFICIENT_ACCESS_OR_READONLY",
                              "insufficient access rights on object id", [])

    def validate(self, sobject: str, event: str, record: dict[str, Any]) -> None:
        """Custom validation rules run after the system validation and before-triggers and
        before duplicate rules (Apex Developer Guide, "Triggers and Order of Execution")."""
        for rule in self.validation_rules:
            if rule.sobject == sobject and event in rule.on and rule.refuses(record):
                raise rule.error()

    def after_save(self, sobject: str, event: str, size: int, memo: dict[int, bool] | None) -> None:
        """After-save triggers and flows: raise when one throws for this call.

        ``memo`` holds this call's decisions, so every record of one call shares its trigger's
        outcome (None outside a collection call: each single-record request decides alone).
        """
        for failure in self.trigger_failures:
            if failure.sobject != sobject or event not in failure.on:
                continue
            key = id(failure)
            if memo is not None and key in memo:
                fired = memo[key]
            else:
                fired = failure.fires(size)
                if memo is not None:
                    memo[key] = fired
            if fired:
                raise failure.error(event)


class OrgLifeSwitches:
    """The :class:`~.org.Org` methods that switch these behaviours on (Org inherits them)."""

    life: OrgLife
    _lock: threading.RLock
    _by_type: dict[str, dict[str, dict[str, Any]]]
    _object: Callable[[str], str]
    _field_name: Callable[[str, str], str | None]
    _fields: Callable[[str], dict[str, dict[str, Any]]]
    _index: Callable[[str, dict[str, Any]], None]
    _unindex: Callable[[str, dict[str, Any]], None]
    _store: Callable[[str, str, dict[str, Any] | None], None]

    def fail_trigger(self, sobject: str, times: int | None = 1, *, cause: str = "row_lock",
                     on: tuple[str, ...] = EVENTS, trigger: str = "",
                     batch_over: int = 0) -> TriggerFailure:
        """An after-save trigger on ``sobject`` throws for the next ``times`` API calls that
        write it (None: every call): CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY wrapping a row lock
        (``cause="row_lock"``), "Apex CPU time limit exceeded" (``"cpu"``) or "Too many SOQL
        queries: 101" (``"soql"``). With ``batch_over`` it throws only for calls writing more
        than that many records. Returns the rule (``failed_calls`` counts its failures)."""
        failure = TriggerFailure(self._object(sobject), cause=cause, times=times, on=tuple(on),
                                 trigger=trigger, batch_over=batch_over)
        with self._lock:
            self.life.trigger_failures.append(failure)
        return failure

    def add_validation_rule(self, sobject: str, name: str, message: str, *, field: str | None = None,
                            when: Callable[[dict[str, Any]], bool] | dict[str, Any] | None = None,
                            on: tuple[str, ...] = EVENTS) -> ValidationRule:
        """An active validation rule: API saves of ``sobject`` for which ``when`` holds (a
        predicate on the record, or a dict of field values) fail with
        FIELD_CUSTOM_VALIDATION_EXCEPTION, ``message`` and ``fields`` = [field]."""
        rule = ValidationRule(self._object(sobject), name, message, field=field,
                              when=when if when is not None else {}, on=tuple(on))
        with self._lock:
            self.life.validation_rules.append(rule)
        return rule

    @property
    def storage_full(self) -> bool:
        """True: the org's data storage is full; API creates fail with STORAGE_LIMIT_EXCEEDED."""
        return self.life.storage_full

    @storage_full.setter
    def storage_full(self, full: bool) -> None:
        with self._lock:
            self.life.storage_full = bool(full)

    def make_private(self, *record_ids: str) -> None:
        """The integration user may read these records but not update or delete them."""
        with self._lock:
            self.life.private_ids.update(self._canonical_id(r) for r in record_ids)

    def make_public(self, *record_ids: str) -> None:
        with self._lock:
            self.life.private_ids.difference_update(self._canonical_id(r) for r in record_ids)

    def add_campaign_status_on_insert(self, label: str, sort_order: int, *, has_responded: bool = False,
                                      is_default: bool = False) -> None:
        """A flow (or Campaign-type template) that adds this status to every new Campaign,
        besides Sent (1) and Responded (2). Orgs do this with a flow or trigger on Campaign insert,
        numbering from 3 (x2od/campaign-member-status
        force-app/main/default/classes/CMS_CampaignTriggerHandler.cls)."""
        with self._lock:
            self.life.campaign_statuses.append({"Label": label, "SortOrder": sort_order,
                                                "HasResponded": has_responded, "IsDefault": is_default})

    def remove_field(self, sobject: str, name: str) -> None:
        """An admin deletes a field: the describe stops listing it and writes or queries naming it
        answer INVALID_FIELD "No such column" (REAL-REC forcedotcom/sf-fx-runtime-java
        mappings/create-invalid-field.json, update-invalid-field.json, query-unknown-column.json;
        that a deleted field answers as an unknown one is inferred). The values are kept for restore_field, as a deleted
        custom field keeps its data for 15 days (Salesforce Help, "Manage Deleted Custom Fields")."""
        with self._lock:
            sobject = self._object(sobject)
            canonical = self._field_name(sobject, name)
            if canonical is None or canonical == "Id":
                raise KeyError(f"{sobject}.{name}")
            self._reindexed(sobject, lambda fields: self.life.removed_fields.__setitem__(
                (sobject, canonical), fields.pop(canonical)))

    def restore_field(self, sobject: str, name: str) -> None:
        """Undelete a field removed with remove_field (its values come back)."""
        with self._lock:
            sobject = self._object(sobject)
            key = next(k for k in self.life.removed_fields if k[0] == sobject and k[1].lower() == name.lower())
            meta = self.life.removed_fields.pop(key)
            self._reindexed(sobject, lambda fields: fields.__setitem__(key[1], meta))
            for rid, rec in list(self._by_type[sobject].items()):
                if key[1] not in rec:  # created while the field was gone
                    self._store(sobject, rid, {**rec, key[1]: meta["default"]})

    def _reindexed(self, sobject: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply a schema change with the object's records unindexed under the old schema."""
        records = list(self._by_type[sobject].values())
        for rec in records:
            self._unindex(sobject, rec)
        change(self._fields(sobject))
        for rec in records:
            self._index(sobject, rec)

    def _canonical_id(self, record_id: str) -> str:
        rid = normalise_id(record_id)
        if rid is None:
            raise ValueError(f"not a record id: {record_id!r}")
        return rid
