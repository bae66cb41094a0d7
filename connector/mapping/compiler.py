"""Compile a mapping folder (one YAML file per resource type) into a :class:`MappingSet`.

One pass collects every problem (each with the line of the offending key) instead of stopping at
the first; the same step serves ``load_mapping_set`` and ``connector mapping validate``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..salesforce import schema as sf_schema
from .conditions import Condition, ConditionError, is_empty, parse_condition
from .errors import Problems
from .known_paths import KNOWN_PATHS, is_known
from .loader import LineDict, LineList, YamlSyntaxError, load_yaml
from .model import (
    FieldRule,
    MappingSet,
    MembershipMapping,
    RecordMapping,
    ResourceMapping,
    RuleKind,
    StatusPolicy,
    TransformUse,
)
from .paths import PathError, compile_path, has_wildcard
from .recordtypes import record_type_problem
from .refs import ID_REFS, REF_NAMES
from .sections import DEFAULT_MATCHING, SectionsMixin
from .transforms import NO_ARG, REGISTRY, CompileContext, TransformError, finalise

Describe = Callable[[str], "dict[str, Any] | None"]

RESOURCE_TYPES = ("event", "person", "session_participation", "lead")
ROLES: dict[str, tuple[str, ...]] = {
    "event": ("campaign", "statuses", "categories"),
    "person": ("matching", "person", "campaign", "membership"),
    "session_participation": ("person", "campaign", "session_campaign", "membership"),
    "lead": ("person", "campaign", "capture", "membership"),
}
REQUIRED_ROLES: dict[str, tuple[str, ...]] = {"event": ("campaign",), "person": ("person",)}
ALL_ROLES = frozenset(r for roles in ROLES.values() for r in roles)
REFS = REF_NAMES            # the engine builds them with connector.mapping.refs.refs()
_ID_REFS = ID_REFS
RULE_KEYS = ("field", "source", "value", "ref", "transforms", "default", "when", "overwrite")
RECORD_KEYS = ("object", "upsert_key", "when", "fields")
OVERWRITES = ("always", "if_empty", "on_create")
_RULE_KINDS: tuple[RuleKind, ...] = ("source", "value", "ref")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string",
            LineDict: "mapping", LineList: "list", dict: "mapping", list: "list"}.get(
        type(value), type(value).__name__)


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """' (did you mean 'source'?)' for a near miss, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _sf_length(sobject: str, name: str) -> int | None:
    meta = sf_schema.field(sobject, name)
    if meta is None:  # Salesforce field names are case-insensitive
        fields = sf_schema.OBJECTS.get(sobject, {}).get("fields", {})
        meta = next((m for n, m in fields.items() if n.lower() == name.lower()), None)
    return meta.get("length") if meta else None


def _describe_length(describe: Describe) -> Callable[[str, str], int | None]:
    cache: dict[str, dict[str, Any] | None] = {}

    def length(sobject: str, name: str) -> int | None:
        if sobject not in cache:
            cache[sobject] = describe(sobject)
        desc = cache[sobject]
        for f in (desc or {}).get("fields", []):
            if str(f.get("name", "")).lower() == name.lower():
                return f.get("length") or None
        return None
    return length


