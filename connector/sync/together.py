"""A batch's people, the member statuses its Campaigns lack, and its members in ONE /composite
(issue #18): a batch of new registrations costs the identity lookup and this call.

Each member names its person by reference to the person's row in the same request
(`@{p1_0[3].id}`: the fourth record of the second people part's first chunk; the syntax and its
rules are cited in connector/salesforce/composite.py). Salesforce runs a subrequest whose
reference has no value (the person's row failed) not at all, and with allOrNone false the other
subrequests still run; the body says collateSubrequests false, so statuses run before the members
that use them and one Campaign's members in order.

What comes back early: only the member and status rows Salesforce wrote. The stages that own them
take those answers instead of a call (their records compared, ids resolved) and send anything
else themselves, classified like any write of theirs: a member of a person Salesforce refused is
never written (that person's message is quarantined), the members of the people that were written
go in one more call with their ids, a refused status is read and made again by the status stage.
"""

from __future__ import annotations

from connector.salesforce.composite import fits_one_call, row_reference
from connector.sync.changes import Facts, PersonRecord
from connector.sync.members import MemberStage, campaign_locks
from connector.sync.model import Work, Write
from connector.sync.stage import StageContext
from connector.sync.statuses import known_statuses, plan_statuses
from connector.sync.writer import Together

Early = tuple[dict[str, Write], dict[tuple[str, str], Write]]   # members by key, statuses by (Campaign, label)


async def send_with_members(ctx: StageContext, people_groups: list[Together], works: list[Work], facts: Facts,
                            people: dict[str, PersonRecord], statuses_needed: list[str]) -> Early | None:
    """Send the people's groups with the writes their members need, or nothing and None: when a
    Campaign's statuses must be read first (the status stage does), when no member needs writing,
    or when the lot needs more than one call (five collections; then the people first and their
    members after, as before, costs no more calls) or the writer does not combine (a dry run)."""
    if not people_groups:
        return None
    existing = known_statuses(statuses_needed, facts) if statuses_needed else {}
    if existing is None:
        return None
    statuses = plan_statuses(ctx.mappings.statuses, statuses_needed, existing)
    people = dict(people)
    for g in people_groups:
        for i, w in enumerate(g.writes):
            for jid in w.stands_for:
                people[jid] = PersonRecord(w.sobject, row_reference(g.ref, i), "create")
    upserts, updates, ext, campaigns = MemberStage(ctx).planned(works, facts.learn(people=people))
    dependants = [g for g in (Together(statuses, ref="s0_", dependent=True),
                              Together(upserts, ext, ref="m0_", dependent=True),
                              Together(updates, ref="m1_", dependent=True)) if g.writes]
    if not upserts + updates or not fits_one_call([len(g.writes) for g in people_groups + dependants]):
        return None
    async with campaign_locks(ctx.state, set(campaigns)):
        answered = await ctx.writer.send_together(people_groups + dependants)
    if answered is None:
        return None
    return ({x.key: x for x in answered if x.sobject == "CampaignMember"},
            {(x.record["CampaignId"], x.record["Label"]): x for x in answered if x.sobject == "CampaignMemberStatus"})
