"""The compiled mapping: plain objects holding closures. Nothing here parses YAML or text.

The sync engine codes against these classes; see ``connector/mapping/__init__.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .conditions import Condition, is_empty

Overwrite = Literal["always", "if_empty", "on_create"]
RuleKind = Literal["source", "value", "ref"]
ValueFn = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]


@dataclass(frozen=True)
class TransformUse:
    """One transform as written (kept for validation against the org)."""

    name: str
    arg: Any  # transforms.NO_ARG when none was given
    line: int


@dataclass(frozen=True)
class FieldRule:
    """One compiled ``fields:`` entry. ``value`` does source/constant/ref + transforms + default."""

    field: str
    kind: RuleKind
    spec: Any  # the path, the constant, or the ref name
    overwrite: Overwrite
    when: Condition | None
    value: ValueFn
    line: int
    kind_line: int
    transforms: tuple[TransformUse, ...] = ()
    produces: str = "text"  # date, datetime, boolean, number, text, id (for org type checks)


def _always(msg: Mapping[str, Any]) -> bool:
    return True


class RecordMapping:
    """How one Salesforce record is built from one message."""

    def __init__(
        self, *, object: str, upsert_key: str, file: str, line: int,
        rules: list[FieldRule], when: Condition | None = None,
        object_line: int = 0, upsert_key_line: int = 0, role: str = "",
        record_type: str | None = None, record_type_line: int = 0,
    ) -> None:
        self.object = object
        # A record type named by DeveloperName; preflight resolves it to the org's RecordTypeId
        # (connector.mapping.recordtypes), which is written when the record is created only.
        self.record_type = record_type
        self.record_type_line = record_type_line or line
        self.record_type_id: str | None = None
        self.upsert_key = upsert_key
        self.file = file
        self.line = line
        self.role = role
        self.object_line = object_line or line
        self.upsert_key_line = upsert_key_line or line
        self.rules: tuple[FieldRule, ...] = tuple(rules)
        self._when = when or _always
        self._by_field = {r.field: r for r in self.rules}
        # What each `placeholder` rule yields when Jomablue leaves the value empty.
        self._placeholders = {r.field: r.value({}, {}) for r in self.rules
                              if r.kind == "source" and any(t.name == "placeholder" for t in r.transforms)}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.role} {self.object} ({self.file}:{self.line})>"

    def applies(self, msg: Mapping[str, Any]) -> bool:
        """The record-level ``when`` (True when there is none)."""
        return bool(self._when(msg))

    def build(
        self, msg: Mapping[str, Any], refs: Mapping[str, Any],
        mode: Literal["upsert", "update"] = "upsert",
        current: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The record's field values for this message; empty values are never included.

        ``upsert``: every applicable rule. ``update`` (the record exists): ``on_create`` rules are
        skipped, and ``if_empty`` rules only apply when ``current`` is given and its value is empty.
        """
        if mode not in ("upsert", "update"):
            raise ValueError(f"mode must be 'upsert' or 'update', not {mode!r}")
        out: dict[str, Any] = {}
        for rule in self.rules:
            if mode == "update":
                if rule.overwrite == "on_create":
                    continue
                if rule.overwrite == "if_empty" and (
                    current is None or not is_empty(current.get(rule.field))
                ):
                    continue
            if rule.when is not None and not rule.when(msg):
                continue
            value = rule.value(msg, refs)
            if value is None:
                continue
            if mode == "update" and rule.field in self._placeholders and value == self._placeholders[rule.field]:
                # The placeholder exists to satisfy a required field on create; on an existing
                # record an empty Jomablue value must not replace a real name with it.
                continue
            out[rule.field] = value
        if mode == "upsert" and self.record_type_id:
            # Changing an existing record's type is an admin's act: never in an update.
            out["RecordTypeId"] = self.record_type_id
        return out

    def create_only_fields(self) -> list[str]:
        """Fields an update of an existing record must leave out (``on_create`` rules, the record type)."""
        return self.fields_with_policy("on_create") + (["RecordTypeId"] if self.record_type_id else [])

    def placeholder_values(self) -> dict[str, Any]:
        """field → the value its `placeholder` transform writes when Jomablue leaves it empty."""
        return dict(self._placeholders)

    def fields_with_policy(self, policy: str) -> list[str]:
        return [r.field for r in self.rules if r.overwrite == policy]

    def field_names(self) -> list[str]:
        return [r.field for r in self.rules]

    def field_for_ref(self, ref: str) -> str | None:
        for rule in self.rules:
            if rule.kind == "ref" and rule.spec == ref:
                return rule.field
        return None

    def upsert_value(self, msg: Mapping[str, Any], refs: Mapping[str, Any]) -> str | None:
        rule = self._by_field.get(self.upsert_key)
        if rule is None or (rule.when is not None and not rule.when(msg)):
            return None
        value = rule.value(msg, refs)
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        return text.strip() or None


