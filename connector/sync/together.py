"""A batch's people, the member statuses its Campaigns lack, and its members in ONE /composite
(issue #18): a batch of new registrations costs the identity lookup and this call.

Each member names its person by reference to the person's row in the same request
(`@{p1_0[3].id}`: the fourth record of the second people part's first chunk; the syntax and its
rules are cited in connector/salesforce/composite.py). Salesforce runs a subrequest whose
reference has no value (the person's row failed) not at all, and with allOrNone false the other
subrequests still run; the body says collateSubrequests false, so statuses run before the members
that use them and one Campaign's members in order.

The call is filled, not all or nothing: the people's collections first, then the statuses (all
of them or none: members need them), then as many member collections as the five a /composite
holds leave room for. The members that did not fit go in the member stage's own call with their
people's ids, as they did before this call existed: a batch of 500 new people costs the lookup,
this call (three people collections, two of members) and one for the last 100 members, not four.
Several people groups (new Leads, Contact updates) share the call even when no member fits.

What comes back early: only the member and status rows Salesforce wrote. The stages that own them
take those answers instead of a call (their records compared, ids resolved) and send anything
else themselves, classified like any write of theirs: a member of a person Salesforce refused is
never written (that person's message is quarantined), the members of the people that were written
go in one more call with their ids, a refused status is read and made again by the status stage.
"""

from __future__ import annotations

from connector.salesforce.composite import BATCH_LIMIT, COMPOSITE_COLLECTIONS_LIMIT, collections_needed, row_reference
from connector.sync.changes import Facts, PersonRecord
from connector.sync.members import MemberStage, campaign_locks
from connector.sync.model import Work, Write
from connector.sync.stage import StageContext
from connector.sync.statuses import NEW_CAMPAIGN_STATUSES, known_statuses, plan_statuses
from connector.sync.writer import Together

Early = tuple[dict[str, Write], dict[tuple[str, str], Write]]   # members by key, statuses by (Campaign, label)


async def send_with_members(ctx: StageContext, people_groups: list[Together], works: list[Work], facts: Facts,
                            people: dict[str, PersonRecord], statuses_needed: list[str]) -> Early | None:
    """Send the people's groups with as many of the writes their members need as fit one call,
    or nothing and None: when the people alone need more than one call (they go in five-collection
    calls, as before), when one group has nothing to share a call with, or when the writer does
    not combine (a dry run). A Campaign whose statuses must be read first (the status stage does)
    keeps every member at home."""
    if not people_groups:
        return None
    room = COMPOSITE_COLLECTIONS_LIMIT - collections_needed([len(g.writes) for g in people_groups])
    if room < 0:
        return None
    dependants: list[Together] = []
    campaigns: set[str] = set()
    existing = known_statuses(statuses_needed, facts) if statuses_needed else {}
    if existing is not None and room > 0:
        statuses = [x for x in plan_statuses(ctx.mappings.statuses, statuses_needed, existing)
                    if (x.record["CampaignId"], x.record["Label"]) not in facts.early_statuses]
        people = dict(people)
        for g in people_groups:
            for i, w in enumerate(g.writes):
                for jid in w.stands_for:
                    people[jid] = PersonRecord(w.sobject, row_reference(g.ref, i), "create")
        upserts, updates, ext, campaigns = MemberStage(ctx).planned(works, facts.learn(people=people))
        room -= collections_needed([len(statuses)])
        if upserts + updates and room > 0:
            dependants = [Together(statuses, ref="s0_", dependent=True)] if statuses else []
            for writes, key, ref in ((upserts, ext, "m0_"), (updates, None, "m1_")):
                take = writes[:max(room, 0) * BATCH_LIMIT]
                if take:
                    dependants.append(Together(take, key, ref=ref, dependent=True))
                    room -= collections_needed([len(take)])
    if not dependants and len(people_groups) == 1:
        return None
    locked: set[str | None] = set(campaigns) if dependants else set()
    async with campaign_locks(ctx.state, locked):
        answered = await ctx.writer.send_together(people_groups + dependants)
    if answered is None:
        return None
    return ({x.key: x for x in answered if x.sobject == "CampaignMember"},
            {(x.record["CampaignId"], x.record["Label"]): x for x in answered if x.sobject == "CampaignMemberStatus"})


async def send_campaigns_with_statuses(ctx: StageContext, campaigns: list[Write], key_field: str | None,
                                       want: list[bool]) -> dict[tuple[str, str], Write]:
    """New Campaigns and the member statuses their members need, in ONE /composite: each status
    names its Campaign by reference (`@{c0_0[2].id}`) and is numbered after the two statuses
    Salesforce gives every new Campaign, as the status stage numbers them for a Campaign this batch
    created (connector/sync/statuses.py). `want[i]`: campaigns[i] is not known to exist and this
    batch has members for it. What comes back is what Salesforce wrote, for the status stage to take
    instead of a call; a status refused (the upsert found an existing Campaign whose statuses
    differ, a flow took a SortOrder) is left to the status stage, which reads and numbers again.
    Nothing combined (no status wanted, more than one call's worth, a dry run): the Campaigns go
    alone, as before."""
    refs = [row_reference("c0_", i) for i, wanted in enumerate(want) if wanted]
    statuses = plan_statuses(ctx.mappings.statuses, refs, {ref: dict(NEW_CAMPAIGN_STATUSES) for ref in refs})
    if statuses and collections_needed([len(campaigns), len(statuses)]) <= COMPOSITE_COLLECTIONS_LIMIT:
        answered = await ctx.writer.send_together([Together(campaigns, key_field, ref="c0_"),
                                                   Together(statuses, ref="s0_", dependent=True)])
        if answered is not None:
            return {(x.record["CampaignId"], x.record["Label"]): x for x in answered}
    await ctx.writer.send(campaigns, key_field)
    return {}
