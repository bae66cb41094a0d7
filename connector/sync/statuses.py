"""Stage: every Campaign members go to has the mapping's member statuses, created once.

SortOrder is unique per Campaign (CampaignMemberStatus object reference; recorded-responses §7),
so new statuses are numbered after the highest one the Campaign already has, read from
Salesforce. A new Campaign starts with "Sent" (1) and "Responded" (2). A create refused with
DUPLICATE_VALUE is not taken to mean "the label exists": the Campaign's statuses are read again
and only a label actually there counts.
"""

from __future__ import annotations

from connector.salesforce.ids import to18
from connector.salesforce.soql import pack_or
from connector.sync.changes import ChangeSet, Facts
from connector.sync.model import Work, Write
from connector.sync.stage import Stage, StageResult

NEW_CAMPAIGN_STATUSES = {"Sent": 1, "Responded": 2}   # what Salesforce gives every new Campaign


class StatusStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        labels = [s.label for s in self.mappings.statuses]
        cids = {c for c in (*facts.campaigns.values(), *facts.sessions.values()) if c}
        if not cids or not labels:
            return StageResult(facts, changes)
        have = self.state.campaign_statuses(cids)
        need = sorted(c for c in cids if any((c, label) not in have for label in labels))
        existing = await self._read(c for c in need if c not in facts.fresh_campaigns)
        for c in need:
            if c in facts.fresh_campaigns:
                existing[c] = dict(NEW_CAMPAIGN_STATUSES)
        creates = self._plan(need, existing)
        await self.writer.send(creates)
        refused = sorted({x.record["CampaignId"] for x in creates if x.error})
        if refused:
            # Read again what those Campaigns hold (an admin may have added a label meanwhile).
            existing.update(await self._read(refused))
        errors: dict[str, str] = {}
        for x in creates:
            cid, label = x.record["CampaignId"], x.record["Label"]
            if x.error is None:
                existing.setdefault(cid, {})[label] = x.record["SortOrder"]
            elif label not in existing.get(cid, {}):
                errors[cid] = f"{x.label}: {x.error.code} {x.error.message}"
        changes.statuses = {(c, label) for c in need for label in existing.get(c, {})
                            if label in labels and (c, label) not in have}
        return StageResult(facts.learn(status_errors=errors), changes, self.verdicts)

    async def _read(self, campaign_ids) -> dict[str, dict[str, int]]:   # type: ignore[no-untyped-def]
        """Label → SortOrder of every status of these Campaigns."""
        ids = sorted(set(campaign_ids))
        found: dict[str, dict[str, int]] = {c: {} for c in ids}
        soqls = pack_or("SELECT CampaignId, Label, SortOrder FROM CampaignMemberStatus WHERE ", [("CampaignId", ids)])
        for records in await self.reader.query_many(soqls):
            for r in records:
                found.setdefault(to18(r["CampaignId"]), {})[r["Label"]] = int(r.get("SortOrder") or 0)
        return found

    def _plan(self, need: list[str], existing: dict[str, dict[str, int]]) -> list[Write]:
        creates = []
        for c in need:
            held = existing.get(c, {})
            order = max(held.values(), default=0)
            for s in self.mappings.statuses:
                if s.label in held:
                    continue
                order += 1
                rec = {"CampaignId": c, "Label": s.label, "HasResponded": s.responded, "SortOrder": order}
                if s.default:
                    rec["IsDefault"] = True
                creates.append(Write("CampaignMemberStatus", "create", rec, [], key=c,
                                     label=f"member status {s.label!r} on Campaign {c}"))
        return creates
