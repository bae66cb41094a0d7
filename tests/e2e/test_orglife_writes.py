"""The org's own life end to end (issue 16): the CLI in process, the in-memory queue, the HTTPS
emulator with one of the org's behaviours switched on per test (connector_devkit/emulator/orglife.py).

A trigger that fails for a moment is retried (smaller collections where the size is the cause), one
that always fails quarantines only its message with the automation's own words; a validation rule
quarantines one message and `replay` syncs it once the rule is gone; full storage stops the run with
exit 75 and keeps every message. Record types, deleted fields and too-low API versions are covered
in tests/mapping/test_org_life.py; the stages' reactions to sharing, merges and Campaign status
flows in test_orglife_people.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jbtest import cli, log_lines, open_config_state, sample, write_config
from mapping.test_org_life import _add_record_type, _mappings

from connector_devkit.emulator import recordtypes
from connector_devkit.emulator.errors import RecordError
from connector_devkit.emulator.orglife import TriggerFailure

pytestmark = pytest.mark.e2e

EVENT = "acme/event/521"


def person(n: int, **changes: Any) -> dict[str, Any]:
    """A new person of the sample event (no Salesforce id to match by: created as a Lead)."""
    fields = {"identifiers__id": f"acme/event_person/{n}", "identifiers__email": f"p{n}@example.com",
              "identifiers__first_name": f"P{n}", "identifiers__last_name": f"Person{n}",
              "identifiers__organisation_uid": ""}
    return sample("person", **{**fields, **changes})


def run(cfg) -> Any:
    return cli("run", "--config", str(cfg), "--drain")


def outcomes(stderr: str) -> dict[str, str]:
    """resource_id → outcome of every message the run handled."""
    return {line["resource_id"]: line["outcome"] for line in log_lines(stderr) if line.get("event") == "message"}


def quarantined(cfg) -> list[dict[str, Any]]:
    res = cli("status", "--config", str(cfg), "--format", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["quarantined"]


def leads(emu) -> list[str]:
    return sorted(r["Jomablue_Id__c"] for r in emu.org.records("Lead"))


def members(emu) -> list[str]:
    """The Jomablue ids of the event's members (one per person: no duplicate membership)."""
    return sorted(r["Jomablue_Id__c"] for r in emu.org.records("CampaignMember"))


def ids(*ns: int) -> list[str]:
    return sorted(f"acme/event_person/{n}" for n in ns)


def synced_event(tmp_path, emu, memq, **overrides: Any):
    """A configuration whose store already holds the sample event's Campaign (first run done)."""
    cfg = write_config(tmp_path, emu, memq, **overrides)
    memq.publish(sample("event"))
    res = run(cfg)
    assert res.returncode == 0, res.stderr
    return cfg


# -- triggers and flows ----------------------------------------------------------------------


@pytest.mark.parametrize("people", [1, 4], ids=["one message", "a batch"])
def test_a_trigger_that_fails_once_with_a_wrapped_row_lock_is_retried_then_synced(tmp_path, emu, memq, people):
    cfg = synced_event(tmp_path, emu, memq)
    trigger = emu.org.fail_trigger("Lead", times=1)          # CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY: UNABLE_TO_LOCK_ROW
    memq.publish_many([person(n) for n in range(people)])
    res = run(cfg)
    assert res.returncode == 0, res.stderr
    assert trigger.failed_calls == 1                         # the org did refuse them once ...
    assert set(outcomes(res.stderr).values()) == {"synced"}  # ... and the retry wrote every one
    assert leads(emu) == members(emu) == ids(*range(people))
    assert memq.depth() == 0 and quarantined(cfg) == []


@pytest.mark.parametrize("cause", ["soql", "cpu"])
def test_a_governor_limit_on_a_big_collection_is_retried_in_smaller_ones(tmp_path, emu, memq, cause):
    cfg = synced_event(tmp_path, emu, memq)
    # The trigger works per record: any call writing more than 3 Leads runs out of SOQL queries
    # (or CPU time), every time; only smaller collections can succeed.
    trigger = emu.org.fail_trigger("Lead", times=None, cause=cause, batch_over=3)
    memq.publish_many([person(n) for n in range(8)])
    res = run(cfg)
    assert res.returncode == 0, res.stderr
    assert trigger.failed_calls >= 1                         # the collection of 8 was refused ...
    assert set(outcomes(res.stderr).values()) == {"synced"}  # ... and smaller ones went through
    assert leads(emu) == members(emu) == ids(*range(8))
    assert quarantined(cfg) == []


