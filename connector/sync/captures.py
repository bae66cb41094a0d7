"""Stage: booth lead captures, one record per capture (upsert on its Jomablue id), linked to the
person the ladder found and the event's Campaign."""

from __future__ import annotations

from collections import defaultdict

from connector.mapping.refs import refs
from connector.salesforce.ids import to18
from connector.sync.changes import ChangeSet, Facts
from connector.sync.model import Work, Write
from connector.sync.stage import Stage, StageResult
from connector.sync.writer import merge_writes


class CaptureStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        writes: list[Write] = []
        ext = None
        for w in works:
            if w.msg.resource_type != "lead":
                continue
            rm = self.mapping_of(w)
            cap = rm.capture
            if cap is None or not cap.applies(w.msg.payload) or rm.person is None:
                continue
            person = facts.people.get(rm.person.jomablue_id(w.msg.payload) or "")
            cid = facts.campaigns.get(w.msg.event_id)
            if person is None or not cid:
                continue   # the person's or the Campaign's write failed: the message says why
            rec = cap.build(w.msg.payload, refs(campaign_id=cid, person=(person.sobject, person.sf_id)), mode="upsert")
            ext = cap.upsert_key
            writes.append(Write(cap.object, "upsert", rec, [w], key=w.msg.resource_id,
                                label=f"{cap.object} for {w.msg.resource_id}"))
        by_object: dict[str, list[Write]] = defaultdict(list)
        for x in merge_writes(writes, ext):
            by_object[x.sobject].append(x)
        for sobject, group in by_object.items():
            await self.writer.send(group, ext)
            for x in group:
                if x.error:
                    self.verdicts.settle(x)
                elif x.result_id:   # a write without an error carries its record's id
                    changes.records[x.key] = (sobject, to18(x.result_id))
        return StageResult(facts, changes, self.verdicts)
