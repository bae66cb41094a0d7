"""The sync engine: one batch of queue messages → Salesforce → state, each with its own outcome.

parse → dedupe (unchanged / stale cost nothing) → stages, each batched per object:
  campaigns (events, placeholders, metadata drift) → member statuses → session campaigns →
  people (identity ladder) → campaign members → lead captures → category fan-out
→ one state transaction → outcomes. The runner deletes from SQS only after this returns.
StopRun (budget, Salesforce down) propagates: nothing of the batch is committed or deleted.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from connector.config import InstanceFilter
from connector.errors import MessageError
from connector.mapping import MappingSet
from connector.payloads import Unrecognised, parse_body, parse_utc
from connector.payloads import stable_hash as _h
from connector.salesforce.gateway import SalesforceGateway
from connector.state.base import StateStore
from connector.sync.campaigns import CampaignStage
from connector.sync.members import MemberStage
from connector.sync.model import Inbound, Outcome, Work
from connector.sync.people import PeopleStage
from connector.sync.stage import Batch
from connector.sync.writer import Writer


class SyncEngine:
    def __init__(self, gateway: SalesforceGateway, state: StateStore, mappings: MappingSet, *,
                 instances: InstanceFilter | None = None, allowed_topic_arns: list[str] | None = None,
                 dry_run: bool = False) -> None:
        self.gateway = gateway
        self.state = state
        self.mappings = mappings
        self.instances = instances or InstanceFilter()
        self.allowed_topic_arns = allowed_topic_arns or []
        self.dry_run = dry_run
        self.writer = Writer(gateway, dry_run=dry_run)
        self.notes: list[str] = []          # run-summary sentences (category renames...)

    # ---------------------------------------------------------------------------------
    async def process(self, inbounds: list[Inbound]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(inbounds)
        works: list[tuple[int, Work]] = []
        for i, ib in enumerate(inbounds):
            try:
                parsed = parse_body(ib.body, self.allowed_topic_arns)
            except MessageError as exc:
                outcomes[i] = Outcome("quarantined", exc.reason, exc.field,
                                      message_key=_body_key(ib))
                continue
            if isinstance(parsed, Unrecognised):
                outcomes[i] = Outcome("skipped", f"unknown resource_type {parsed.resource_type!r}",
                                      message_key=parsed.message_key, resource_type=parsed.resource_type,
                                      detail={"skip": "unknown_type"})
                continue
            base = dict(message_key=parsed.message_key, resource_type=parsed.resource_type,
                        resource_id=parsed.resource_id, event_id=parsed.event_id)
            if not self.instances.allows(parsed.instance):
                outcomes[i] = Outcome("skipped", f"instance {parsed.instance!r} is skipped by configuration",
                                      detail={"skip": "instance"}, **base)
                continue
            if self.mappings.for_type(parsed.resource_type) is None:
                outcomes[i] = Outcome("skipped", f"no mapping for {parsed.resource_type}",
                                      detail={"skip": "unmapped"}, **base)
                continue
            works.append((i, Work(ib, parsed)))
        live = self._dedupe(works, outcomes)
        if live:
            await self._apply(live)
            self._commit(live)
        for i, w in works:
            if outcomes[i] is None:
                outcomes[i] = self._outcome_of(w)
        if not self.dry_run:
            self._record_others(inbounds, outcomes)
        return [o for o in outcomes if o is not None]

    # -- dedupe: identical or older messages cost zero calls ------------------------------
    def _dedupe(self, works: list[tuple[int, Work]], outcomes: list[Outcome | None]) -> list[Work]:
        groups: dict[str, list[tuple[int, Work]]] = defaultdict(list)
        for i, w in works:
            groups[w.msg.resource_key].append((i, w))
        stored = self.state.resources(groups.keys())
        live = []
        for key, items in groups.items():
            items.sort(key=lambda t: t[1].msg.generated_at)
            win_i, winner = items[-1]
            for i, w in items[:-1]:
                same = w.msg.content_hash == winner.msg.content_hash
                outcomes[i] = self._skip(w, "duplicate" if same else "stale",
                                         "duplicate of another message in this batch" if same
                                         else "stale: superseded by a newer message in this batch")
            winner.detail["version"] = _h([winner.msg.content_hash, self.mappings.version])
            prev = stored.get(key)
            last = parse_utc(prev["generated_at"]) if prev and prev["generated_at"] else None
            winner.superseded = [w for _, w in items[:-1] if last is None or w.msg.generated_at > last]
            if prev and prev["content_hash"] == winner.detail["version"]:
                outcomes[win_i] = self._skip(winner, "unchanged", "unchanged: same content as last applied")
            elif prev and prev["generated_at"] and winner.msg.generated_at < parse_utc(prev["generated_at"]):
                outcomes[win_i] = self._skip(winner, "stale", f"stale: older than the last applied ({prev['generated_at']})")
            else:
                live.append(winner)
        return live

    @staticmethod
    def _skip(w: Work, kind: str, reason: str) -> Outcome:
        m = w.msg
        return Outcome("skipped", reason, message_key=m.message_key, resource_type=m.resource_type,
                       resource_id=m.resource_id, event_id=m.event_id, detail={"skip": kind})

    @staticmethod
    def _outcome_of(w: Work) -> Outcome:
        m = w.msg
        base = dict(message_key=m.message_key, resource_type=m.resource_type, resource_id=m.resource_id,
                    event_id=m.event_id, detail=w.detail)
        if w.failures:
            reason = "; ".join(r for r, _ in w.failures)
            return Outcome("quarantined", reason, w.failures[0][1], **base)
        if w.retry_reason:
            return Outcome("retry", w.retry_reason, **base)
        return Outcome("synced", None, **base)

    # -- stages ---------------------------------------------------------------------------
    async def _apply(self, live: list[Work]) -> None:
        self.b = b = Batch()
        ctx = dict(gateway=self.gateway, writer=self.writer, state=self.state, mappings=self.mappings,
                   batch=b, notes=self.notes, dry_run=self.dry_run)
        await CampaignStage(**ctx).run(live)
        b.people = await PeopleStage(self.mappings, self.writer, self.state).run([w for w in live if w.ok])
        await MemberStage(**ctx).run(live)

    def _commit(self, live: list[Work]) -> None:
        if self.dry_run:
            return
        b = self.b
        ok_events = {w.msg.event_id for w in live if w.msg.resource_type == "event" and w.ok}
        with self.state.atomic():
            for eid, fields in b.event_updates.items():
                if fields.get("is_placeholder") == 0 and eid not in ok_events:
                    fields = {k: v for k, v in fields.items() if k == "campaign_id"}
                if fields:
                    self.state.put_event(eid, **fields)
            for eid, table in b.new_tables.items():
                if eid in ok_events:
                    self.state.replace_categories(eid, table)
            self.state.add_campaign_statuses(b.new_statuses)
            self.state.put_people(
                {jid: {"sobject": p.sobject, "sf_id": p.sf_id, "rung": p.rung, "organisation_uid": p.organisation_uid,
                       "email": p.email, "record_hash": p.record_hash} for jid, p in b.people.items()})
            for p in b.people.values():
                if p.converted_from:
                    self.state.relink_person_records(p.converted_from, p.sobject, p.sf_id)
            self.state.put_members(b.member_rows)
            self.state.forget_members(b.gone_members)
            self.state.forget_campaigns(b.gone_campaigns)
            for jid, (obj, sf_id) in b.new_records.items():
                self.state.put_record(jid, obj, sf_id)
            guard = self.gateway.guard
            if guard.used is not None and guard.max:
                # Saved with the batch, not after every call: no extra write on the hot path.
                self.state.put_api_usage(guard.used, guard.max)
            done = [w for w in live if w.ok]
            self.state.put_resources([(w.msg.resource_key, w.detail["version"],
                                       w.msg.generated_at.isoformat()) for w in done])
            self.state.record_outcomes([
                dict(message_key=w.msg.message_key, outcome="synced", resource_type=w.msg.resource_type,
                     resource_id=w.msg.resource_id, event_id=w.msg.event_id, sqs_message_id=w.inbound.sqs_message_id,
                     detail={k: v for k, v in w.detail.items() if k != "version"}) for w in done])

    def _record_others(self, inbounds: list[Inbound], outcomes: list[Outcome | None]) -> None:
        """Quarantined bodies and skips are recorded (synced ones were, inside the commit)."""
        rows = []
        for ib, o in zip(inbounds, outcomes, strict=True):
            if o is None or o.status == "synced":
                continue
            rows.append(dict(
                message_key=o.message_key or _body_key(ib),
                outcome=o.status if o.status != "skipped" else f"skipped_{o.detail.get('skip', 'other')}",
                resource_type=o.resource_type, resource_id=o.resource_id, event_id=o.event_id,
                sqs_message_id=ib.sqs_message_id, reason=o.reason, field=o.field,
                body=ib.body, detail={k: v for k, v in o.detail.items() if k != "version"} or None))
        with self.state.atomic():
            self.state.record_outcomes(rows)


def _body_key(ib: Inbound) -> str:
    return "sha256:" + hashlib.sha256(ib.body.encode("utf-8", "replace")).hexdigest()
