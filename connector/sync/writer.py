"""Sending planned writes: grouped into sObject Collections calls, results mapped back.

Each :class:`Write` carries the messages that depend on it, so a rejected record fails exactly
those messages and no other (one bad message never sinks a batch). A duplicate external id
inside one batch is merged before anything is sent: Salesforce would reject both rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connector.salesforce.gateway import RowResult, SalesforceGateway, row_action
from connector.salesforce.ids import to18
from connector.sync.model import Write


def merge_writes(writes: Iterable[Write], key_field: str | None) -> list[Write]:
    """Merge writes that target the same record (same Id or same external id)."""
    merged: dict[Any, Write] = {}
    out: list[Write] = []
    for w in writes:
        k = w.record.get("Id") if w.op == "update" else (w.record.get(key_field) if key_field else None)
        if k is None:
            out.append(w)
            continue
        k = (w.sobject, w.op, k)
        if k in merged:
            first = merged[k]
            first.record.update(w.record)   # later message's values win
            first.works.extend(x for x in w.works if x not in first.works)
        else:
            merged[k] = w
            out.append(w)
    return out


class Writer:
    """Runs planned writes through the gateway; dry-run records them instead."""

    def __init__(self, gateway: SalesforceGateway, dry_run: bool = False) -> None:
        self.gateway = gateway
        self.dry_run = dry_run
        self.planned: list[dict[str, Any]] = []
        self._fake = 0

    def _fake_result(self, w: Write) -> RowResult:
        self._fake += 1
        prefix = {"Lead": "00Q", "Contact": "003", "Campaign": "701", "CampaignMember": "00v",
                  "CampaignMemberStatus": "01Y"}.get(w.sobject, "a00")
        # A well-formed id (prefix + "9…" counter) so later stages can use it; nothing is sent.
        return RowResult(True, w.record.get("Id") or to18(f"{prefix}9{self._fake:011d}"), w.op != "update")

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None:
        """Send writes of one sobject and op; fill in result_id/created/error on each."""
        if not writes:
            return
        sobject, op = writes[0].sobject, writes[0].op
        records = [w.record for w in writes]
        if self.dry_run:
            for w in writes:
                self.planned.append({"op": op, "sobject": sobject, "key": ext_field, "record": w.record})
                self._apply(w, self._fake_result(w))
            return
        if op == "upsert":
            assert ext_field
            results = await self.gateway.upsert(sobject, ext_field, records, serial=serial)
        elif op == "update":
            results = await self.gateway.update(sobject, records, serial=serial)
        else:
            results = await self.gateway.create(sobject, records, serial=serial)
        retry_dupes: list[Write] = []
        for w, r in zip(writes, results, strict=True):
            if not r.ok and op == "upsert" and row_action(r.code) == "duplicate" \
                    and "campaign member" not in r.message.lower():
                # Two upserts of one external id racing (a redelivered create): the second
                # one tried to insert. Sent again it finds the record and updates it.
                retry_dupes.append(w)
                continue
            self._apply(w, r)
        if retry_dupes:
            again = await self.gateway.upsert(sobject, ext_field or "", [w.record for w in retry_dupes], serial=serial)
            for w, r in zip(retry_dupes, again, strict=True):
                self._apply(w, r)

    @staticmethod
    def _apply(w: Write, r: RowResult) -> None:
        if r.ok:
            w.result_id, w.created, w.error = r.id, r.created, None
            return
        w.error = (r.code or "UNKNOWN", r.message, r.fields)
        if row_action(r.code) == "retry":
            for work in w.works:
                work.retry(f"{w.label}: Salesforce {r.code} after retries")
