"""The hostile corpus mixed into batches with valid messages, through the real engine against the
emulator: each hostile body is quarantined with a reason naming its field, the odd-but-acceptable
ones and the valid ones sync, and nothing raises."""

from __future__ import annotations

import json

import pytest

from .corpus import SAMPLES, TOPIC, corpus, envelope, envelope_cases, person, same_message_id_pair, text


def _leads(emu) -> dict[str, dict]:
    return {r["Jomablue_Id__c"]: r for r in emu.org.records("Lead")}


def _assert_outcomes(cases, outcomes, emu) -> None:
    leads = _leads(emu)
    for case, o in zip(cases, outcomes, strict=True):
        if case.field is None:
            assert o.status == "synced", (case.name, o.status, o.reason)
            assert case.jid in leads, case.name
            if case.check:
                assert case.check(leads[case.jid]), (case.name, leads[case.jid])
        else:
            assert o.status == "quarantined", (case.name, o.status, o.reason)
            assert o.field == case.field, (case.name, o.field, o.reason)
            assert case.field in o.reason, (case.name, o.reason)
            assert case.why.lower() in o.reason.lower(), (case.name, o.reason)
            assert len(o.reason) < 400, (case.name, len(o.reason))
            assert o.message_key, case.name


def test_every_hostile_body_is_quarantined_with_its_field_and_the_batch_lands(engine, emu):
    e = engine()
    cases = corpus()
    valid = [text(person(n)) for n in range(100, 104)]
    # Valid messages first, between and last: the bad ones must not cost them anything.
    bodies = [json.dumps(SAMPLES["event"]), valid[0], *[c.body for c in cases[:30]], valid[1],
              *[c.body for c in cases[30:]], valid[2], valid[3]]
    outcomes = e.run(*bodies)
    by_body = dict(zip(bodies, outcomes, strict=True))
    _assert_outcomes(cases, [by_body[c.body] for c in cases], emu)
    for body in [bodies[0], *valid]:
        assert by_body[body].status == "synced", by_body[body].reason
    leads = _leads(emu)
    assert {f"acme/event_person/h{n}" for n in range(100, 104)} <= set(leads)
    # Only the accepted people landed: one Lead and one member each.
    expected = {c.jid for c in cases if c.field is None} | {f"acme/event_person/h{n}" for n in range(100, 104)}
    assert set(leads) == expected
    assert len(emu.org.records("CampaignMember")) == len(expected)

    # Every quarantined body is stored whole for replay, under the key the outcome names.
    stored = {r["message_key"]: r for r in e.wired.state.quarantined()}
    for c in cases:
        if c.field is not None:
            row = stored[by_body[c.body].message_key]
            assert row["body"] == c.body and row["field"] == c.field, c.name


def test_a_second_batch_is_not_poisoned_by_the_first(engine, emu):
    """Rerunning the same batch (as a redelivery would) gives the same outcomes, and new work lands."""
    e = engine()
    cases = corpus()[:12]
    first = e.run(json.dumps(SAMPLES["event"]), *[c.body for c in cases])
    again = e.run(*[c.body for c in cases], text(person(110)))
    assert [o.status for o in first[1:]] == [o.status for o in again[:-1]]
    assert again[-1].status == "synced"


def test_transport_cases_with_an_allow_list(engine, emu):
    e = engine(allowed_topic_arns=[TOPIC])
    cases = envelope_cases()
    outcomes = e.run(envelope(json.dumps(SAMPLES["event"]), message_id="ev-1"), *[c.body for c in cases],
                     envelope(text(person(111)), message_id="m-111"))
    assert outcomes[0].status == "synced" and outcomes[-1].status == "synced"
    _assert_outcomes(cases, outcomes[1:-1], emu)


def test_raw_bodies_pass_an_allow_list_only_with_raw_delivery(engine, emu):
    e = engine(allowed_topic_arns=[TOPIC], raw_delivery=True)
    outcomes = e.run(json.dumps(SAMPLES["event"]), text(person(120)),
                     envelope(text(person(121)), topic=TOPIC + "-other", message_id="m-121"))
    assert [o.status for o in outcomes] == ["synced", "synced", "quarantined"]
    assert outcomes[2].field == "TopicArn"


@pytest.mark.parametrize("allow", [[], [TOPIC]])
def test_two_bodies_under_one_sns_message_id_are_two_messages(engine, emu, allow):
    e = engine(allowed_topic_arns=allow)
    good, bad = same_message_id_pair()
    outcomes = e.run(envelope(json.dumps(SAMPLES["event"]), message_id="ev-2"), good, bad)
    assert [o.status for o in outcomes] == ["synced", "synced", "quarantined"]
    assert outcomes[1].message_key != outcomes[2].message_key
    assert outcomes[1].message_key.startswith("3f1c2a9e-0000-4000-8000-00000000dupe:")
    counts = e.wired.state.outcome_counts()
    assert counts.get("synced") == 2 and counts.get("quarantined") == 1, counts
    [row] = e.wired.state.quarantined()
    assert row["body"] == bad and row["field"] == "data.categories"
    # The same envelope redelivered (SNS keeps the MessageId) is the same message: no new row.
    again = e.run(good)
    assert again[0].message_key == outcomes[1].message_key and again[0].status == "skipped"
    assert sum(e.wired.state.outcome_counts().values()) == 3