class _FileCompiler(SectionsMixin):
    """Compiles one file; problems go to the shared collector."""

    def __init__(self, file: str, rtype: str, problems: Problems, placeholder: str,
                 length: Callable[[str, str], int | None], org_lengths: bool) -> None:
        self.file = file
        self.rtype = rtype
        self.p = problems
        self.placeholder = placeholder
        self.length = length
        self.org_lengths = org_lengths
        self.roles_present: set[str] = set()
        self.label_uses: list[tuple[int, str]] = []
        self.policies: list[StatusPolicy] = []
        self.misspelt: set[str] = set()   # keys an unknown key was taken for (not also reported missing)

    # -- helpers ---------------------------------------------------------------------------
    def err(self, line: int, message: str) -> None:
        self.p.error(self.file, line, message)

    def warn(self, line: int, message: str) -> None:
        self.p.warning(self.file, line, message)

    def keys(self, node: LineDict, allowed: tuple[str, ...], where: str) -> set[str]:
        """Report unknown and duplicate keys; return the allowed keys that an unknown key looks like
        a misspelling of (so the caller does not also report them as missing: one mistake, one error)."""
        meant: set[str] = set()
        for key, line in node.duplicates:
            self.err(line, f"{where}: duplicate key '{key}'")
        for key in node:
            if key not in allowed:
                hint = did_you_mean(key, [a for a in allowed if a not in node])
                if hint:
                    meant.add(hint.split("'")[1])
                    self.err(node.key_line(key), f"{where}: unknown key '{key}'{hint}")
                else:
                    self.err(node.key_line(key), f"{where}: unknown key '{key}' (allowed: {', '.join(allowed)})")
        return meant

    def is_map(self, value: Any, line: int, where: str) -> bool:
        if isinstance(value, LineDict):
            return True
        self.err(line, f"{where} must be a mapping, not {_type_name(value)}")
        return False

    def is_str(self, value: Any, line: int, where: str) -> bool:
        if isinstance(value, str) and value.strip():
            return True
        self.err(line, f"{where} must be a non-empty string, not {_type_name(value)}")
        return False

    def path(self, text: Any, line: int, where: str) -> Callable[[Any], Any] | None:
        if not self.is_str(text, line, where):
            return None
        try:
            getter = compile_path(text)
        except PathError as exc:
            self.err(line, f"{where}: {exc}")
            return None
        self.check_known(text, line, where)
        return getter

    def check_known(self, path: str, line: int, where: str) -> None:
        if not is_known(self.rtype, path):
            hint = did_you_mean(path, KNOWN_PATHS.get(self.rtype, ()))
            self.warn(line, f"{where}: path '{path}' is not in any known {self.rtype} payload{hint}")

    def condition(self, text: Any, line: int, where: str) -> Condition | None:
        try:
            cond, paths = parse_condition(text)
        except ConditionError as exc:
            self.err(line, f"{where}: cannot parse condition {text!r}: {exc}")
            return None
        for path in paths:
            self.check_known(path, line, where)
        return cond

    # -- sections --------------------------------------------------------------------------
    def rule(self, node: Any, line: int, sobject: str, role: str,
             seen: dict[str, int]) -> FieldRule | None:
        where = f"{role} field rule"
        if not self.is_map(node, line, where):
            return None
        meant = self.keys(node, RULE_KEYS, where)
        name = node.get("field")
        if "field" not in node:
            if "field" not in meant:
                self.err(node.line, f"{where}: missing 'field'")
            return None
        if not self.is_str(name, node.key_line("field"), f"{where} 'field'"):
            return None
        where = f"{role} field {name}"
        fline = node.key_line("field")
        if name in seen:
            self.err(fline, f"{where}: duplicate target field (first mapped at line {seen[name]})")
        else:
            seen[name] = fline
        kinds = [k for k in _RULE_KINDS if k in node]
        if not kinds:
            if not meant & {"source", "value", "ref"}:
                self.err(fline, f"{where}: needs one of 'source', 'value' or 'ref'")
            return None
        if len(kinds) > 1:
            self.err(node.key_line(kinds[1]),
                     f"{where}: give only one of 'source', 'value' or 'ref' (found {' and '.join(kinds)})")
            return None
        kind = kinds[0]
        spec = node[kind]
        kline = node.key_line(kind)
        ok = True
        getter: Getter
        produces = "text"
        if kind == "source":
            path_get = self.path(spec, kline, where)
            if path_get is None:
                return None
            getter = _by_path(path_get)
        elif kind == "value":
            if isinstance(spec, (LineDict, LineList)) or spec is None:
                self.err(kline, f"{where}: 'value' must be a string, number or boolean, not {_type_name(spec)}")
                return None
            getter = _constant(spec)
            produces = "boolean" if isinstance(spec, bool) else (
                "number" if isinstance(spec, (int, float)) else "text")
        else:
            if not isinstance(spec, str) or spec not in REFS:
                hint = did_you_mean(spec, REFS) or f" (known: {', '.join(REFS)})"
                self.err(kline, f"{where}: unknown ref {spec!r}{hint}")
                return None
            ok = self.ref_allowed(spec, kline, where, role) and ok
            getter = _by_ref(spec)
            produces = "id" if spec in _ID_REFS else "text"

        overwrite = node.get("overwrite", "always")
        if overwrite not in OVERWRITES:
            self.err(node.key_line("overwrite"),
                     f"{where}: overwrite must be one of {', '.join(OVERWRITES)}, not {overwrite!r}")
            ok = False
        when = None
        if "when" in node:
            when = self.condition(node["when"], node.key_line("when"), where)
            ok = ok and when is not None
        fns, uses, tprod = self.transforms(node, sobject, name, where)
        if fns is None:
            return None
        produces = tprod or produces
        default_get = None
        if "default" in node:
            default_get = self.default(node["default"], node.key_line("default"), where)
            ok = ok and default_get is not None
        if kind == "source" and has_wildcard(spec) and not any(
                u.name in ("join", "json") for u in uses):
            self.warn(kline, f"{where}: '{spec}' collects a list; add a 'join' transform "
                             "(the items are joined with ';' otherwise)")
        if not ok:
            return None
        return FieldRule(
            field=name, kind=kind, spec=spec, overwrite=overwrite, when=when,
            value=_value_fn(getter, fns, default_get), line=fline, kind_line=kline,
            transforms=tuple(uses), produces=produces,
        )

    def ref_allowed(self, ref: str, line: int, where: str, role: str) -> bool:
        if ref == "status" and role != "membership":
            self.err(line, f"{where}: ref 'status' is only available in 'membership'")
            return False
        if ref.startswith("person.") and "person" not in ROLES[self.rtype]:
            self.err(line, f"{where}: ref '{ref}' needs a 'person' section, which a {self.rtype} mapping cannot have")
            return False
        if ref == "session_campaign.id" and self.rtype != "session_participation":
            self.err(line, f"{where}: ref 'session_campaign.id' is only available in session_participation.yaml")
            return False
        return True

    def transforms(self, node: LineDict, sobject: str, field_name: str, where: str
                   ) -> tuple[list[Any] | None, list[TransformUse], str | None]:
        raw = node.get("transforms", LineList())
        if not isinstance(raw, LineList):
            self.err(node.key_line("transforms"), f"{where}: 'transforms' must be a list")
            return None, [], None
        fns: list[Any] = []
        uses: list[TransformUse] = []
        produces: str | None = None
        ok = True
        for i, item in enumerate(raw):
            line = raw.item_line(i)
            if isinstance(item, str):
                tname, arg = item, NO_ARG
            elif isinstance(item, LineDict) and len(item) == 1:
                tname, arg = next(iter(item.items()))
            else:
                self.err(line, f"{where}: a transform is a name or a one-key mapping {{name: argument}}")
                ok = False
                continue
            spec = REGISTRY.get(tname) if isinstance(tname, str) else None
            if spec is None:
                hint = did_you_mean(tname, REGISTRY) or f" (known: {', '.join(REGISTRY)})"
                self.err(line, f"{where}: unknown transform {tname!r}{hint}")
                ok = False
                continue
            if spec.arg == "none" and arg is not NO_ARG:
                self.err(line, f"{where}: transform '{tname}' takes no argument")
                ok = False
                continue
            if spec.arg == "required" and arg is NO_ARG:
                self.err(line, f"{where}: transform '{tname}' needs an argument")
                ok = False
                continue
            length = self.length(sobject, field_name) if tname == "truncate" and arg is NO_ARG else None
            if tname == "truncate" and arg is NO_ARG and length is None and not self.org_lengths:
                self.warn(line, f"{where}: truncate on {sobject}.{field_name}: length unknown, "
                                "add an argument or validate --against-org")
            try:
                fns.append(spec.factory(arg, CompileContext(length, self.placeholder)))
            except TransformError as exc:
                self.err(line, f"{where}: transform '{tname}': {exc}")
                ok = False
                continue
            uses.append(TransformUse(tname, arg, line))
            if spec.produces is not None:
                produces = spec.produces
        return (fns if ok else None), uses, produces

    def default(self, raw: Any, line: int, where: str) -> Callable[..., Any] | None:
        if isinstance(raw, LineDict):
            if list(raw) != ["source"]:
                self.err(line, f"{where}: 'default' is a constant or {{source: path}}")
                return None
            getter = self.path(raw["source"], raw.key_line("source"), f"{where} default")
            if getter is None:
                return None
            return lambda msg, refs, g=getter: g(msg)
        if raw is None or isinstance(raw, LineList):
            self.err(line, f"{where}: 'default' is a constant or {{source: path}}")
            return None
        return lambda msg, refs, c=raw: c

    def record(self, node: Any, line: int, role: str) -> RecordMapping | None:
        if not self.is_map(node, line, role):
            return None
        allowed = RECORD_KEYS + (("status",) if role == "membership" else ("record_type",))
        meant = self.keys(node, allowed, role)
        ok = True
        for key in ("object", "upsert_key", "fields"):
            if key not in node:
                if key not in meant:
                    self.err(node.line, f"{role}: missing '{key}'")
                ok = False
        if not ok:
            return None
        sobject, upsert_key = node["object"], node["upsert_key"]
        ok = self.is_str(sobject, node.key_line("object"), f"{role} 'object'")
        ok = self.is_str(upsert_key, node.key_line("upsert_key"), f"{role} 'upsert_key'") and ok
        fields = node["fields"]
        if not isinstance(fields, LineList):
            self.err(node.key_line("fields"), f"{role}: 'fields' must be a list")
            return None
        if not ok:
            return None
        when = None
        if "when" in node:
            when = self.condition(node["when"], node.key_line("when"), role)
            ok = when is not None
        seen: dict[str, int] = {}
        rules = []
        for i, item in enumerate(fields):
            rule = self.rule(item, fields.item_line(i), sobject, role, seen)
            if rule is None:
                ok = False
            else:
                rules.append(rule)
        if upsert_key not in seen:
            self.err(node.key_line("upsert_key"),
                     f"{role}: upsert key '{upsert_key}' is not mapped by any field rule")
            ok = False
        record_type = node.get("record_type")
        if "record_type" in node:
            problem = record_type_problem(record_type)
            if problem:
                self.err(node.key_line("record_type"), f"{role}: {problem}")
                ok = False
        kw: dict[str, Any] = dict(
            object=sobject, upsert_key=upsert_key, file=self.file, line=line, rules=rules,
            when=when, object_line=node.key_line("object"),
            upsert_key_line=node.key_line("upsert_key"), role=role,
            record_type=record_type, record_type_line=node.key_line("record_type"),
        )
        if role == "membership":
            if "status" not in node:
                if "status" not in meant:
                    self.err(node.line, "membership: missing 'status'")
                return None
            policy = self.status_policy(node["status"], node.key_line("status"))
            if policy is None or not ok:
                return None
            return MembershipMapping(status=policy, **kw)
        return RecordMapping(**kw) if ok else None

    def compile(self, doc: LineDict) -> ResourceMapping:
        rm = ResourceMapping(resource_type=self.rtype, file=self.file)
        allowed = ROLES[self.rtype]
        for key in doc:
            if key == "resource_type":
                continue
            line = doc.key_line(key)
            if key not in allowed:
                if key in ALL_ROLES:
                    self.err(line, f"role '{key}' is not allowed in {_article(self.rtype)} {self.rtype} mapping "
                                   f"(allowed: {', '.join(allowed)})")
                else:
                    hint = did_you_mean(key, [a for a in allowed if a not in doc])
                    if hint:
                        self.misspelt.add(hint.split("'")[1])
                    hint = hint or f" (allowed: resource_type, {', '.join(allowed)})"
                    self.err(line, f"unknown key '{key}'{hint}")
                continue
            self.roles_present.add(key)
        for key, line in doc.duplicates:
            self.err(line, f"duplicate key '{key}'")
        for role in REQUIRED_ROLES.get(self.rtype, ()):
            if role not in doc and role not in self.misspelt:
                self.err(doc.line, f"{_article(self.rtype)} {self.rtype} mapping needs a '{role}' section")
        for role in allowed:
            if role not in doc or role == "matching" or role == "statuses":
                continue
            line = doc.key_line(role)
            if role == "person":
                rm.person = self.person(doc[role], line)
            elif role == "categories":
                rm.categories = self.categories(doc[role], line)
            else:
                setattr(rm, role, self.record(doc[role], line, role))
        return rm


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


