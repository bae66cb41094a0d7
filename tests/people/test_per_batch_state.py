"""What the engine holds between batches stays one batch's worth (issue #17): the run-summary
notes and the dry run's planned writes are reset per batch, so a service's engine does not grow
and a dry run does not scan every earlier batch's plan per message."""

from __future__ import annotations

from jbtest import sample

from .helpers import at, person


def test_a_dry_runs_planned_writes_are_per_batch_and_each_message_gets_its_own_plan(emu, connector):
    plan = connector("state.db", dry_run=True)
    [one] = plan.run(person("acme/event_person/1", at=at(1), email="one@example.com"))
    [two] = plan.run(person("acme/event_person/2", at=at(2), email="two@example.com"))
    writer = plan.wired.engine.writer
    assert {m for w in writer.planned for m in w.get("messages", ())} == {two.message_key}
    assert len(plan.wired.engine.planned_writes) > len(writer.planned)     # the run's whole plan, for printing
    assert any("acme/event_person/1" in line for line in one.detail["plan"])
    assert not any("acme/event_person/1" in line for line in two.detail["plan"])


def test_the_engines_notes_are_the_last_batchs(emu, connector):
    c = connector("state.db")
    event = sample("event")
    assert all(o.status == "synced" for o in c.run(event, person("acme/event_person/1", at=at(1))))
    event["generated_at"] = "2025-07-03T00:00:00.000Z"
    event["data"]["categories"][0]["name"] = "Attendee"
    [renamed] = c.run(event)
    assert renamed.status == "synced", renamed.reason
    assert any("renamed 'Delegate' → 'Attendee'" in n for n in c.wired.engine.notes), c.wired.engine.notes
    c.run(person("acme/event_person/2", at=at(2), email="two@example.com"))
    assert c.wired.engine.notes == []