class StatusPolicy:
    """Campaign member status: rules (first match wins), progression rank, final statuses."""

    def __init__(
        self, rules: list[tuple[Condition | None, str]], progression: list[str],
        final: list[str], fallback: str,
    ) -> None:
        self.rules = tuple(rules)
        self.progression = tuple(progression)
        self.final = tuple(final)
        self.fallback = fallback
        self._rank = {label: i for i, label in enumerate(self.progression)}

    def status_for(self, msg: Mapping[str, Any]) -> str:
        for cond, status in self.rules:
            if cond is None or cond(msg):
                return status
        return self.fallback

    def merge(self, previous: str | None, new: str) -> str:
        """Final statuses win and stick; along the progression the higher rank wins; else new."""
        if previous is not None and previous in self.final:
            return previous
        if new in self.final or previous is None:
            return new
        if previous in self._rank and new in self._rank:
            return previous if self._rank[previous] > self._rank[new] else new
        return new

    def labels(self) -> list[str]:
        seen: list[str] = []
        for label in [s for _, s in self.rules] + list(self.progression) + list(self.final):
            if label not in seen:
                seen.append(label)
        return seen


class MembershipMapping(RecordMapping):
    def __init__(self, *, status: StatusPolicy, **kw: Any) -> None:
        super().__init__(**kw)
        self.status = status


def _clean(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = (value if isinstance(value, str) else str(value)).strip()
    return text or None


class PersonMapping:
    """Who a message is about (for matching) and how the Lead / Contact records are built."""

    def __init__(
        self, *, lead: RecordMapping, contact: RecordMapping,
        jomablue_id: Callable[[Any], Any], organisation_uid: Callable[[Any], Any] | None,
        email: Callable[[Any], Any] | None,
    ) -> None:
        self.lead = lead
        self.contact = contact
        self._jid = jomablue_id
        self._uid = organisation_uid
        self._email = email

    def jomablue_id(self, msg: Mapping[str, Any]) -> str | None:
        return _clean(self._jid(msg))

    def organisation_uid(self, msg: Mapping[str, Any]) -> str | None:
        return _clean(self._uid(msg)) if self._uid else None

    def email(self, msg: Mapping[str, Any]) -> str | None:
        return _clean(self._email(msg)) if self._email else None


class CategorySource:
    """Where the event's category table is: ``extract(msg) -> [(id, name), ...]``."""

    def __init__(self, items: Callable[[Any], Any], id_: Callable[[Any], Any],
                 name: Callable[[Any], Any]) -> None:
        self._items = items
        self._id = id_
        self._name = name

    def extract(self, msg: Mapping[str, Any]) -> list[tuple[str, str]]:
        items = self._items(msg)
        if not isinstance(items, list):
            return []
        out: list[tuple[str, str]] = []
        for item in items:
            cid = _clean(self._id(item))
            if cid is None:
                continue
            name = self._name(item)
            out.append((cid, "" if name is None else str(name)))
        return out


@dataclass(frozen=True)
class Matching:
    organisation_uid_field: str | None = None
    email: bool = True
    create_as: str = "Lead"
    placeholder: str = "[not provided]"


@dataclass(frozen=True)
class StatusDef:
    label: str
    responded: bool
    default: bool
    sort_order: int
    line: int = field(default=0, compare=False, repr=False)


@dataclass
class ResourceMapping:
    resource_type: str
    file: str = ""
    person: PersonMapping | None = None
    campaign: RecordMapping | None = None
    session_campaign: RecordMapping | None = None
    membership: MembershipMapping | None = None
    capture: RecordMapping | None = None
    categories: CategorySource | None = None

    def records(self) -> list[RecordMapping]:
        """Every record mapping of this resource type (Lead and Contact included)."""
        out: list[RecordMapping] = []
        if self.person is not None:
            out += [self.person.lead, self.person.contact]
        for rec in (self.campaign, self.session_campaign, self.capture, self.membership):
            if rec is not None:
                out.append(rec)
        return out


@dataclass
class MappingSet:
    folder: Path
    version: str
    matching: Matching
    statuses: list[StatusDef]
    resources: dict[str, ResourceMapping] = field(default_factory=dict)
    statuses_line: int = 0
    event_file: str = ""

    def for_type(self, resource_type: str) -> ResourceMapping | None:
        return self.resources.get(resource_type)

    def locate(self, sobject: str, field_name: str) -> str | None:
        """``file:line`` of the first rule writing ``sobject.field_name`` (names match in any case,
        as Salesforce's do; ``RecordTypeId`` points at the ``record_type`` key), or None."""
        for rm in self.resources.values():
            for rec in rm.records():
                if rec.object.lower() != sobject.lower():
                    continue
                if field_name.lower() == "recordtypeid" and rec.record_type:
                    return f"{rec.file}:{rec.record_type_line}"
                for rule in rec.rules:
                    if rule.field.lower() == field_name.lower():
                        return f"{rec.file}:{rule.line}"
        return None


_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")


def refused_column(message: str) -> str | None:
    """The field an ``INVALID_FIELD`` refusal names in its text (it has no ``fields`` key):
    ``No such column 'Title' on sobject of type Lead`` → ``Title`` (the REST API's answer to an
    unknown field on create/update, as recorded in forcedotcom/sf-fx-runtime-java test fixtures)."""
    found = _NO_SUCH_COLUMN.search(message or "")
    return found.group(1) if found else None
