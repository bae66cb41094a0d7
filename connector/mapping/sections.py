"""Compilers for the non-field sections: person, matching, statuses, categories, status policy.

Mixed into the file compiler in ``compiler.py`` (which provides ``err``, ``warn``, ``keys``,
``is_map``, ``is_str``, ``path``, ``condition`` and ``record``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .conditions import Condition
from .loader import LineDict, LineList
from .model import CategorySource, Matching, PersonMapping, RecordMapping, StatusDef, StatusPolicy
from .paths import PathError, compile_path

DEFAULT_MATCHING = Matching()


class SectionsMixin:
    """Section compilers; relies on the helpers of ``compiler._FileCompiler``."""

    label_uses: list[tuple[int, str]]
    policies: list[StatusPolicy]

    if TYPE_CHECKING:
        # The helpers ``compiler._FileCompiler`` provides, declared so the sections are type-checked.
        def err(self, line: int, message: str) -> None: ...
        def warn(self, line: int, message: str) -> None: ...
        def keys(self, node: LineDict, allowed: tuple[str, ...], where: str) -> set[str]: ...
        def is_map(self, value: Any, line: int, where: str) -> bool: ...
        def is_str(self, value: Any, line: int, where: str) -> bool: ...
        def path(self, text: Any, line: int, where: str) -> Callable[[Any], Any] | None: ...
        def condition(self, text: Any, line: int, where: str) -> Condition | None: ...
        def record(self, node: Any, line: int, role: str) -> RecordMapping | None: ...

    def labels(self, raw: Any, line: int, where: str) -> list[str] | None:
        if not isinstance(raw, LineList):
            self.err(line, f"{where} must be a list of status labels")
            return None
        out = []
        for i, label in enumerate(raw):
            if self.is_str(label, raw.item_line(i), f"{where} item"):
                out.append(label)
                self.label_uses.append((raw.item_line(i), label))
        return out

    def status_policy(self, node: Any, line: int) -> StatusPolicy | None:
        where = "membership status"
        if not self.is_map(node, line, where):
            return None
        self.keys(node, ("rules", "progression", "final"), where)
        rules_raw = node.get("rules")
        if not isinstance(rules_raw, LineList) or not rules_raw:
            self.err(node.key_line("rules"), f"{where}: 'rules' must be a non-empty list")
            return None
        ok = True
        rules: list[tuple[Condition | None, str]] = []
        for i, item in enumerate(rules_raw):
            rline = rules_raw.item_line(i)
            if not self.is_map(item, rline, f"{where} rule"):
                ok = False
                continue
            self.keys(item, ("when", "status"), f"{where} rule")
            if "status" not in item:
                self.err(item.line, f"{where} rule: missing 'status'")
                ok = False
                continue
            label = item["status"]
            if not self.is_str(label, item.key_line("status"), f"{where} rule 'status'"):
                ok = False
                continue
            self.label_uses.append((item.key_line("status"), label))
            cond = None
            if "when" in item:
                cond = self.condition(item["when"], item.key_line("when"), f"{where} rule")
                ok = ok and cond is not None
            rules.append((cond, label))
        progression = self.labels(node.get("progression", LineList()),
                                  node.key_line("progression"), f"{where} 'progression'")
        final = self.labels(node.get("final", LineList()), node.key_line("final"),
                            f"{where} 'final'")
        if progression is None or final is None or not ok:
            return None
        for label in set(progression) & set(final):
            self.err(node.key_line("final"), f"{where}: '{label}' is in both 'progression' and 'final'")
            ok = False
        if rules and rules[-1][0] is not None:
            self.warn(rules_raw.item_line(len(rules_raw) - 1),
                      f"{where}: the last rule has a 'when'; members that match no rule get the default status")
        policy = StatusPolicy(rules, progression, final, fallback="")
        self.policies.append(policy)
        return policy if ok else None

    def person(self, node: Any, line: int) -> PersonMapping | None:
        if not self.is_map(node, line, "person"):
            return None
        self.keys(node, ("source", "lead", "contact"), "person")
        ok = True
        for key in ("source", "lead", "contact"):
            if key not in node:
                self.err(node.line, f"person: missing '{key}'")
                ok = False
        if not ok:
            return None
        src = node["source"]
        getters: dict[str, Any] = {}
        if self.is_map(src, node.key_line("source"), "person source"):
            self.keys(src, ("jomablue_id", "organisation_uid", "email"), "person source")
            if "jomablue_id" not in src:
                self.err(src.line, "person source: missing 'jomablue_id'")
                ok = False
            for key in ("jomablue_id", "organisation_uid", "email"):
                if key in src:
                    getters[key] = self.path(src[key], src.key_line(key), f"person source {key}")
                    ok = ok and getters[key] is not None
        else:
            ok = False
        lead = self.record(node["lead"], node.key_line("lead"), "person lead")
        contact = self.record(node["contact"], node.key_line("contact"), "person contact")
        if not ok or lead is None or contact is None:
            return None
        return PersonMapping(lead=lead, contact=contact, jomablue_id=getters["jomablue_id"],
                             organisation_uid=getters.get("organisation_uid"),
                             email=getters.get("email"))

    def matching(self, node: Any, line: int) -> Matching | None:
        where = "matching"
        if not self.is_map(node, line, where):
            return None
        self.keys(node, ("organisation_uid_field", "email", "create_as", "placeholder"), where)
        ok = True
        uid_field = node.get("organisation_uid_field")
        if uid_field is not None and not self.is_str(uid_field, node.key_line("organisation_uid_field"),
                                                     "matching 'organisation_uid_field'"):
            ok = False
        email = node.get("email", True)
        if not isinstance(email, bool):
            self.err(node.key_line("email"), f"matching 'email' must be true or false, not {email!r}")
            ok = False
        create_as = node.get("create_as", "Lead")
        if create_as not in ("Lead", "Contact"):
            self.err(node.key_line("create_as"),
                     f"matching 'create_as' must be Lead or Contact, not {create_as!r}")
            ok = False
        placeholder = node.get("placeholder", DEFAULT_MATCHING.placeholder)
        if not self.is_str(placeholder, node.key_line("placeholder"), "matching 'placeholder'"):
            ok = False
        if not ok:
            return None
        return Matching(uid_field, email, create_as, placeholder)

    def statuses(self, node: Any, line: int) -> list[StatusDef] | None:
        if not isinstance(node, LineList) or not node:
            self.err(line, "statuses must be a non-empty list of {label, responded, default}")
            return None
        out: list[StatusDef] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(node):
            iline = node.item_line(i)
            if not self.is_map(item, iline, "status"):
                continue
            self.keys(item, ("label", "responded", "default"), "status")
            label = item.get("label")
            if not self.is_str(label, item.key_line("label"), "status 'label'"):
                continue
            if label in seen:
                self.err(item.key_line("label"), f"status '{label}' is declared twice (first at line {seen[label]})")
                continue
            seen[label] = item.key_line("label")
            flags = {}
            for key in ("responded", "default"):
                value = item.get(key, False)
                if not isinstance(value, bool):
                    self.err(item.key_line(key), f"status '{label}': '{key}' must be true or false")
                    value = False
                flags[key] = value
            out.append(StatusDef(label, flags["responded"], flags["default"], len(out) + 1,
                                 line=item.key_line("label")))
        defaults = [s for s in out if s.default]
        if out and len(defaults) != 1:
            self.err(line, f"statuses: exactly one status must have 'default: true' (found {len(defaults)})")
        return out

    def categories(self, node: Any, line: int) -> CategorySource | None:
        if not self.is_map(node, line, "categories"):
            return None
        self.keys(node, ("source", "id", "name"), "categories")
        if "source" not in node:
            self.err(node.line, "categories: missing 'source'")
            return None
        items = self.path(node["source"], node.key_line("source"), "categories source")
        getters = []
        for key in ("id", "name"):
            raw = node.get(key, key)
            if not self.is_str(raw, node.key_line(key), f"categories '{key}'"):
                return None
            try:
                getters.append(compile_path(raw))
            except PathError as exc:
                self.err(node.key_line(key), f"categories '{key}': {exc}")
                return None
        if items is None:
            return None
        return CategorySource(items, getters[0], getters[1])
