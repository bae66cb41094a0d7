"""Stages: the event's Campaign (or a placeholder until the event message arrives), session
child Campaigns, and the member statuses every Campaign needs before members use them."""

from __future__ import annotations

from simple_salesforce import format_soql

from connector.payloads import parse_utc
from connector.salesforce.ids import to18
from connector.sync.model import Work, Write
from connector.sync.stage import Stage


class CampaignStage(Stage):
    async def run(self, live: list[Work]) -> None:
        await self._campaigns(live)
        await self._sessions([w for w in live if w.msg.resource_type == "session_participation" and w.ok])
        await self._statuses(set(self.b.campaign_ids.values()) | set(self.b.session_ids.values()))

    async def _campaigns(self, live: list[Work]) -> None:
        b = self.b
        events = self.state.events({w.msg.event_id for w in live})
        b.events = events
        writes: dict[str, Write] = {}
        for w in live:
            rm, eid = self._rm(w), w.msg.event_id
            if w.msg.resource_type == "event":
                tz = (w.msg.payload.get("data") or {}).get("timezone")
                rec = rm.campaign.build(w.msg.payload, {"event.timezone": tz}, mode="upsert")
                writes[eid] = Write("Campaign", "upsert", rec, [w], key=eid, label=f"Campaign for event {eid}")
                b.event_updates[eid] = {"name": (w.msg.payload.get("data") or {}).get("name"), "timezone": tz,
                                        "metadata": (w.msg.payload.get("data") or {}).get("metadata"),
                                        "metadata_at": w.msg.generated_at.isoformat(), "is_placeholder": 0}
                b.event_messages[eid] = [w]
                if rm.categories:
                    b.new_tables[eid] = dict(rm.categories.extract(w.msg.payload))
        for w in live:
            rm, eid = self._rm(w), w.msg.event_id
            if w.msg.resource_type == "event" or rm.campaign is None:
                continue
            ev = events.get(eid)
            ctx = w.msg.payload.get("context") or {}
            refs = {"event.timezone": (ev or {}).get("timezone")}
            if eid in writes:
                writes[eid].works.append(w)     # members need that Campaign first
            elif not ev or not ev.get("campaign_id"):
                rec = rm.campaign.build(w.msg.payload, refs, mode="upsert")
                writes[eid] = Write("Campaign", "upsert", rec, [w], key=eid,
                                    label=f"placeholder Campaign for event {eid}")
                b.event_updates[eid] = {"name": ctx.get("event_name"), "metadata": ctx.get("event_metadata"),
                                        "metadata_at": w.msg.generated_at.isoformat(), "is_placeholder": 1}
            elif ctx.get("event_metadata") is not None and ctx.get("event_metadata") != ev.get("metadata") \
                    and (not ev.get("metadata_at") or w.msg.generated_at > parse_utc(ev["metadata_at"])):
                # The event's policy metadata changed and this message says so first: keep the
                # Campaign current without waiting for the event message.
                rec = rm.campaign.build(w.msg.payload, refs, mode="update", current=None)
                writes[eid] = Write("Campaign", "update", {"Id": ev["campaign_id"], **rec}, [w], key=eid,
                                    label=f"Campaign {ev['campaign_id']} metadata for event {eid}")
                b.event_updates[eid] = {"metadata": ctx.get("event_metadata"),
                                        "metadata_at": w.msg.generated_at.isoformat()}
        # Each Campaign is upserted on the key its own mapping names (event.yaml, or the file whose
        # placeholder it is); usually one key, so usually one call.
        by_key: dict[str, list[Write]] = {}
        for x in writes.values():
            if x.op != "upsert":
                continue
            key_field = self._rm(x.works[0]).campaign.upsert_key
            if x.record.get(key_field):
                by_key.setdefault(key_field, []).append(x)
            else:
                x.fail_all("MAPPING", f"the upsert key {key_field} has no value", (key_field,))
        for key_field, group in by_key.items():
            await self.writer.send(group, key_field)
        await self.writer.send([x for x in writes.values() if x.op == "update"])
        for eid, x in writes.items():
            if x.error:
                self._settle(x)
                b.event_updates.pop(eid, None)
                b.new_tables.pop(eid, None)
                continue
            cid = to18(x.result_id) if x.result_id else events.get(eid, {}).get("campaign_id")
            b.campaign_ids[eid] = cid
            if x.created:
                b.fresh_campaigns.add(cid)
            b.event_updates.setdefault(eid, {})["campaign_id"] = cid
        for eid, ev in events.items():
            if ev.get("campaign_id"):
                b.campaign_ids.setdefault(eid, ev["campaign_id"])

    async def _statuses(self, campaign_ids: set[str]) -> None:
        """Every campaign members go to has the mapping's statuses, created once."""
        b = self.b
        labels = [s.label for s in self.mappings.statuses]
        cids = {c for c in campaign_ids if c and c not in b.statuses_ok}
        if not cids or not labels:
            return
        have = self.state.campaign_statuses(cids)
        need = {c for c in cids if any((c, label) not in have for label in labels)}
        existing: set[tuple[str, str]] = set(have)
        unknown = sorted(c for c in need if c not in b.fresh_campaigns)
        for i in range(0, len(unknown), 200):
            soql = format_soql("SELECT CampaignId, Label FROM CampaignMemberStatus WHERE CampaignId IN {}",
                               unknown[i : i + 200])
            for r in await self.gateway.query(soql) if not self.dry_run else []:
                existing.add((to18(r["CampaignId"]), r["Label"]))
        creates = []
        for c in sorted(need):
            for n, s in enumerate(self.mappings.statuses):
                if (c, s.label) not in existing:
                    rec = {"CampaignId": c, "Label": s.label, "HasResponded": s.responded,
                           "SortOrder": 10 + (s.sort_order if s.sort_order is not None else n)}
                    if s.default:
                        rec["IsDefault"] = True
                    creates.append(Write("CampaignMemberStatus", "create", rec, [], key=c,
                                         label=f"member status {s.label!r} on Campaign {c}"))
        await self.writer.send(creates)
        for x in creates:
            if x.error is None or x.error[0] == "DUPLICATE_VALUE":
                existing.add((x.record["CampaignId"], x.record["Label"]))
            else:
                b.status_errors[x.record["CampaignId"]] = f"{x.label}: {x.error[0]} {x.error[1]}"
        b.new_statuses |= {p for p in existing if p[0] in cids and p not in have}
        b.statuses_ok |= {c for c in cids if c not in b.status_errors}

    async def _sessions(self, works: list[Work]) -> None:
        b = self.b
        rm = self.mappings.for_type("session_participation")
        sc = rm.session_campaign if rm else None
        if sc is None or not works:
            return
        known = self.state.records({sc.upsert_value(w.msg.payload, {}) or "" for w in works})
        writes: dict[str, Write] = {}
        for w in works:
            parent = b.campaign_ids.get(w.msg.event_id)
            refs = {"campaign.id": parent, "event.timezone": (b.events.get(w.msg.event_id) or {}).get("timezone")}
            sid = sc.upsert_value(w.msg.payload, refs)
            if not sid:
                w.fail("no session id in the message", "identifiers.session_id")
            elif sid in known:
                b.session_ids[sid] = known[sid]["sf_id"]
            elif sid in writes:
                writes[sid].works.append(w)
            else:
                writes[sid] = Write("Campaign", "upsert", sc.build(w.msg.payload, refs, mode="upsert"), [w],
                                    key=sid, label=f"session Campaign for {sid}")
        await self.writer.send(list(writes.values()), sc.upsert_key)
        for sid, x in writes.items():
            if x.error:
                self._settle(x)
                continue
            b.session_ids[sid] = to18(x.result_id)
            b.new_records[sid] = ("Campaign", to18(x.result_id))
            if x.created:
                b.fresh_campaigns.add(to18(x.result_id))

