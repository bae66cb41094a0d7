"""Sending planned writes: grouped into sObject Collections calls, results mapped back.

Each :class:`Write` carries the messages that depend on it, so a rejected record fails exactly
those messages and no other (one bad message never sinks a batch). Writes aimed at the same
record are merged before anything is sent: Salesforce would reject both rows.

Two writers, chosen at wiring time: :class:`SalesforceWriter` sends; :class:`PlanningWriter`
(dry run) records what it would send and answers with well-formed made-up ids, so the stages
run unchanged and nothing reaches Salesforce but reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connector.salesforce.classify import never_data
from connector.salesforce.composite import WritePart
from connector.salesforce.gateway import SalesforceGateway
from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction, RowResult, WriteError
from connector.sync.model import Write


def merge_writes(writes: Iterable[Write], key_field: str | None) -> list[Write]:
    """One write per target record (same Id, or same external id): later values win, and the
    merged write stands for every message and person of the writes it absorbed."""
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
            first.record.update(w.record)
            first.add_works(w.works)
            first.stands_for.extend(x for x in w.stands_for if x not in first.stands_for)
        else:
            merged[k] = w
            out.append(w)
    return out


@dataclass
class Together:
    """One group of writes (one sobject and op) in a combined call. A dependent group's records
    name an earlier group's records by reference (composite.row_reference): its rows are only
    kept when Salesforce answered them; the caller sends the rest again the ordinary way."""

    writes: list[Write]
    ext_field: str | None = None
    ref: str = "w"
    dependent: bool = False


class Writer(Protocol):
    """What stages write through."""

    gateway: SalesforceGateway   # reads always go to Salesforce, also in a dry run

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None:
        """Send writes of one sobject and op; fill in result_id/created/error on each."""

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def send_together(self, groups: list[Together]) -> list[Write] | None:
        """Every group in one call (at most five collections: the caller packs them), or None when this
        writer does not combine (the caller sends them the ordinary way)."""

    def start_batch(self) -> None: ...

    def take_written(self) -> list[tuple[str, str, dict[str, Any]]]: ...

    def org_refusals(self) -> dict[str, WriteError]: ...


def _apply(w: Write, r: RowResult) -> None:
    # Only the Write learns its result: what that means for its messages (a retry for a row
    # lock that outlasted the retries...) is the stage's verdict (connector/sync/verdicts.py).
    if r.ok:
        w.result_id, w.created, w.error = r.id, r.created, None
        return
    w.error = r.error


class SalesforceWriter:
    def __init__(self, gateway: SalesforceGateway) -> None:
        self.gateway = gateway
        self.results: dict[str, list[WriteError | None]] = {}   # this batch's results by sobject
        self.written: list[tuple[str, str, dict[str, Any]]] = []  # (Id, sobject, fields) confirmed

    def start_batch(self) -> None:
        self.results, self.written = {}, []

    def take_written(self) -> list[tuple[str, str, dict[str, Any]]]:
        """What Salesforce confirmed this batch (for reconcile's write journal, saved with the batch)."""
        written, self.written = self.written, []
        return written

    def org_refusals(self) -> dict[str, WriteError]:
        """Objects whose every write of this batch the org refused for its setup (ORG_SETUP):
        a field it lacks, an object it refuses, a restricted picklist value. A refusal no data can
        cause (classify.never_data) counts at once; a picklist refusal only when at least two
        writes failed alike (one odd value is that message's data). Record-level refusals
        (NO_ACCESS: one private record; BAD_REFERENCE) are never ORG_SETUP, so never org-wide."""
        out = {}
        for sobject, errors in self.results.items():
            if not errors or any(e is None or e.action is not RowAction.ORG_SETUP for e in errors):
                continue
            first = errors[0]
            assert first is not None
            if never_data(first.action, first.code) or (len(errors) >= 2 and all(
                    e is not None and (e.code, e.fields) == (first.code, first.fields) for e in errors)):
                out[sobject] = first
        return out

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None:
        if not writes:
            return
        sobject, op = writes[0].sobject, writes[0].op
        records = [w.record for w in writes]
        if op == "upsert":
            assert ext_field
            results = await self.gateway.upsert(sobject, ext_field, records, serial=serial)
        elif op == "update":
            results = await self.gateway.update(sobject, records, serial=serial)
        else:
            results = await self.gateway.create(sobject, records, serial=serial)
        racing: list[Write] = []
        for w, r in zip(writes, results, strict=True):
            if op == "upsert" and r.action is RowAction.DUPLICATE_KEY:
                # Two upserts of one external id racing (a redelivered create): the second
                # one tried to insert. Sent again it finds the record and updates it.
                racing.append(w)
                continue
            _apply(w, r)
        if racing:
            again = await self.gateway.upsert(sobject, ext_field or "", [w.record for w in racing], serial=serial)
            for w, r in zip(racing, again, strict=True):
                _apply(w, r)
        self._keep(writes)

    async def send_together(self, groups: list[Together]) -> list[Write] | None:
        """Every group in one /composite (issue #18). An independent group's writes all end with a
        result: rows the call did not settle (a subrequest failed, a locked row) and racing
        upserts are sent again through :meth:`send`. A dependent group's writes that Salesforce
        wrote (their references resolved) are returned, with the ids put in their records; the
        others are left untouched for their stage to send and classify as any write of its own
        (a refusal is counted once, by the stage that owns the record: org_refusals)."""
        parts = []
        for g in groups:
            method, path = self.gateway.collections_route(g.writes[0].sobject, g.writes[0].op, g.ext_field)
            parts.append(WritePart(g.writes[0].sobject, method, path, [w.record for w in g.writes], g.ref))
        answers = await self.gateway.write_together(parts)
        answered: list[Write] = []
        for g, part, rows in zip(groups, parts, answers, strict=True):
            again: list[Write] = []
            done: list[Write] = []
            for w, record, r in zip(g.writes, part.records, rows, strict=True):
                if r is None or (w.op == "upsert" and r.action is RowAction.DUPLICATE_KEY) or (g.dependent and not r.ok):
                    again.append(w)
                    continue
                w.record = record
                _apply(w, r)
                done.append(w)
            self._keep(done)
            if g.dependent:
                answered += done
            elif again:
                await self.send(again, g.ext_field)
        return answered

    def _keep(self, writes: list[Write]) -> None:
        """This batch's results by sobject (org_refusals) and what Salesforce confirmed (journal)."""
        for w in writes:
            self.results.setdefault(w.sobject, []).append(w.error)
        self.written += [(to18(w.result_id or w.record["Id"]), w.sobject, {k: v for k, v in w.record.items() if k != "Id"})
                         for w in writes if w.error is None and (w.result_id or w.record.get("Id"))]

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            await self.gateway.delete(list(ids))


_PREFIX = {"Lead": "00Q", "Contact": "003", "Campaign": "701", "CampaignMember": "00v", "CampaignMemberStatus": "01Y"}


class PlanningWriter:
    """Dry run: every write is recorded in :attr:`planned` and succeeds with a made-up id."""

    def __init__(self, gateway: SalesforceGateway) -> None:
        self.gateway = gateway
        self.planned: list[dict[str, Any]] = []
        self._n = 0

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None:
        for w in writes:
            self.planned.append({"op": w.op, "sobject": w.sobject, "key": ext_field, "record": w.record,
                                 "label": w.label, "messages": [x.msg.message_key for x in w.works]})
            self._n += 1
            # A well-formed id (prefix + "9…" counter) so later stages can use it; nothing is sent.
            fake = w.record.get("Id") or to18(f"{_PREFIX.get(w.sobject, 'a00')}9{self._n:011d}")
            _apply(w, RowResult(True, fake, w.op != "update"))

    async def send_together(self, groups: list[Together]) -> list[Write] | None:
        return None     # a dry run plans each stage's writes on their own

    def start_batch(self) -> None:
        self.planned = []    # per batch: the engine turns each batch's plan into its outcomes

    def take_written(self) -> list[tuple[str, str, dict[str, Any]]]:
        return []     # nothing was written

    def org_refusals(self) -> dict[str, WriteError]:
        return {}

    async def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.planned.append({"op": "delete", "sobject": None, "key": None, "record": {"Id": i}})
