"""The sync engine: one batch of queue messages → Salesforce → state, each with its own outcome.

    admit   parse each body; a bad one is quarantined, an unknown or skipped one counted
    dedupe  per resource the newest message wins; identical or older ones cost zero calls
    stages  campaigns → sessions → people → statuses → members → captures → categories,
            each batched per object: run(works, facts) -> (facts, changes, verdicts, notes).
            A stage hands the next ones only Facts (Campaign ids, people's records, statuses
            read with the people's lookup); a new Campaign goes with the statuses its members
            need, and the people stage may send statuses and as many members as fit in its own
            call (together.py); their stages then take those answers from
            Facts.early_statuses / early_members instead of a call, and send the rest. Verdicts (quarantine,
            retry) are merged here; a message with one is not given to later stages.
    apply   the state store applies the batch's ChangeSet in one transaction
    outcomes one per message; the runner deletes from SQS only the ones that leave the queue

StopRun (budget, Salesforce down) propagates: nothing of the batch is applied or deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from typing import Any

from connector import logs
from connector.config import InstanceFilter
from connector.errors import FatalError, MappingRejected, MessageError
from connector.mapping import MappingSet
from connector.mapping.model import refused_column
from connector.payloads import SourcePolicy, Unrecognised, parse_body, parse_utc, stable_hash
from connector.preflight import forget_describes
from connector.reconcile.journal import journaled
from connector.salesforce.classify import is_poison
from connector.salesforce.gateway import SalesforceGateway
from connector.salesforce.results import WriteError
from connector.state.base import StateStore
from connector.sync.campaigns import CampaignStage, SessionStage
from connector.sync.captures import CaptureStage
from connector.sync.categories import CategoryStage
from connector.sync.changes import ChangeSet, Facts
from connector.sync.members import MemberStage
from connector.sync.model import Inbound, Outcome, OutcomeStatus, SkipReason, Work
from connector.sync.people import PeopleStage
from connector.sync.plan import plan_lines
from connector.sync.refusals import WatchedWriter
from connector.sync.stage import Stage, StageContext
from connector.sync.statuses import StatusStage
from connector.sync.verdicts import Verdicts
from connector.sync.writer import PlanningWriter, Writer

# Replicas: how long a batch waits for resources another replica's batch is working on.
HOLD_WAIT_SECONDS = 15.0

STAGES: tuple[type[Stage], ...] = (CampaignStage, SessionStage, PeopleStage, StatusStage, MemberStage,
                                   CaptureStage, CategoryStage)


class SyncEngine:
    def __init__(self, state: StateStore, mappings: MappingSet, writer: Writer, *,
                 instances: InstanceFilter | None = None, source: SourcePolicy | None = None) -> None:
        self.state = state
        self.mappings = mappings
        self.writer = writer
        self.instances = instances or InstanceFilter()
        self.source = source or SourcePolicy()     # which envelopes and raw bodies are accepted
        self.notes: list[str] = []          # the last batch's run-summary sentences (category renames...)
        self.planned_writes: list[dict[str, Any]] = []   # dry run: every write planned, for printing

    @property
    def gateway(self) -> SalesforceGateway:
        return self.writer.gateway

    @property
    def dry_run(self) -> bool:
        """Chosen at wiring time: a planning writer (and a store that records nothing)."""
        return isinstance(self.writer, PlanningWriter)

    async def process(self, inbounds: list[Inbound]) -> list[Outcome]:
        """Every message's outcome, in order. A whole request Salesforce refuses for this
        batch's data (a poison batch) is searched by halves: the messages that cause it are
        quarantined with the error and the others land."""
        try:
            return await self._process_once(inbounds)
        except FatalError as exc:
            if not is_poison(exc) or not inbounds:
                raise
            return await self._isolate(inbounds, exc)

    async def _isolate(self, inbounds: list[Inbound], error: FatalError) -> list[Outcome]:
        calls = self.gateway.stats.calls
        done: dict[int, Outcome] = {}
        if len(inbounds) > 1:
            # Is it the data or the org? Two messages alone that fail alike: the org (or the
            # mapping) refuses every request of this kind, and no split will help.
            failed = []
            for i in (0, len(inbounds) - 1):
                try:
                    [done[i]] = await self._process_once([inbounds[i]])
                except FatalError as exc:
                    if not is_poison(exc):
                        raise
                    failed.append(exc.code)
            if len(failed) == 2 and failed[0] == failed[1] == error.code:
                raise error
        rest = [ib for i, ib in enumerate(inbounds) if i not in done]
        found = iter(await self._split(rest, error) if rest else [])
        outcomes = [done[i] if i in done else next(found) for i in range(len(inbounds))]
        logs.get().warning("poison_batch", messages=len(inbounds), api_calls=self.gateway.stats.calls - calls,
                           quarantined=sum(o.status == OutcomeStatus.QUARANTINED for o in outcomes),
                           error=str(error)[:300])
        return outcomes

    async def _split(self, inbounds: list[Inbound], error: FatalError) -> list[Outcome]:
        if len(inbounds) == 1:
            ib = inbounds[0]
            ids: dict[str, Any] = {"message_key": body_key(ib)}
            try:
                m = parse_body(ib.body, self.source)
                ids = dict(message_key=m.message_key, resource_type=m.resource_type,
                           resource_id=getattr(m, "resource_id", None), event_id=getattr(m, "event_id", None))
            except MessageError:
                pass
            outcome = Outcome(OutcomeStatus.QUARANTINED,
                              f"Salesforce refused a whole request made for this message ({error}); the other "
                              "messages of its batch went through", None, **ids)
            changes = ChangeSet()
            self._finish(changes, [], [ib], [outcome])
            self.state.apply(changes)
            return [outcome]
        mid = len(inbounds) // 2
        out: list[Outcome] = []
        for half in (inbounds[:mid], inbounds[mid:]):
            try:
                out += await self._process_once(half)
            except FatalError as exc:
                if not is_poison(exc):
                    raise
                out += await self._split(half, exc)
        return out

    async def _process_once(self, inbounds: list[Inbound]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(inbounds)
        self.notes = []                               # per batch: a service's engine lives for days
        works = self._admit(inbounds, outcomes)
        works = await self._hold(works, outcomes)
        try:
            live = self._dedupe(works, outcomes)      # reads what is stored only once the batch holds it
            changes, verdicts = await self._run_stages(live) if live else (ChangeSet(), Verdicts())
            for i, w in works:
                if outcomes[i] is None:
                    outcomes[i] = _outcome_of(w, verdicts)
            self._finish(changes, [w for w in live if verdicts.ok(w)], inbounds, outcomes)
            self.state.apply(changes)
        finally:
            self.state.release_held()
        if isinstance(self.writer, PlanningWriter):
            self._plan(outcomes, self.writer.planned)
        return [o for o in outcomes if o is not None]

    def _plan(self, outcomes: list[Outcome | None], planned: list[dict[str, Any]]) -> None:
        """A dry run's outcomes say what would be written: the batch's planned writes, indexed
        by message once (the planning writer starts each batch empty)."""
        self.planned_writes += planned
        by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for write in planned:
            for key in write.get("messages", ()):
                by_message[key].append(write)
        for o in outcomes:
            if o is not None:
                o.planned = True
                if o.status == OutcomeStatus.SYNCED:
                    o.detail["plan"] = plan_lines(o.message_key or "", o.detail, by_message.get(o.message_key or "", []))

    # -- admit: parse, skip what is not ours ------------------------------------------------
    def _admit(self, inbounds: list[Inbound], outcomes: list[Outcome | None]) -> list[tuple[int, Work]]:
        works: list[tuple[int, Work]] = []
        for i, ib in enumerate(inbounds):
            try:
                parsed = parse_body(ib.body, self.source)
            except MessageError as exc:
                outcomes[i] = Outcome(OutcomeStatus.QUARANTINED, exc.reason, exc.field, message_key=body_key(ib))
                continue
            if isinstance(parsed, Unrecognised):
                outcomes[i] = Outcome(OutcomeStatus.SKIPPED, f"unknown resource_type {parsed.resource_type!r}",
                                      message_key=parsed.message_key, resource_type=parsed.resource_type,
                                      detail={"skip": SkipReason.UNKNOWN_TYPE})
                continue
            base: dict[str, Any] = dict(message_key=parsed.message_key, resource_type=parsed.resource_type,
                                        resource_id=parsed.resource_id, event_id=parsed.event_id)
            if not self.instances.allows(parsed.instance):
                outcomes[i] = Outcome(OutcomeStatus.SKIPPED, f"instance {parsed.instance!r} is skipped by configuration",
                                      detail={"skip": SkipReason.INSTANCE}, **base)
                continue
            if self.mappings.for_type(parsed.resource_type) is None:
                outcomes[i] = Outcome(OutcomeStatus.SKIPPED, f"no mapping for {parsed.resource_type}",
                                      detail={"skip": SkipReason.UNMAPPED}, **base)
                continue
            works.append((i, Work(ib, parsed)))
        return works

    # -- hold: replicas never work on one resource at once -----------------------------------
    async def _hold(self, works: list[tuple[int, Work]], outcomes: list[Outcome | None]) -> list[tuple[int, Work]]:
        """Take this batch's resources (exclusively) and the events its people read (shared)
        from the state store before reading what was applied: two replicas never apply an older
        message over a newer one or merge a member's status from a stale read (issue #12).

        A resource another replica's batch holds is waited for up to HOLD_WAIT_SECONDS (about
        one batch); if still held, its messages go back to the queue for a moment (retry,
        detail retry=held). SQLite grants everything at once: one run holds its file.
        """
        if self.dry_run or not works:
            return works

        def needs(w: Work) -> set[str]:
            reads = {f"event:{w.msg.event_id}"} if w.msg.event_id and w.msg.resource_type != "event" else set()
            return {w.msg.resource_key} | reads

        got = await asyncio.to_thread(self.state.hold, {w.msg.resource_key for _, w in works},
                                      shared=set().union(*(needs(w) for _, w in works)),
                                      wait_seconds=HOLD_WAIT_SECONDS)
        kept = []
        for i, w in works:
            if needs(w) <= got:
                kept.append((i, w))
                continue
            m = w.msg
            outcomes[i] = Outcome(OutcomeStatus.RETRY, "another replica is working on this resource",
                                  message_key=m.message_key, resource_type=m.resource_type, resource_id=m.resource_id,
                                  event_id=m.event_id, detail={"retry": "held"})
        return kept

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
                outcomes[i] = _skip(w, SkipReason.DUPLICATE if same else SkipReason.STALE,
                                    "duplicate of another message in this batch" if same
                                    else "stale: superseded by a newer message in this batch")
            winner.version = stable_hash([winner.msg.content_hash, self.mappings.version])
            prev = stored.get(key)
            last = parse_utc(prev["generated_at"]) if prev and prev["generated_at"] else None
            winner.superseded = [w for _, w in items[:-1] if last is None or w.msg.generated_at > last]
            if prev and prev["content_hash"] == winner.version:
                outcomes[win_i] = _skip(winner, SkipReason.UNCHANGED, "unchanged: same content as last applied")
            elif last and winner.msg.generated_at < last:
                outcomes[win_i] = _skip(winner, SkipReason.STALE,
                                        f"stale: older than the last applied ({(prev or {})['generated_at']})")
            else:
                live.append(winner)
        return live

    # -- stages -----------------------------------------------------------------------------
    async def _run_stages(self, live: list[Work]) -> tuple[ChangeSet, Verdicts]:
        watched = WatchedWriter(self.writer)
        ctx = StageContext(reader=self.gateway, writer=watched, state=self.state, mappings=self.mappings)
        facts, changes, verdicts = Facts(), ChangeSet(), Verdicts()
        explained: set[str] = set()
        self.writer.start_batch()
        for stage in STAGES:
            result = await stage(ctx).run([w for w in live if verdicts.ok(w)], facts)
            facts = result.facts
            changes.merge(result.changes)
            verdicts.merge(result.verdicts)
            self.notes.extend(result.notes)
            explained |= result.explained
            refused = {s: e for s, e in self.writer.org_refusals().items() if s not in explained}
            refused.update(watched.refused_alike(explained))
            if refused:
                # Not this batch's data: the org refuses the mapping. Stop before anything is
                # remembered, so every message stays queued (issue #9); the next run's preflight
                # reads the org's describes afresh.
                forget_describes(self.state)
                raise MappingRejected([self._where(sobject, err) for sobject, err in refused.items()])
        # What Salesforce confirmed, for reconcile: saved in the batch's own transaction.
        changes.written = journaled(self.writer.take_written(), self.mappings)
        return changes, verdicts

    def _where(self, sobject: str, err: WriteError) -> str:
        """`file:line: ...` of the mapping rule that writes the refused field, when there is one
        (the field named in `fields`, or in the text of an INVALID_FIELD, which has no `fields`)."""
        for name in [*err.fields, refused_column(err.message) or ""]:
            where = self.mappings.locate(sobject, name) if name else None
            if where:
                return (f"{where}: {sobject}.{name}: Salesforce refuses it for every record "
                        f"({err.code}: {err.message}); fix the mapping or the org, then run again")
        return (f"{sobject}: Salesforce refuses every record ({err.code}: {err.message}); "
                "check `connector doctor`, then run again")

    # -- what the state store remembers ------------------------------------------------------
    def _finish(self, changes: ChangeSet, done: list[Work], inbounds: list[Inbound],
                outcomes: list[Outcome | None]) -> None:
        """Add resources and outcomes; keep only what the batch's successful messages (`done`) vouch for."""
        ok_events = {w.msg.event_id for w in done if w.msg.resource_type == "event"}
        for eid, fields in list(changes.events.items()):
            if fields.get("is_placeholder") == 0 and eid not in ok_events:
                # The event message failed later (a category fan-out refused): keep only the link.
                changes.events[eid] = {k: v for k, v in fields.items() if k == "campaign_id"}
                if not changes.events[eid]:
                    del changes.events[eid]
        changes.category_tables = {e: t for e, t in changes.category_tables.items() if e in ok_events}
        changes.resources = [(w.msg.resource_key, w.version, w.msg.generated_at.isoformat()) for w in done]
        for ib, o in zip(inbounds, outcomes, strict=True):
            if o is None:
                continue
            changes.outcomes.append(dict(
                message_key=o.message_key or body_key(ib), outcome=o.label, resource_type=o.resource_type,
                resource_id=o.resource_id, event_id=o.event_id, sqs_message_id=ib.sqs_message_id,
                reason=o.reason, field=o.field,
                # Keep a quarantined message's body, so it can be replayed.
                body=storable(ib.body) if o.status == OutcomeStatus.QUARANTINED else None,
                detail=dict(o.detail) or None))
        guard = self.gateway.guard
        if guard.used is not None and guard.max:
            # Saved with the batch, not after every call: no extra write on the hot path.
            changes.api_usage = (guard.used, guard.max)


