"""Stages: the event's Campaign (or a placeholder until the event message arrives) and session
child Campaigns."""

from __future__ import annotations

from typing import Any

from connector.mapping import ResourceMapping
from connector.mapping.model import RecordMapping
from connector.mapping.refs import refs
from connector.payloads import parse_utc
from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction
from connector.sync.changes import ChangeSet, Facts
from connector.sync.model import Work, Write, mapping_error
from connector.sync.stage import Stage, StageResult
from connector.sync.survivors import trace
from connector.sync.together import send_campaigns_with_statuses

_MISSING = (RowAction.GONE, RowAction.BAD_REFERENCE)


def _campaign(rm: ResourceMapping) -> RecordMapping:
    """The Campaign a resource's mapping writes (an event mapping always has one; the stages call
    this only for mappings that do)."""
    assert rm.campaign is not None, "this mapping maps no Campaign"
    return rm.campaign


def _data(w: Work) -> dict[str, Any]:
    data = w.msg.payload.get("data")
    return data if isinstance(data, dict) else {}


class CampaignStage(Stage):
    """One Campaign per event: the event message writes it; any other message makes a
    placeholder when none exists yet, or brings its policy metadata up to date."""

    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        events = self.state.events({w.msg.event_id for w in works})
        writes: dict[str, Write] = {}
        tables: dict[str, dict[str, str]] = {}
        event_messages: dict[str, tuple[Work, ...]] = {}
        for w in works:
            if w.msg.resource_type != "event":
                continue
            rm, eid, data = self.mapping_of(w), w.msg.event_id, _data(w)
            tz = data.get("timezone")
            rec = _campaign(rm).build(w.msg.payload, refs(event_timezone=tz), mode="upsert")
            if (events.get(eid) or {}).get("campaign_id"):
                # A Campaign that exists keeps what was set at its creation (on_create fields, its
                # record type: changing a record's type is an admin's act).
                for name in _campaign(rm).create_only_fields():
                    rec.pop(name, None)
            writes[eid] = Write("Campaign", "upsert", rec, [w], key=eid, label=f"Campaign for event {eid}")
            changes.events[eid] = {"name": data.get("name"), "timezone": tz, "metadata": data.get("metadata"),
                                   "metadata_at": w.msg.generated_at.isoformat(), "is_placeholder": 0}
            event_messages[eid] = (w,)
            if rm.categories:
                tables[eid] = dict(rm.categories.extract(w.msg.payload))
        for w in works:
            rm, eid = self.mapping_of(w), w.msg.event_id
            if w.msg.resource_type == "event" or rm.campaign is None:
                continue
            ev = events.get(eid)
            ctx = w.msg.payload.get("context") or {}
            ref = refs(event_timezone=(ev or {}).get("timezone"))
            if eid in writes:
                writes[eid].add_works([w])     # members need that Campaign first
            elif not ev or not ev.get("campaign_id"):
                rec = rm.campaign.build(w.msg.payload, ref, mode="upsert")
                writes[eid] = Write("Campaign", "upsert", rec, [w], key=eid,
                                    label=f"placeholder Campaign for event {eid}")
                changes.events[eid] = {"name": ctx.get("event_name"), "metadata": ctx.get("event_metadata"),
                                       "metadata_at": w.msg.generated_at.isoformat(), "is_placeholder": 1}
            elif ctx.get("event_metadata") is not None and ctx.get("event_metadata") != ev.get("metadata") \
                    and (not ev.get("metadata_at") or w.msg.generated_at > parse_utc(ev["metadata_at"])):
                # The event's policy metadata changed and this message says so first: keep the
                # Campaign current without waiting for the event message.
                rec = rm.campaign.build(w.msg.payload, ref, mode="update", current=None)
                writes[eid] = Write("Campaign", "update", {"Id": ev["campaign_id"], **rec}, [w], key=eid,
                                    label=f"Campaign {ev['campaign_id']} metadata for event {eid}")
                changes.events[eid] = {"metadata": ctx.get("event_metadata"),
                                       "metadata_at": w.msg.generated_at.isoformat()}
        self.early: dict[tuple[str, str], Write] = {}
        await self._send(writes, events)
        gone = await self._deleted_campaigns(writes)
        campaigns: dict[str, str] = {eid: ev["campaign_id"] for eid, ev in events.items() if ev.get("campaign_id")}
        fresh: set[str] = set()
        for eid, x in writes.items():
            if x.error and x.record.get("Id") in gone:
                # The stored Campaign was deleted in Salesforce: forget it; the next delivery
                # makes it again (upserted on the event's Jomablue id: never a duplicate).
                changes.forgotten_campaigns.add(x.record["Id"])
                campaigns.pop(eid, None)
                for w in x.works:
                    self.verdicts.retry(w, f"{x.label}: deleted in Salesforce; made again on the next delivery")
            elif x.error:
                self.verdicts.settle(x)
            if x.error:
                changes.events.pop(eid, None)
                tables.pop(eid, None)
                continue
            cid = to18(x.result_id) if x.result_id else events.get(eid, {}).get("campaign_id")
            if not cid:     # no id and no error: nothing Salesforce confirmed to remember
                continue
            campaigns[eid] = cid
            if x.created:
                fresh.add(cid)
            changes.events.setdefault(eid, {})["campaign_id"] = cid
        changes.category_tables.update(tables)
        return StageResult(facts.learn(events=events, campaigns=campaigns, fresh_campaigns=fresh,
                                       category_tables=tables, event_messages=event_messages,
                                       early_statuses=self.early), changes, self.verdicts)

    async def _deleted_campaigns(self, writes: dict[str, Write]) -> set[str]:
        """Stored Campaigns an update found missing (ENTITY_IS_DELETED, or INVALID_CROSS_REFERENCE_KEY,
        which also names a record type the user may not use), confirmed gone by a read through
        queryAll; one refused for anything else is the field's problem."""
        ids = {x.record["Id"] for x in writes.values() if x.op == "update" and x.action in _MISSING}
        if not ids:
            return set()
        found = await trace(self.reader, {"Campaign": ids})
        return {i for i in ids if found.gone(i)}

    async def _send(self, writes: dict[str, Write], events: dict[str, dict[str, Any]]) -> None:
        # Each Campaign is upserted on the key its own mapping names (event.yaml, or the file whose
        # placeholder it is); usually one key, so usually one call.
        by_key: dict[str, list[Write]] = {}
        for x in writes.values():
            if x.op != "upsert":
                continue
            key_field = _campaign(self.mapping_of(x.works[0])).upsert_key
            if x.record.get(key_field):
                by_key.setdefault(key_field, []).append(x)
            else:
                x.error = mapping_error(key_field)
        for key_field, group in by_key.items():
            # A Campaign not known to exist, with members in this batch: its statuses go with it.
            want = [not (events.get(x.key) or {}).get("campaign_id")
                    and any(w.msg.resource_type != "event" for w in x.works) for x in group]
            self.early.update(await send_campaigns_with_statuses(self.ctx, group, key_field, want))
        await self.writer.send([x for x in writes.values() if x.op == "update"])


