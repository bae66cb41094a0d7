"""What every stage shares: the batch being applied, the writer, the state store, the mapping."""

from __future__ import annotations

from typing import Any

from connector.mapping import MappingSet, ResourceMapping
from connector.salesforce.gateway import SalesforceGateway
from connector.state.base import StateStore
from connector.sync.model import Work, Write
from connector.sync.people import PersonResult
from connector.sync.writer import Writer


class Batch:
    """What one batch has learned so far, stage by stage (Jomablue ids → Salesforce ids, rows to commit)."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}             # state rows of the batch's events
        self.event_updates: dict[str, dict[str, Any]] = {}      # event rows to commit
        self.new_tables: dict[str, dict[str, str]] = {}         # category tables from event messages
        self.event_messages: dict[str, list[Work]] = {}         # the event message of each event, if any
        self.campaign_ids: dict[str, str] = {}                  # event id → Campaign Id
        self.session_ids: dict[str, str] = {}                   # session id → child Campaign Id
        self.fresh_campaigns: set[str] = set()                  # created just now: only default statuses
        self.statuses_ok: set[str] = set()
        self.status_errors: dict[str, str] = {}
        self.new_statuses: set[tuple[str, str]] = set()
        self.people: dict[str, PersonResult] = {}               # person id → matched/created record
        self.member_rows: dict[str, dict[str, Any]] = {}        # member rows to commit
        self.new_records: dict[str, tuple[str, str]] = {}       # sessions and captures to commit
        self.gone_campaigns: set[str] = set()                   # deleted in Salesforce: forget them
        self.gone_members: set[str] = set()
        self._tables: dict[str, dict[str, str]] = {}

    def table(self, state: Any, event_id: str) -> dict[str, str]:
        """The event's category table: this batch's event message wins over the stored one."""
        if event_id in self.new_tables:
            return self.new_tables[event_id]
        if event_id not in self._tables:
            self._tables[event_id] = state.categories(event_id)
        return self._tables[event_id]


class Stage:
    """A step of the engine; stages talk to each other only through the Batch."""

    def __init__(self, *, gateway: SalesforceGateway, writer: Writer, state: StateStore, mappings: MappingSet,
                 batch: Batch, notes: list[str], dry_run: bool = False) -> None:
        self.gateway = gateway
        self.writer = writer
        self.state = state
        self.mappings = mappings
        self.b = batch
        self.notes = notes
        self.dry_run = dry_run

    def _rm(self, w: Work) -> ResourceMapping:
        rm = self.mappings.for_type(w.msg.resource_type)
        assert rm is not None
        return rm

    def _settle(self, x: Write) -> None:
        """A write that failed and was not handled fails its messages (unless they retry)."""
        if x.error and not any(w.retry_reason for w in x.works):
            code, msg, fields = x.error
            x.fail_all(code, msg, fields)
