"""`connector reconcile`: prove what Salesforce holds against what the connector wrote.

journal.py  what the connector last sent to each record (fed by the gateway)
reads.py    batched queryAll reads, value comparison
check.py    the findings: Campaigns, people (deleted, merged, converted, fields), members, captures
fix.py      `--fix`: the repairs, through the gateway
model.py    Finding / EventSummary / Report (the JSON keys)
render.py   table, JSON, CSV;  html.py  the page an admin forwards
"""

from __future__ import annotations

from connector.mapping import MappingSet
from connector.reconcile.check import Reconciler, UnknownEvent
from connector.reconcile.fix import fix as _fix
from connector.reconcile.model import KINDS, EventSummary, Finding, Report
from connector.reconcile.render import render
from connector.redact import NO_REDACTION, Redactor
from connector.salesforce.gateway import SalesforceGateway
from connector.state.base import StateStore

__all__ = ["KINDS", "EventSummary", "Finding", "Report", "UnknownEvent", "reconcile", "render"]


async def reconcile(gateway: SalesforceGateway, state: StateStore, mappings: MappingSet,
                    event_id: str | None = None, fix: bool = False, *,
                    redactor: Redactor = NO_REDACTION) -> Report:
    """Compare (and with `fix`, repair) one event or every event the connector synced.

    Raises:
        UnknownEvent: `event_id` is not an event of the state store.
    """
    rc = Reconciler(gateway, state, mappings, redactor=redactor)
    calls_before = gateway.stats.calls
    report = await rc.check(event_id)
    if fix and report.findings:
        await _fix(rc)
    report.fix = fix
    report.api_calls = gateway.stats.calls - calls_before
    return report