class SessionStage(Stage):
    """A child Campaign per session, under the event's Campaign."""

    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        rm = self.mappings.for_type("session_participation")
        sc = rm.session_campaign if rm else None
        works = [w for w in works if w.msg.resource_type == "session_participation"]
        if sc is None or not works:
            return StageResult(facts, changes)
        known = self.state.records({sc.upsert_value(w.msg.payload, {}) or "" for w in works})
        sessions: dict[str, str] = {}
        writes: dict[str, Write] = {}
        for w in works:
            ref = refs(campaign_id=facts.campaigns.get(w.msg.event_id),
                       event_timezone=(facts.events.get(w.msg.event_id) or {}).get("timezone"))
            sid = sc.upsert_value(w.msg.payload, ref)
            if not sid:
                self.verdicts.fail(w, "no session id in the message", "identifiers.session_id")
            elif sid in known:
                sessions[sid] = known[sid]["sf_id"]
            elif sid in writes:
                writes[sid].add_works([w])
            else:
                writes[sid] = Write("Campaign", "upsert", sc.build(w.msg.payload, ref, mode="upsert"), [w],
                                    key=sid, label=f"session Campaign for {sid}")
        # New session Campaigns, each with members in this batch: their statuses go with them.
        early = await send_campaigns_with_statuses(self.ctx, list(writes.values()), sc.upsert_key,
                                                   [True] * len(writes))
        fresh: set[str] = set()
        for sid, x in writes.items():
            if x.error or not x.result_id:
                self.verdicts.settle(x)
                continue
            cid = to18(x.result_id)
            sessions[sid] = cid
            changes.records[sid] = ("Campaign", cid)
            if x.created:
                fresh.add(cid)
        return StageResult(facts.learn(sessions=sessions, fresh_campaigns=fresh, early_statuses=early), changes,
                           self.verdicts)
