"""Stage: every Campaign members go to has the mapping's member statuses, created once.

SortOrder is unique per Campaign (CampaignMemberStatus object reference, "SortOrder ... must be
unique": https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
sforce_api_objects_campaignmemberstatus.htm), so new statuses are numbered after the highest one
the Campaign already has, read from Salesforce: also for a Campaign this batch created. Salesforce
gives a new Campaign "Sent" and "Responded", but an org's flow or a Campaign-type template may add
more on insert (issue #16). Statuses are made when members need them (a batch of event messages
alone makes none), numbered after the statuses read from the Campaign: that read rides in the
people stage's lookup call when it has room (Facts.status_reads). When it has none and the
Campaign is this batch's own, the documented defaults ("Sent" 1, "Responded" 2) are numbered
after instead of paying a call; a SortOrder an org's flow took meanwhile comes back refused, and
then the Campaign is read and the refused statuses numbered after what is there, once.

A create refused with DUPLICATE_VALUE is not taken to mean "the label exists": the Campaign's
statuses are read again and only a label actually there counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connector.salesforce.ids import to18
from connector.salesforce.soql import pack_or
from connector.sync.changes import ChangeSet, Facts
from connector.sync.model import Work, Write
from connector.sync.stage import Stage, StageReads, StageResult

NEW_CAMPAIGN_STATUSES = {"Sent": 1, "Responded": 2}   # what Salesforce gives every new Campaign

def status_queries(campaign_ids: Iterable[str]) -> list[str]:
    """SOQL for every status of these Campaigns (label and SortOrder)."""
    ids = sorted(set(campaign_ids))
    return pack_or("SELECT CampaignId, Label, SortOrder FROM CampaignMemberStatus WHERE ", [("CampaignId", ids)])


def statuses_read(campaign_ids: Iterable[str], pages: Sequence[list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """Campaign Id → Label → SortOrder from the answers to :func:`status_queries`."""
    found: dict[str, dict[str, int]] = {c: {} for c in campaign_ids}
    for records in pages:
        for r in records:
            found.setdefault(to18(r["CampaignId"]), {})[r["Label"]] = int(r.get("SortOrder") or 0)
    return found


def campaigns_needing_statuses(works: Iterable[Work], facts: Facts, state: StageReads,
                               labels: Sequence[str]) -> tuple[list[str], set[tuple[str, str]]]:
    """The Campaigns this batch's members go to that lack one of the mapping's statuses (as far
    as the store knows), and the (Campaign, label) pairs the store knows."""
    events = {w.msg.event_id for w in works if w.msg.resource_type != "event"}
    cids = {c for c in [*(facts.campaigns.get(e) for e in events), *facts.sessions.values()] if c}
    if not cids or not labels:
        return [], set()
    have = state.campaign_statuses(cids)
    return sorted(c for c in cids if any((c, label) not in have for label in labels)), have


class StatusStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        labels = [s.label for s in self.mappings.statuses]
        need, have = campaigns_needing_statuses(works, facts, self.state, labels)
        if not need:
            return StageResult(facts, changes)
        existing = _known(need, facts)
        existing.update(await self._read(c for c in need if c not in existing))
        creates = self._plan(need, existing)
        # Sent with the people's writes (issue #18): the same record takes that answer, no call.
        early = {id(x) for x in creates
                 if x.take_answer(facts.early_statuses.get((x.record["CampaignId"], x.record["Label"])))}
        await self.writer.send([x for x in creates if id(x) not in early])
        refused = sorted({x.record["CampaignId"] for x in creates if x.error})
        if refused:
            # Read what those Campaigns hold now (a flow's status took a SortOrder, an admin added
            # a label meanwhile) and number what is still missing after it, once.
            existing.update(await self._read(refused))
            again = self._plan(refused, existing)
            await self.writer.send(again)
            creates = [x for x in creates if x.error is None] + again
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

    async def _read(self, campaign_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Label → SortOrder of every status of these Campaigns (no call for none)."""
        ids = sorted(set(campaign_ids))
        soqls = status_queries(ids)
        return statuses_read(ids, await self.reader.query_many(soqls) if soqls else [])

    def _plan(self, need: list[str], existing: dict[str, dict[str, int]]) -> list[Write]:
        return plan_statuses(self.mappings.statuses, need, existing)


def known_statuses(need: Sequence[str], facts: Facts) -> dict[str, dict[str, int]] | None:
    """Label → SortOrder of every Campaign in `need` as this batch knows them without a call (read
    with the people's lookup, or a Campaign this batch created: Salesforce's defaults), or None
    when one of them must be read first."""
    existing = _known(need, facts)
    return existing if all(c in existing for c in need) else None


def _known(need: Sequence[str], facts: Facts) -> dict[str, dict[str, int]]:
    """Label → SortOrder of the Campaigns in `need` known without a call: read with the people's
    lookup, else created by this batch (Salesforce's defaults)."""
    existing = {c: dict(facts.status_reads[c]) for c in need if c in facts.status_reads}
    existing.update({c: dict(NEW_CAMPAIGN_STATUSES) for c in need if c not in existing and c in facts.fresh_campaigns})
    return existing


def plan_statuses(statuses: Sequence[Any], need: list[str], existing: dict[str, dict[str, int]]) -> list[Write]:
    """The mapping's statuses each Campaign lacks, numbered after the highest SortOrder it holds."""
    creates = []
    for c in need:
        held = existing.get(c, {})
        order = max(held.values(), default=0)
        for s in statuses:
            if s.label in held:
                continue
            order += 1
            rec = {"CampaignId": c, "Label": s.label, "HasResponded": s.responded, "SortOrder": order}
            if s.default:
                rec["IsDefault"] = True
            creates.append(Write("CampaignMemberStatus", "create", rec, [], key=c,
                                 label=f"member status {s.label!r} on Campaign {c}"))
    return creates
