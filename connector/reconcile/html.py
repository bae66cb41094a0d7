"""The reconcile report as one self-contained HTML page an admin can forward: no scripts, no
external assets (inline CSS only), summary first, then one section per event and per kind of
drift, records linked to their Lightning pages and named, not bare ids."""

from __future__ import annotations

from html import escape

from connector.reconcile.model import KINDS, Finding, Report
from connector.reconcile.render import record_url, text

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:0;background:#f4f6f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#57606a;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}.card.bad b{color:#b42318}.card.good b{color:#1a7f37}
section.event{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:4px 18px 14px;margin:16px 0}
table{border-collapse:collapse;width:100%;margin:6px 0;background:#fff}
th,td{border-bottom:1px solid #e3e7ec;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}
td.num{text-align:right}
.fixed{color:#1a7f37;font-weight:600}.open{color:#b42318;font-weight:600}.cannot{color:#9a6700;font-weight:600}
.note{color:#57606a;font-size:12px}.id{font-family:ui-monospace,Menlo,monospace;font-size:12px;color:#57606a}
.ok{color:#1a7f37}
"""


def _link(org: str, sobject: str | None, record_id: str | None, label: str) -> str:
    url = record_url(org, sobject, record_id)
    if not url:
        return escape(label)
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def _state(f: Finding) -> str:
    if f.fixed:
        return '<span class="fixed">fixed</span>'
    if f.fixable:
        return '<span class="open">not fixed</span>'
    return '<span class="cannot">cannot fix</span>'


def _findings_table(report: Report, findings: list[Finding]) -> str:
    rows = []
    for f in findings:
        rec = _link(report.org, f.object, f.record_id, f.name)
        ident = f'<div class="id">{escape(f.object)} {escape(f.record_id or "")} · {escape(f.jomablue_id)}</div>'
        related = ""
        if f.related_id:
            related = "→ " + _link(report.org, f.related_object, f.related_id, f"{f.related_object} {f.related_id}")
        rows.append(
            "<tr>"
            f"<td>{rec}{ident}</td>"
            f"<td>{escape(f.field or '')}</td>"
            f"<td>{escape(text(f.expected))}</td>"
            f"<td>{escape(text(f.actual))} {related}</td>"
            f'<td>{_state(f)}<div class="note">{escape(f.note)}</div></td>'
            "</tr>")
    return ("<table><thead><tr><th>Record</th><th>Field</th><th>The connector wrote</th>"
            "<th>Salesforce holds</th><th>State</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _kind_sections(report: Report, findings: list[Finding], slug: str) -> str:
    out = []
    for kind, title in KINDS.items():
        found = [f for f in findings if f.kind == kind]
        if found:
            out.append(f'<h3 id="{escape(slug)}-{kind}">{escape(title)}: <span data-count="{kind}">{len(found)}</span>'
                       f"</h3>{_findings_table(report, found)}")
    return "".join(out)


def as_html(report: Report) -> str:
    fixed = len(report.findings) - report.unfixed
    checked = ", ".join(f"{n:,} {obj}" for obj, n in report.checked.items()) or "nothing"
    head = (f'<h1>Salesforce reconciliation</h1><p class="meta">Org <a href="{escape(report.org)}">'
            f"{escape(report.org)}</a> · generated {escape(report.generated_at)} UTC"
            f"{' · with --fix' if report.fix else ''} · {report.api_calls} Salesforce API calls · "
            f"checked {escape(checked)}</p>")
    verdict = ("good", "No drift: Salesforce holds what the connector wrote.") if not report.findings else (
        ("good", "Everything that drifted was fixed.") if not report.unfixed else
        ("bad", f"{report.unfixed} finding(s) need attention."))
    cards = (
        '<div class="cards">'
        f'<div class="card"><b id="count-events">{len(report.events)}</b>Events</div>'
        f'<div class="card{" bad" if report.findings else " good"}">'
        f'<b id="count-findings">{len(report.findings)}</b>Findings</div>'
        f'<div class="card good"><b id="count-fixed">{fixed}</b>Fixed</div>'
        f'<div class="card{" bad" if report.unfixed else " good"}">'
        f'<b id="count-unfixed">{report.unfixed}</b>Not fixed</div>'
        "</div>")
    kinds = "".join(f"<tr><td>{escape(KINDS[k])}</td><td class='num'>{n}</td></tr>"
                    for k, n in report.by_kind().items())
    summary = (f'<section id="summary"><h2>Summary</h2><p class="{verdict[0]}">{escape(verdict[1])}</p>{cards}'
               + ("<table><thead><tr><th>Kind of drift</th><th>Findings</th></tr></thead>"
                  f"<tbody>{kinds}</tbody></table>"
                  if kinds else "")
               + _events_table(report) + "</section>")
    sections = []
    for i, e in enumerate(report.events):
        found = [f for f in report.findings if f.event_id == e.event_id]
        campaign = _link(report.org, "Campaign", e.campaign_id, e.name)
        body = _kind_sections(report, found, f"e{i}") or '<p class="ok">No drift in this event.</p>'
        sections.append(
            f'<section class="event" id="event-{i}"><h2>{campaign}</h2>'
            f'<p class="meta">Jomablue event <span class="id">{escape(e.event_id)}</span> · '
            f"Campaign <span class=\"id\">{escape(e.campaign_id or 'none')}</span></p>"
            f"<table><tbody>"
            f"<tr><th>People synced</th><td class='num'>{e.people_synced:,}</td>"
            f"<th>Members expected</th><td class='num'>{e.members_expected:,}</td>"
            f"<th>Members present</th><td class='num'>{e.members_present:,}</td></tr>"
            f"<tr><th>Quarantined messages</th><td class='num'>{e.quarantined:,}</td>"
            f"<th>Last message</th><td colspan='3'>{escape(e.last_message_at or '—')}</td></tr>"
            f"</tbody></table>{body}</section>")
    orphans = [f for f in report.findings if f.event_id is None]
    if orphans:
        sections.append('<section class="event" id="unattributed"><h2>Not attributed to an event</h2>'
                        + _kind_sections(report, orphans, "none") + "</section>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Salesforce reconciliation — {escape(report.generated_at)}</title><style>{_CSS}</style></head>"
            f"<body><main>{head}{summary}{''.join(sections)}</main></body></html>")


def _events_table(report: Report) -> str:
    if not report.events:
        return ""
    rows = []
    for i, e in enumerate(report.events):
        drift = sum(e.drift.values())
        rows.append(f"<tr><td><a href=\"#event-{i}\">{escape(e.name)}</a></td><td class='num'>{e.people_synced:,}</td>"
                    f"<td class='num'>{e.members_expected:,}</td><td class='num'>{e.members_present:,}</td>"
                    f"<td class='num'>{drift:,}</td><td class='num'>{e.quarantined:,}</td>"
                    f"<td>{escape(e.last_message_at or '—')}</td></tr>")
    return ("<table><thead><tr><th>Event</th><th>People synced</th><th>Members expected</th><th>Members present</th>"
            "<th>Findings</th><th>Quarantined</th><th>Last message</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
