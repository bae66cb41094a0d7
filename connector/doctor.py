"""`connector doctor`: what an admin runs before go-live and after every org change.

Each check ends ok, warning or error, and every warning or error says how to fix it:

- login: the configured flow gets a token (JWT: the audience Salesforce accepts);
- api_version: the configured version is one the org serves (``GET /services/data/``);
- mapping: every mapped object and field exists and the integration user can create/update it,
  static picklist values exist (restricted: error, open: warning); the describes come in one
  ``/composite`` call and the checks are ``mapping validate --against-org``'s;
- record_types: per mapped object, the record types available to the integration user and the one
  the mapping names (``recordTypeInfos`` of the describes already fetched: no extra call);
- automation: "your writes run this": active Apex triggers (``ApexTrigger``), record-triggered
  flows (``FlowDefinitionView``) and validation rules (the Tooling API's ``ValidationRule``) on
  the objects the mapping writes, in ONE ``/composite`` call (a user without Tooling access gets
  a warning, the rest still shows);
- duplicate_rules / assignment_rules: active ``DuplicateRule`` rows on Lead and Contact and
  active Lead ``AssignmentRule`` rows, with what ``salesforce.duplicate_rules`` and
  ``salesforce.lead_assignment_rules`` will do about them;
- permission_set: ``Jomablue_Connector`` is assigned to the token's user (the user id comes from
  the token response's identity URL, or ``/services/oauth2/userinfo`` for a bare access token);
- api_allocation: the daily allocation (``/limits``), the usage and what the budget leaves.

The four setup queries travel in one ``/composite`` request too: a clean doctor run costs four
API calls (describes, automation queries, setup queries, limits).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

import requests
from simple_salesforce.format import format_soql

from connector.config import JWT_AUDIENCES, Config
from connector.errors import ConnectorError, FatalError
from connector.mapping import MappingSet
from connector.mapping.recordtypes import record_types
from connector.preflight import check_api_version, check_mapping, fetch_describes, mapped_objects
from connector.salesforce.gateway import SalesforceGateway, UsageGuard
from connector.salesforce.paging import query_path

PERMISSION_SET = "Jomablue_Connector"
OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


class Doctor:
    def __init__(self, cfg: Config, gateway: SalesforceGateway, mappings: MappingSet) -> None:
        self.cfg = cfg
        self.sf = cfg.salesforce
        self.gateway = gateway
        # Doctor reads, whatever the budget: a spent budget is one of its findings, not a stop.
        gateway.guard = UsageGuard(1.0)
        self.mappings = mappings
        self.checks: list[Check] = []
        self.user_id: str | None = None
        self.describes: dict[str, dict[str, Any] | None] = {}

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    async def run(self) -> list[Check]:
        if not self.login():
            return self.checks
        self.api_version()
        steps = (self.mapping, self.automation, self.setup, self.allocation)
        for step in steps:
            try:
                await step()
            except ConnectorError as exc:
                self.add(step.__name__, ERROR, f"could not check: {exc}",
                         "check the integration user's access (API Enabled, View Setup and Configuration)")
        return self.checks

    # ------------------------------------------------------------------ login, version

    def login(self) -> bool:
        auth = self.sf.auth
        if auth.method == "jwt" and auth.audience.rstrip("/") not in JWT_AUDIENCES:
            self.add("login", WARNING, f"JWT audience is {auth.audience}",
                     "salesforce.auth.audience must be https://login.salesforce.com (production), "
                     "https://test.salesforce.com (sandbox) or an Experience Cloud site URL")
        try:
            token = self.gateway.tokens.fetch()
        except ConnectorError as exc:
            fix = "check client_id/client_secret/username and the connected app (salesforce/README.md)"
            if "audience is invalid" in str(exc):
                fix = ("set salesforce.auth.audience: https://login.salesforce.com for production or "
                       "https://test.salesforce.com for a sandbox (never the My Domain)")
            elif "request not supported on this domain" in str(exc):
                fix = "client_credentials must post to the My Domain: set salesforce.auth.login_url to it"
            self.add("login", ERROR, f"{auth.method} login failed: {exc}", fix)
            return False
        self.token = token
        self.user_id = token.user_id
        if self.user_id is None:
            self.user_id = self._userinfo(token.access_token, token.instance_url)
        who = f" as user {self.user_id}" if self.user_id else ""
        self.add("login", OK, f"{auth.method} login works{who}")
        return True

    def _userinfo(self, access_token: str, instance_url: str | None) -> str | None:
        base = (instance_url or self.sf.instance_url).rstrip("/")
        try:
            resp = self.gateway.session.get(f"{base}/services/oauth2/userinfo", timeout=self.sf.timeout_seconds,
                                            headers={"Authorization": f"Bearer {access_token}"})
            return resp.json().get("user_id") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def api_version(self) -> None:
        want = self.sf.api_version
        for problem in check_api_version(want):
            self.add("api_version", ERROR, str(problem),
                     "set salesforce.api_version to a version the org serves, \"52.0\" or newer")
            return
        try:
            resp = self.gateway.session.get(f"{self.sf.instance_url.rstrip('/')}/services/data/",
                                            timeout=self.sf.timeout_seconds)
            versions = [v.get("version") for v in resp.json()]
        except (requests.RequestException, ValueError, AttributeError) as exc:
            self.add("api_version", WARNING, f"could not list the org's API versions: {type(exc).__name__}",
                     "check salesforce.instance_url")
            return
        if want in versions:
            self.add("api_version", OK, f"API version {want} is served (newest {versions[-1]})")
        else:
            self.add("api_version", ERROR, f"API version {want} is not served by this org",
                     f"set salesforce.api_version to one of {', '.join(versions[-4:])}")

    # ------------------------------------------------------------------ mapping vs describe

    async def mapping(self) -> None:
        names = mapped_objects(self.mappings)
        describes = await fetch_describes(self.gateway, names)
        self.describes = describes
        problems = check_mapping(self.mappings, describes)
        for p in problems:
            name = "picklists" if "picklist" in p.message else "mapping"
            fix = ("add the value to the picklist in Setup, or map another value"
                   if name == "picklists" else
                   "deploy the field (salesforce/README.md) or change the mapping; give the integration "
                   "user create/edit access through the Jomablue_Connector permission set")
            self.add(name, ERROR if p.severity == "error" else WARNING, f"{p.file}:{p.line}: {p.message}", fix)
        if not any(p.severity == "error" for p in problems):
            fields = sum(len(rec.rules) for rm in self.mappings.resources.values() for rec in rm.records())
            self.add("mapping", OK, f"{len(names)} objects and {fields} mapped fields exist and are writable")
        self._record_types(describes)

    def _record_types(self, describes: dict[str, dict[str, Any] | None]) -> None:
        """The record types the integration user may use, per mapped object that has any."""
        named: dict[str, list[str]] = {}
        for rm in self.mappings.resources.values():
            for rec in rm.records():
                if rec.record_type:
                    named.setdefault(rec.object, []).append(f"{rec.role} → {rec.record_type}")
        for sobject, desc in describes.items():
            kinds = record_types(desc or {})
            if not kinds:
                continue
            usable = [str(k.get("developerName")) for k in kinds if k.get("available")]
            other = [str(k.get("developerName")) for k in kinds if not k.get("available")]
            default = next((str(k.get("developerName")) for k in kinds
                            if k.get("available") and k.get("defaultRecordTypeMapping")), "Master")
            detail = (f"{sobject}: available to the integration user: {', '.join(usable) or 'none'}"
                      + (f"; not available: {', '.join(other)}" if other else ""))
            if sobject in named:
                self.add("record_types", OK, detail + f"; the mapping creates {', '.join(named[sobject])}")
            else:
                self.add("record_types", OK, detail + f"; the mapping names none, so new records get the "
                         f"user's default ({default})")

    # ------------------------------------------------------------------ what the writes run

    async def automation(self) -> None:
        """Active triggers, record-triggered flows and validation rules on the objects written."""
        objects = mapped_objects(self.mappings)
        labels = {str((self.describes.get(o) or {}).get("label") or o): o for o in objects}
        # Fields as documented: Object Reference for the Salesforce Platform, "ApexTrigger"
        # (TableEnumOrId: "the enum (for example, Account) or ID of the object": a custom object's
        # trigger may carry its 01I id and then goes unlisted) and "FlowDefinitionView" (API 46.0+;
        # a record-triggered flow is an AutoLaunchedFlow whose TriggerType is RecordBeforeSave or
        # RecordAfterSave, its object named by label in TriggerObjectOrEventLabel); Tooling API
        # Developer Guide, "ValidationRule" (ValidationName, Active, ErrorMessage, EntityDefinition).
        queries = [
            ("Apex trigger", "query", format_soql(
                "SELECT Name, TableEnumOrId, UsageBeforeInsert, UsageAfterInsert, UsageBeforeUpdate, "
                "UsageAfterUpdate FROM ApexTrigger WHERE Status = 'Active' AND TableEnumOrId IN {}", objects)),
            ("record-triggered flow", "query", format_soql(
                "SELECT ApiName, Label, TriggerType, RecordTriggerType, TriggerObjectOrEventLabel "
                "FROM FlowDefinitionView WHERE IsActive = true AND ProcessType = 'AutoLaunchedFlow' "
                "AND TriggerType IN ('RecordBeforeSave', 'RecordAfterSave') "
                "AND TriggerObjectOrEventLabel IN {}", list(labels))),
            ("validation rule", "tooling/query", format_soql(
                "SELECT ValidationName, ErrorMessage, EntityDefinition.QualifiedApiName FROM ValidationRule "
                "WHERE Active = true AND EntityDefinition.QualifiedApiName IN {}", objects)),
        ]
        answers = await self.gateway.composite_gets(
            "composite_query", [query_path(res, q) for _, res, q in queries], 5, ref="a")
        runs: dict[str, list[str]] = {}
        for (what, _res, _q), (status, body) in zip(queries, answers, strict=True):
            if status != 200 or not isinstance(body, dict):
                self._unreadable(what, body)
                continue
            for row in body.get("records") or []:
                sobject, text = _automation_row(what, row, labels)
                runs.setdefault(sobject, []).append(text)
        if not runs:
            self.add("automation", OK, "no active Apex trigger, record-triggered flow or validation rule on "
                     f"{', '.join(objects)}")
        for sobject in sorted(runs, key=objects.index):
            self.add("automation", WARNING, f"{sobject}: your writes run this: {'; '.join(runs[sobject])}",
                     "what these refuse is quarantined with their own message (CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY, "
                     "FIELD_CUSTOM_VALIDATION_EXCEPTION); ask their owner to let the integration user's records "
                     "through or to make them bulk-safe (the connector writes up to 200 records at once)")

    def _unreadable(self, what: str, body: Any) -> None:
        code, message = _error_of(body)
        fix = ("give the integration user View Setup and Configuration, which the Tooling API needs"
               if what == "validation rule" else "give the integration user View Setup and Configuration")
        self.add("automation", WARNING, f"could not read the org's {what}s: {code}: {message}"[:400], fix)

    # ------------------------------------------------------------------ org automation, access

    async def setup(self) -> None:
        queries = {
            "duplicate_rules": "SELECT Id, DeveloperName, SobjectType FROM DuplicateRule "
                               "WHERE IsActive = true AND SobjectType IN ('Lead', 'Contact')",
            "assignment_rules": "SELECT Id, Name FROM AssignmentRule WHERE SobjectType = 'Lead' AND Active = true",
            "permission_set": format_soql("SELECT Id FROM PermissionSet WHERE Name = {}", PERMISSION_SET),
        }
        if self.user_id:
            queries["assignments"] = format_soql(
                "SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = {}", self.user_id)
        rows = await self._queries(queries)
        self._duplicate_rules(rows.get("duplicate_rules"))
        self._assignment_rules(rows.get("assignment_rules"))
        self._permission_set(rows.get("permission_set"), rows.get("assignments"))

    async def _queries(self, queries: dict[str, str]) -> dict[str, list[dict[str, Any]] | str]:
        """name → rows, or the error text when that query failed (one /composite when all work)."""
        try:
            results = await self.gateway.query_many(list(queries.values()))
            return dict(zip(queries, results, strict=True))
        except FatalError:
            out: dict[str, list[dict[str, Any]] | str] = {}
            for name, soql in queries.items():
                try:
                    out[name] = await self.gateway.query(soql)
                except FatalError as exc:
                    out[name] = str(exc)
            return out

    def _rules_read(self, check: str, sobject: str, rows: list[dict[str, Any]] | str | None,
                    none_active: str) -> list[dict[str, Any]]:
        """The active rules read for `check`; none when they could not be read or there are none
        (either is reported here)."""
        if isinstance(rows, str) or rows is None:
            self.add(check, WARNING, f"could not read {sobject}: {rows}",
                     "give the integration user View Setup and Configuration")
            return []
        if not rows:
            self.add(check, OK, none_active)
        return rows

    def _duplicate_rules(self, rows: list[dict[str, Any]] | str | None) -> None:
        rows = self._rules_read("duplicate_rules", "DuplicateRule", rows, "no active duplicate rule on Lead or Contact")
        if not rows:
            return
        names = ", ".join(f"{r['DeveloperName']} ({r['SobjectType']})" for r in rows)
        if self.sf.duplicate_rules == "respect":
            self.add("duplicate_rules", WARNING,
                     f"active: {names}; with duplicate_rules: respect a person matching an existing "
                     "record is quarantined, the matched records named in the reason",
                     "set salesforce.duplicate_rules: allow_save to save past rules set to Alert "
                     "(rules set to Block still block), or exempt the integration user from the rule")
        else:
            self.add("duplicate_rules", OK,
                     f"active: {names}; duplicate_rules: allow_save saves past rules set to Alert "
                     "(rules set to Block still quarantine)")

    def _assignment_rules(self, rows: list[dict[str, Any]] | str | None) -> None:
        rows = self._rules_read("assignment_rules", "AssignmentRule", rows, "no active Lead assignment rule")
        if not rows:
            return
        names = ", ".join(repr(r["Name"]) for r in rows)
        if self.sf.lead_assignment_rules == "keep":
            self.add("assignment_rules", WARNING,
                     f"active Lead assignment rule {names}; lead_assignment_rules: keep sends "
                     "Sforce-Auto-Assign: FALSE, so it never runs on the connector's writes and new "
                     "Leads stay with the integration user",
                     "set salesforce.lead_assignment_rules: run to let the rule assign (it then runs on "
                     "every create and update, reassigning Leads a person already owns)")
        else:
            self.add("assignment_rules", WARNING,
                     f"active Lead assignment rule {names}; lead_assignment_rules: run lets it reassign "
                     "every Lead the connector creates or updates",
                     "set salesforce.lead_assignment_rules: keep if owners must not change")

    def _permission_set(self, sets: list[dict[str, Any]] | str | None,
                        assignments: list[dict[str, Any]] | str | None) -> None:
        fix_deploy = "deploy salesforce/ (salesforce/README.md: sf project deploy start)"
        fix_assign = (f"sf org assign permset --name {PERMISSION_SET} --on-behalf-of <integration user> "
                      "(or Setup → Users → Permission Set Assignments)")
        if isinstance(sets, str) or sets is None:
            self.add("permission_set", WARNING, f"could not read PermissionSet: {sets}",
                     "give the integration user View Setup and Configuration")
        elif not sets:
            self.add("permission_set", ERROR, f"permission set {PERMISSION_SET} is not in the org", fix_deploy)
        elif self.user_id is None or isinstance(assignments, str) or assignments is None:
            self.add("permission_set", WARNING, "could not tell whether the integration user holds "
                     f"{PERMISSION_SET}", fix_assign)
        elif sets[0]["Id"] not in {a["PermissionSetId"] for a in assignments}:
            self.add("permission_set", ERROR, f"{PERMISSION_SET} is not assigned to the integration user "
                     f"{self.user_id}", fix_assign)
        else:
            self.add("permission_set", OK, f"{PERMISSION_SET} is assigned to {self.user_id}")

    # ------------------------------------------------------------------ API allocation

    async def allocation(self) -> None:
        limits = await self.gateway.limits(bypass_guard=True)
        daily = limits.get("DailyApiRequests") or {}
        top, remaining = int(daily.get("Max") or 0), int(daily.get("Remaining") or 0)
        if not top:
            self.add("api_allocation", WARNING, "the org reported no DailyApiRequests allocation",
                     "give the integration user View Setup and Configuration (/limits)")
            return
        used = top - remaining
        budget = int(self.sf.daily_api_budget * top)
        left = budget - used
        detail = (f"{used:,} of {top:,} calls used in the last 24 h; daily_api_budget "
                  f"{self.sf.daily_api_budget:.0%} = {budget:,} calls, which leaves {max(left, 0):,}")
        if left <= 0:
            self.add("api_allocation", ERROR, detail + ": runs stop before taking messages",
                     "wait for the rolling 24 h usage to drop, raise daily_api_budget, or buy more calls")
        elif left < budget * 0.1:
            self.add("api_allocation", WARNING, detail, "other integrations use most of the allocation: "
                     "raise daily_api_budget or reduce their usage")
        else:
            self.add("api_allocation", OK, detail)


_EVENTS = (("UsageBeforeInsert", "before insert"), ("UsageAfterInsert", "after insert"),
           ("UsageBeforeUpdate", "before update"), ("UsageAfterUpdate", "after update"))
_FLOW_TIMING = {"RecordBeforeSave": "before save", "RecordAfterSave": "after save"}
_FLOW_ON = {"Create": "on create", "Update": "on update", "CreateAndUpdate": "on create and update"}


def _automation_row(what: str, row: dict[str, Any], labels: dict[str, str]) -> tuple[str, str]:
    """(object, one line an admin recognises) for an ApexTrigger, FlowDefinitionView or ValidationRule row."""
    if what == "Apex trigger":
        events = ", ".join(label for key, label in _EVENTS if row.get(key)) or "delete or undelete only"
        return str(row.get("TableEnumOrId")), f"Apex trigger {row.get('Name')} ({events})"
    if what == "record-triggered flow":
        label = str(row.get("TriggerObjectOrEventLabel"))
        timing = ", ".join(t for t in (_FLOW_TIMING.get(str(row.get("TriggerType"))),
                                       _FLOW_ON.get(str(row.get("RecordTriggerType")))) if t)
        return labels.get(label, label), f"flow {row.get('ApiName')} '{row.get('Label')}' ({timing})"
    entity = row.get("EntityDefinition") or {}
    sobject = str(entity.get("QualifiedApiName") if isinstance(entity, dict) else entity)
    return sobject, f"validation rule {row.get('ValidationName')}: '{row.get('ErrorMessage')}'"


def _error_of(body: Any) -> tuple[str, str]:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", "")), str(body[0].get("message", "")).strip()
    return "ERROR", str(body)[:200]


def run_doctor(cfg: Config, gateway: SalesforceGateway, mappings: MappingSet) -> list[Check]:
    return asyncio.run(Doctor(cfg, gateway, mappings).run())


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == ERROR for c in checks) else 0


def render(checks: list[Check], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"checks": [asdict(c) for c in checks],
                           "errors": sum(c.status == ERROR for c in checks),
                           "warnings": sum(c.status == WARNING for c in checks)}, ensure_ascii=False)
    width = max((len(c.name) for c in checks), default=5)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():<8} {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':<8} {'':<{width}}  fix: {c.fix}")
    errors = sum(c.status == ERROR for c in checks)
    warnings = sum(c.status == WARNING for c in checks)
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