def test_a_row_lock_that_outlasts_the_retries_keeps_the_messages_for_the_next_run(tmp_path, emu, memq):
    cfg = synced_event(tmp_path, emu, memq)
    trigger = emu.org.fail_trigger("Lead", times=None)        # locked through every retry of this run
    memq.publish_many([person(n) for n in (1, 2)])
    res = run(cfg)
    assert res.returncode == 75, res.stdout + res.stderr       # messages left to retry (operator contract)
    assert set(outcomes(res.stderr).values()) == {"retry"}
    assert memq.depth() == 2 and quarantined(cfg) == [] and leads(emu) == []
    emu.org.life.trigger_failures.remove(trigger)             # the lock is gone
    memq.clock.advance(24 * 3600)                             # the retry backoff has passed
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert leads(emu) == members(emu) == ids(1, 2) and memq.depth() == 0


class NullPointerTrigger(TriggerFailure):
    """A trigger with a bug: an uncaught NullPointerException, the same every time (not transient).
    The text is Salesforce's wrapping of an Apex exception ("<trigger>: execution of AfterUpdate
    caused by: System.NullPointerException: Attempt to de-reference a null object: ...", as pasted
    from live orgs in SFDO-Community/declarative-lookup-rollup-summaries issues)."""

    def error(self, event: str) -> RecordError:
        return RecordError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                           f"{self.trigger}: execution of AfterUpdate caused by: System.NullPointerException: "
                           "Attempt to de-reference a null object: Trigger.LeadTrigger: line 12, column 1", [])


@pytest.mark.parametrize("bug", ["null pointer", "too many queries for one record"])
def test_a_trigger_that_always_fails_quarantines_only_its_message_with_the_automations_words(
        tmp_path, emu, memq, bug):
    cfg = synced_event(tmp_path, emu, memq)
    memq.publish(person(1))
    assert run(cfg).returncode == 0
    # From now on every update of a Lead throws (the new people are inserts: their trigger is fine).
    if bug == "null pointer":
        trigger: TriggerFailure = NullPointerTrigger("Lead", times=None, on=("update",))
        emu.org.life.trigger_failures.append(trigger)
        words = "System.NullPointerException: Attempt to de-reference a null object"
    else:   # a trigger that needs 101 queries even for one record: no smaller collection helps
        trigger = emu.org.fail_trigger("Lead", times=None, cause="soql", on=("update",))
        words = "Too many SOQL queries: 101"
    memq.publish(person(1, data__job_title="Head of Marketing", generated_at="2025-09-11T01:00:00.000Z"))
    memq.publish_many([person(n) for n in (2, 3)])
    res = run(cfg)
    assert res.returncode == 0, res.stderr
    assert trigger.failed_calls >= 1
    assert outcomes(res.stderr) == {"acme/event_person/1": "quarantined", "acme/event_person/2": "synced",
                                    "acme/event_person/3": "synced"}
    [q] = quarantined(cfg)
    assert q["resource_id"] == "acme/event_person/1"
    assert words in q["reason"] and "LeadTrigger" in q["reason"], q   # the org's own message, not a code
    assert leads(emu) == members(emu) == ids(1, 2, 3)
    assert memq.depth() == 0


# -- validation rules -------------------------------------------------------------------------


def test_a_validation_rule_quarantines_one_message_with_its_message_and_replay_syncs_it_once_gone(
        tmp_path, emu, memq):
    cfg = synced_event(tmp_path, emu, memq)
    rule = emu.org.add_validation_rule("Lead", "No_Test_Domain", "Use a company address, not a test one",
                                       field="Email", when=lambda r: (r.get("Email") or "").endswith(".invalid"))
    memq.publish(person(1))
    memq.publish(person(2, identifiers__email="p2@test.invalid"))
    memq.publish(person(3))
    res = run(cfg)
    assert res.returncode == 0, res.stderr
    assert outcomes(res.stderr) == {"acme/event_person/1": "synced", "acme/event_person/2": "quarantined",
                                    "acme/event_person/3": "synced"}
    [q] = quarantined(cfg)
    assert q["resource_id"] == "acme/event_person/2"
    assert "Use a company address, not a test one" in q["reason"], q
    assert q["field"] == "Email", q                          # where the rule shows its error
    assert leads(emu) == members(emu) == ids(1, 3)
    assert memq.depth() == 0

    res = cli("replay", "--config", str(cfg), "--all")       # the rule still holds: still refused
    assert res.returncode != 0 and leads(emu) == ids(1, 3)
    emu.org.life.validation_rules.remove(rule)               # the admin deactivates the rule
    res = cli("replay", "--config", str(cfg), "--all")
    assert res.returncode == 0, res.stdout + res.stderr
    assert leads(emu) == members(emu) == ids(1, 2, 3)
    assert quarantined(cfg) == []


# -- storage ---------------------------------------------------------------------------------