def _skip(w: Work, kind: SkipReason, reason: str) -> Outcome:
    m = w.msg
    return Outcome(OutcomeStatus.SKIPPED, reason, message_key=m.message_key, resource_type=m.resource_type,
                   resource_id=m.resource_id, event_id=m.event_id, detail={"skip": kind})


def _outcome_of(w: Work, verdicts: Verdicts) -> Outcome:
    """A message's outcome from what the stages decided: a failure quarantines it (even if it
    also waits for a retry), a retry leaves it queued, else it is synced."""
    m = w.msg
    base: dict[str, Any] = dict(message_key=m.message_key, resource_type=m.resource_type, resource_id=m.resource_id,
                                event_id=m.event_id, detail=dict(verdicts.detail(w)))
    failures = verdicts.failures.get(m.resource_key)
    if failures:
        return Outcome(OutcomeStatus.QUARANTINED, "; ".join(r for r, _ in failures), failures[0][1], **base)
    if verdicts.waits(w):
        return Outcome(OutcomeStatus.RETRY, verdicts.retries[m.resource_key], **base)
    return Outcome(OutcomeStatus.SYNCED, None, **base)


def storable(body: str) -> str:
    """The body as the state store can hold it (a queue adapter that decoded leniently may hand
    over lone surrogates, which UTF-8 cannot encode)."""
    try:
        body.encode("utf-8")
        return body
    except UnicodeEncodeError:
        return body.encode("utf-8", "replace").decode("utf-8")


def body_key(ib: Inbound) -> str:
    """The key of a message that could not be parsed: a hash of its body."""
    return "sha256:" + hashlib.sha256(ib.body.encode("utf-8", "replace")).hexdigest()