Getter = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]


def _by_path(read: Callable[[Any], Any]) -> Getter:
    """A ``source:`` rule reads the message."""
    return lambda msg, refs: read(msg)


def _constant(value: Any) -> Getter:
    """A ``value:`` rule is the same for every message."""
    return lambda msg, refs: value


def _by_ref(name: str) -> Getter:
    """A ``ref:`` rule reads an id or label resolved for this message."""
    return lambda msg, refs: refs.get(name)


def _value_fn(getter: Callable[..., Any], fns: list[Any],
              default_get: Callable[..., Any] | None) -> Callable[..., Any]:
    chain = tuple(fns)

    def value(msg: Mapping[str, Any], refs: Mapping[str, Any]) -> Any:
        v = getter(msg, refs)
        for f in chain:
            v = f(v, msg, refs)
        if default_get is not None and is_empty(v):
            v = default_get(msg, refs)
            for f in chain:
                v = f(v, msg, refs)
        return finalise(v)
    return value


def _version(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


MAPPING_FILES = tuple(f"{t}.yaml" for t in RESOURCE_TYPES)


def _no_mapping_files(folder: Path) -> str:
    """The error for a folder holding none of the mapping files, naming a subfolder that does."""
    nested = sorted({str(p.parent) for name in MAPPING_FILES for p in folder.glob(f"*/{name}")}
                    | {str(p.parent) for name in MAPPING_FILES for p in folder.glob(f"*/*/{name}")})
    hint = f"; did you mean {' or '.join(n + '/' for n in nested[:3])}?" if nested else ""
    return (f"no mapping file in this folder (expected one or more of {', '.join(MAPPING_FILES)}){hint}; "
            "set mapping.path to the folder that holds them, or leave it out for the shipped mappings")


def compile_folder(folder: Path, describe: Describe | None = None) -> tuple[MappingSet, Problems]:
    """Compile every mapping file in ``folder``; never raises for mapping defects.

    Returns the (possibly partial) mapping set and all problems found.
    """
    problems = Problems()
    folder = Path(folder)
    ms = MappingSet(folder=folder, version="", matching=DEFAULT_MATCHING, statuses=[])
    if not folder.is_dir():
        problems.error(str(folder), 0, "mapping folder not found")
        return ms, problems
    candidates = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not candidates:   # (a misnamed file is reported below as an unknown mapping file)
        # A typo in mapping.path, or the files one folder deeper, would compile to an empty set
        # and every message would be skipped as unmapped (and deleted from the queue).
        problems.error(str(folder), 0, _no_mapping_files(folder))
        return ms, problems
    ms.version = _version(candidates)
    docs: dict[str, tuple[str, LineDict]] = {}
    for path in candidates:
        file = str(folder / path.name)
        rtype = path.stem
        if path.suffix != ".yaml" or rtype not in RESOURCE_TYPES:
            problems.error(file, 1, f"unknown mapping file '{path.name}' (expected one of "
                                    f"{', '.join(t + '.yaml' for t in RESOURCE_TYPES)})")
            continue
        try:
            doc = load_yaml(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            problems.error(file, 1, "file is not UTF-8 text")
            continue
        except YamlSyntaxError as exc:
            problems.error(file, exc.line, exc.message)
            continue
        if not isinstance(doc, LineDict):
            problems.error(file, 1, f"a mapping file must be a YAML mapping, not {_type_name(doc)}")
            continue
        declared = doc.get("resource_type")
        if "resource_type" not in doc:
            problems.error(file, doc.line, "missing 'resource_type'")
            continue
        if declared != rtype:
            problems.error(file, doc.key_line("resource_type"),
                           f"resource_type {declared!r} does not match the file name (expected '{rtype}')")
            continue
        docs[rtype] = (file, doc)

    length = _describe_length(describe) if describe is not None else _sf_length
    # person.yaml first: its matching.placeholder feeds the `placeholder` transform everywhere.
    if "person" in docs and "matching" in docs["person"][1]:
        file, doc = docs["person"]
        fc = _FileCompiler(file, "person", problems, DEFAULT_MATCHING.placeholder, length, describe is not None)
        ms.matching = fc.matching(doc["matching"], doc.key_line("matching")) or DEFAULT_MATCHING
    compilers: list[_FileCompiler] = []
    for rtype in RESOURCE_TYPES:
        if rtype not in docs:
            continue
        file, doc = docs[rtype]
        fc = _FileCompiler(file, rtype, problems, ms.matching.placeholder, length, describe is not None)
        ms.resources[rtype] = fc.compile(doc)
        compilers.append(fc)
        if rtype == "event" and "statuses" in doc:
            ms.event_file = file
            ms.statuses_line = doc.key_line("statuses")
            ms.statuses = fc.statuses(doc["statuses"], ms.statuses_line) or []
    # CampaignMember.Status holds 40 characters (CampaignMemberStatus.Label 765): a longer
    # status can be created on a campaign but no member can be given it (Object Reference for the
    # Salesforce Platform: CampaignMember.Status, CampaignMemberStatus.Label).
    status_length = length("CampaignMember", "Status") or 40
    for s in ms.statuses:
        if len(s.label) > status_length:
            problems.error(ms.event_file, s.line, f"status '{s.label}' is {len(s.label)} characters; "
                                                  f"CampaignMember.Status holds {status_length}")
    declared = {s.label for s in ms.statuses}
    default = next((s.label for s in ms.statuses if s.default), ms.statuses[0].label if ms.statuses else "")
    # Labels are checked against event.yaml's statuses only when those could be read: an
    # event.yaml with a syntax error (or broken statuses) is one error, not one per label used.
    event_readable = "event" in docs and (not ms.statuses_line or bool(ms.statuses))
    unreadable = "event" not in docs and any(p.name == "event.yaml" for p in candidates)
    missing_reported = False
    for fc in compilers:
        for line, label in fc.label_uses:
            if label in declared or unreadable or (("event" in docs) and not event_readable):
                continue
            if "event" not in docs:
                if not missing_reported:
                    problems.error(fc.file, line, f"status '{label}' is used, but there is no event.yaml to declare "
                                                  "the statuses in ('statuses' there)")
                    missing_reported = True
                continue
            problems.error(fc.file, line, f"status '{label}' is not declared in event.yaml 'statuses'"
                           + did_you_mean(label, declared))
        for policy in fc.policies:
            policy.fallback = default
    problems.items.sort(key=lambda p: (p.file, p.line))
    return ms, problems