def test_full_storage_stops_the_run_with_75_keeps_every_message_and_the_next_run_completes(tmp_path, emu, memq):
    cfg = synced_event(tmp_path, emu, memq)
    memq.publish(person(1))
    assert run(cfg).returncode == 0
    emu.org.storage_full = True
    memq.publish(person(1, data__job_title="Head of Marketing", generated_at="2025-09-11T01:00:00.000Z"))
    memq.publish_many([person(n) for n in (2, 3)])
    res = run(cfg)
    assert res.returncode == 75, res.stdout + res.stderr
    [summary] = [x for x in log_lines(res.stderr) if x.get("event") == "run_summary"]
    reason = summary["reason"]                               # what an admin reads: the cause and where to fix it
    assert "data storage is full (Salesforce answered STORAGE_LIMIT_EXCEEDED)" in reason
    assert "Setup → Storage Usage" in reason and "stays in the queue" in reason
    assert "quarantined" not in outcomes(res.stderr).values()
    assert memq.depth() == 3 and quarantined(cfg) == []      # nothing lost, nothing set aside
    assert leads(emu) == ids(1)

    emu.org.storage_full = False                             # the admin frees space
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert memq.depth() == 0 and quarantined(cfg) == []
    assert leads(emu) == members(emu) == ids(1, 2, 3)        # no duplicate of anything written before the stop
    assert [r["Title"] for r in emu.org.records("Lead") if r["Jomablue_Id__c"] == "acme/event_person/1"] == [
        "Head of Marketing"]


# -- a record type the integration user may no longer use -------------------------------------


def _record_type_taken_away(tmp_path, emu, memq) -> tuple[Any, dict[str, Any], Any, int]:
    """A mapping creating Leads of Partner_Lead, synced once (preflight cached the describes), then
    the admin takes the record type away from the integration user: (config, the record type's
    describe entry, the mapping folder, the `record_type` line)."""
    recordtypes.add_record_type(emu.org, "Lead", "Partner_Lead")
    folder = _mappings(tmp_path)
    line = _add_record_type(folder, "person.yaml", "Lead", "Partner_Lead")
    cfg = synced_event(tmp_path, emu, memq, mapping__path=str(folder))
    [kind] = emu.org.objects["Lead"]["record_types"]
    kind["available"] = False
    return cfg, kind, folder, line


def test_a_record_type_taken_away_after_preflight_stops_the_run_naming_the_mapping_line(tmp_path, emu, memq):
    """Every Lead write refused alike with INVALID_CROSS_REFERENCE_KEY on RecordTypeId is org setup,
    not deleted records: exit 2 with the mapping's `record_type` line, every message kept, nothing
    forgotten or quarantined. (Read as one record's bad reference, as on b5d2cc5, each new person
    was quarantined one by one: exit 0.)"""
    cfg, kind, folder, line = _record_type_taken_away(tmp_path, emu, memq)
    memq.publish_many([person(n) for n in (1, 2)])
    res = run(cfg)
    assert res.returncode == 2, res.stdout + res.stderr
    assert (f"{folder / 'person.yaml'}:{line}: Lead.RecordTypeId: Salesforce refuses it for every record "
            "(INVALID_CROSS_REFERENCE_KEY: Record Type ID: this ID value isn't valid for the user") in res.stderr
    assert memq.depth() == 2 and quarantined(cfg) == [] and leads(emu) == []
    state = open_config_state(cfg)
    try:
        assert state.describes() == {}           # the next preflight reads the org afresh
    finally:
        state.close()

    res = run(cfg)                               # preflight now names the record type itself
    assert res.returncode == 2 and (f"person.yaml:{line}: record type Lead.Partner_Lead is not available "
                                     "to the integration user") in res.stderr
    assert memq.depth() == 2

    kind["available"] = True                     # the admin gives it back
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert leads(emu) == members(emu) == ids(1, 2) and memq.depth() == 0


def test_one_record_refused_for_its_record_type_is_quarantined_with_the_orgs_message(tmp_path, emu, memq):
    """One write alone is that record's problem (as built: connector/sync/refusals.py needs two
    alike to call it the org's): quarantined naming RecordTypeId, never read as "deleted" (the
    link forgotten and the message retried forever); replay syncs it once the admin gives it back."""
    cfg, kind, _folder, _line = _record_type_taken_away(tmp_path, emu, memq)
    memq.publish(person(1))
    res = run(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    [q] = quarantined(cfg)
    assert q["field"] == "RecordTypeId" and "Record Type ID: this ID value isn't valid for the user" in q["reason"]
    assert memq.depth() == 0 and leads(emu) == []
    kind["available"] = True
    res = cli("replay", "--config", str(cfg), "--all")
    assert res.returncode == 0, res.stdout + res.stderr
    assert leads(emu) == members(emu) == ids(1) and quarantined(cfg) == []
