"""The reconcile report as text (table), JSON (stable keys), CSV (one row per finding) and HTML
(html.py). Every format carries the same findings."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from connector.reconcile.model import KINDS, Finding, Report

CSV_COLUMNS = ["event_id", "event_name", "kind", "kind_title", "object", "record_id", "record_url", "jomablue_id",
               "name", "field", "expected", "actual", "related_object", "related_id", "fixable", "fixed", "note"]


def record_url(org: str, sobject: str | None, record_id: str | None) -> str | None:
    """The record's Lightning page in the org."""
    if not record_id or not sobject:
        return None
    return f"{org.rstrip('/')}/lightning/r/{sobject}/{record_id}/view"


def text(value: Any) -> str:
    """A value as an admin reads it: no Python None/True/False."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def as_json(report: Report) -> str:
    doc = report.as_dict()
    for f in doc["findings"]:
        f["record_url"] = record_url(report.org, f["object"], f["record_id"])
        f["related_url"] = record_url(report.org, f["related_object"], f["related_id"])
    return json.dumps(doc, ensure_ascii=False, default=str)


def as_csv(report: Report) -> str:
    names = {e.event_id: e.name for e in report.events}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for f in report.findings:
        row = {c: getattr(f, c, None) for c in CSV_COLUMNS}
        row.update(event_name=names.get(f.event_id or ""), kind_title=KINDS.get(f.kind, f.kind),
                   record_url=record_url(report.org, f.object, f.record_id),
                   fixable="true" if f.fixable else "false", fixed="true" if f.fixed else "false")
        w.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def _line(f: Finding) -> str:
    what = f"{f.name} ({f.object} {f.record_id or '-'})"
    if f.field:
        what += f": {f.field} is {text(f.actual)!r}, the connector wrote {text(f.expected)!r}"
    elif f.actual:
        what += f": {text(f.actual)}"
    state = "fixed" if f.fixed else ("not fixed" if f.fixable else "cannot fix")
    return f"    {what}  ({state})" + (f" — {f.note}" if f.note else "")


def as_table(report: Report) -> str:
    lines = [f"Reconciliation: {report.org} at {report.generated_at}",
             f"{len(report.events)} event(s); checked " +
             (", ".join(f"{n:,} {obj}" for obj, n in report.checked.items()) or "nothing") +
             f"; {len(report.findings)} finding(s), {len(report.findings) - report.unfixed} fixed, "
             f"{report.unfixed} not fixed; {report.api_calls} Salesforce API call(s)"]
    for kind, n in report.by_kind().items():
        lines.append(f"  {n:>6}  {KINDS[kind]}")
    by_event: dict[str | None, list[Finding]] = {}
    for f in report.findings:
        by_event.setdefault(f.event_id, []).append(f)
    for e in report.events:
        lines.append("")
        lines.append(f"{e.name}  [{e.event_id}]  Campaign {e.campaign_id or '-'}")
        lines.append(f"  people synced {e.people_synced:,}; members expected {e.members_expected:,}, present "
                     f"{e.members_present:,}; quarantined messages {e.quarantined:,}; last message "
                     f"{e.last_message_at or '-'}")
        for kind in KINDS:
            found = [f for f in by_event.get(e.event_id, []) if f.kind == kind]
            if found:
                lines.append(f"  {KINDS[kind]}: {len(found)}")
                lines += [_line(f) for f in found]
    if by_event.get(None):
        lines.append("")
        lines.append("Not attributed to an event")
        lines += [_line(f) for f in by_event[None]]
    if not report.findings:
        lines.append("No drift: Salesforce holds what the connector wrote.")
    return "\n".join(lines)


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return as_json(report)
    if fmt == "csv":
        return as_csv(report)
    if fmt == "html":
        from connector.reconcile.html import as_html

        return as_html(report)
    return as_table(report)
