"""The state-store contract, continued: a batch's ChangeSet, preflight's describe cache and the
operator's console (written fields, dropped messages, relinks, settings, runs, per-event stats).

Each test runs against both backends (the `store` fixture in conftest.py is parametrised).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from stateutil import record_outcome

from connector.state import rows as R
from connector.sync.changes import ChangeSet


def _member(**changes: Any) -> dict[str, Any]:
    row = {"event_id": "acme/event/1", "campaign_id": "701A", "cm_id": "00vA", "person_key": "acme/event_person/1",
           "person_sf_id": "00Q1", "status": "Registered", "status_at": "2025-01-01T00:00:00+00:00",
           "category_ids": ["acme/category/9"], "categories_text": "VIP", "record_hash": "h"}
    row.update(changes)
    return row


def _link(sobject: str, sf_id: str) -> dict[str, Any]:
    return {"sobject": sobject, "sf_id": sf_id, "rung": "email", "organisation_uid": None,
            "email": "a@example.com", "record_hash": "h"}


def _batch() -> ChangeSet:
    """A batch that touches every part of the store."""
    return ChangeSet(
        events={"acme/event/1": {"campaign_id": "701A", "name": "Expo ยินดี", "metadata": {"region": "apac"}}},
        category_tables={"acme/event/1": {"acme/category/9": "VIP"}},
        statuses={("701A", "Registered"), ("701A", "Attended")},
        people={"acme/event_person/1": _link("Lead", "00Q1"), "acme/event_person/2": _link("Lead", "00Q2")},
        relinks=[("00Q2", "Contact", "0032")],
        members={"acme/member/1": _member()},
        forgotten_members={"acme/member/old"},
        forgotten_campaigns={"701GONE"},
        forgotten_people={"acme/event_person/gone"},
        records={"acme/session/5": ("Campaign", "701S")},
        resources=[("person:acme/event_person/1", "h1", "2025-01-01T00:00:00+00:00")],
        outcomes=[{"message_key": "k1", "outcome": "synced", "resource_type": "person",
                   "resource_id": "acme/event_person/1", "event_id": "acme/event/1"}],
        api_usage=(12, 15000),
    )


def _seed_what_the_batch_forgets(store: Any) -> None:
    store.put_people({"acme/event_person/gone": _link("Lead", "00QGONE")})
    store.put_members({"acme/member/old": _member(cm_id="00vOLD")})
    store.put_event("acme/event/9", campaign_id="701GONE", name="Gone")


# -- apply: one batch, one transaction -----------------------------------------------------------
def test_apply_writes_every_part_of_a_changeset(store):
    _seed_what_the_batch_forgets(store)
    store.apply(_batch())
    ev = store.events(["acme/event/1", "acme/event/9"])
    assert (ev["acme/event/1"]["name"], ev["acme/event/1"]["metadata"]) == ("Expo ยินดี", {"region": "apac"})
    assert ev["acme/event/9"]["campaign_id"] is None                       # forgotten Campaign
    assert store.categories("acme/event/1") == {"acme/category/9": "VIP"}
    assert store.campaign_statuses(["701A"]) == {("701A", "Registered"), ("701A", "Attended")}
    people = store.people(["acme/event_person/1", "acme/event_person/2", "acme/event_person/gone"])
    assert {k: (r["sobject"], r["sf_id"]) for k, r in people.items()} == {
        "acme/event_person/1": ("Lead", "00Q1"), "acme/event_person/2": ("Contact", "0032")}
    assert store.members(["acme/member/1"])["acme/member/1"]["category_ids"] == ["acme/category/9"]
    assert store.members(["acme/member/old"])["acme/member/old"]["cm_id"] is None
    assert store.records(["acme/session/5"])["acme/session/5"]["sf_id"] == "701S"
    assert store.resources(["person:acme/event_person/1"])["person:acme/event_person/1"]["content_hash"] == "h1"
    assert store.outcome_counts() == {"synced": 1}
    assert (store.api_usage()["used"], store.api_usage()["max"]) == (12, 15000)


def test_apply_is_all_or_nothing_when_a_writer_fails(store, monkeypatch):
    _seed_what_the_batch_forgets(store)

    def fails(rows: list[dict[str, Any]]) -> None:     # the last writer apply calls
        raise RuntimeError("the server went away mid-batch")

    monkeypatch.setattr(store, "record_outcomes", fails)
    with pytest.raises(RuntimeError, match="mid-batch"):
        store.apply(_batch())
    monkeypatch.undo()
    assert store.events(["acme/event/1"]) == {}
    assert store.events(["acme/event/9"])["acme/event/9"]["campaign_id"] == "701GONE"
    assert store.categories("acme/event/1") == {} and store.campaign_statuses(["701A"]) == set()
    assert list(store.people(["acme/event_person/1", "acme/event_person/gone"])) == ["acme/event_person/gone"]
    assert store.members(["acme/member/1"]) == {}
    assert store.members(["acme/member/old"])["acme/member/old"]["cm_id"] == "00vOLD"
    assert store.records(["acme/session/5"]) == {} and store.resources(["person:acme/event_person/1"]) == {}
    assert store.api_usage() is None and store.outcome_counts() == {}


def test_an_empty_changeset_changes_nothing(store):
    store.apply(ChangeSet())
    assert store.outcome_counts() == {} and store.api_usage() is None and store.all_events() == []


def test_forget_people_drops_only_those_links(store):
    store.put_people({"p1": _link("Lead", "00Q1"), "p2": _link("Contact", "0032")})
    store.forget_people(["p1", "p1", "nobody"])
    store.forget_people([])
    assert list(store.people(["p1", "p2"])) == ["p2"]


# -- preflight's describe cache --------------------------------------------------------------------
def test_describes_round_trip_and_are_replaced_as_a_whole(store):
    assert store.describes() == {}
    lead = {"name": "Lead", "fields": [{"name": "Email", "label": "อีเมล", "updateable": True}]}
    store.put_describes({"Lead": lead, "Jomablue_Lead_Capture__c": None})
    got = store.describes()
    assert {k: v["describe"] for k, v in got.items()} == {"Lead": lead, "Jomablue_Lead_Capture__c": None}
    assert got["Lead"]["fetched_at"] == got["Jomablue_Lead_Capture__c"]["fetched_at"]
    store.put_describes({"Contact": {"name": "Contact", "fields": []}})
    assert list(store.describes()) == ["Contact"]
    store.put_describes({})
    assert store.describes() == {}


# -- what the connector last wrote (reconcile) ------------------------------------------------------
def test_written_fields_merge_a_later_value_wins_and_none_means_cleared(store):
    store.put_written([("00Q1", "Lead", {"Email": "a@example.com", "Company": "Acme"}),
                       ("00Q1", "Lead", {"Company": "Acme ยินดี"}),
                       ("00Q2", "Lead", {"Title": "CEO"})])
    store.put_written([("00Q1", "Contact", {"Email": None, "Title": "김민준"})])
    store.put_written([])
    got = store.written(["00Q1", "00Q2", "00Qnone"])
    assert {k: (r["sobject"], r["fields"]) for k, r in got.items()} == {
        "00Q1": ("Contact", {"Email": None, "Company": "Acme ยินดี", "Title": "김민준"}),
        "00Q2": ("Lead", {"Title": "CEO"})}
    assert set(got["00Q1"]) == set(R.COLUMNS["written"]) == {"sf_id", "sobject", "fields"}   # no written_at (011)


# -- quarantine: reason history, drop, replay ---------------------------------------------------------
def test_quarantine_reasons_keep_each_distinct_reason_in_order(store):
    def quarantine(reason: str, field: str | None) -> None:
        record_outcome(store, "k", outcome="quarantined", reason=reason, field=field, body="{}")

    quarantine("bad email", "email")
    quarantine("bad email", "email")                 # the same reason again: one entry
    record_outcome(store, "k", outcome="retry", reason="UNABLE_TO_LOCK_ROW")   # not a quarantine
    quarantine("no event", None)
    [row] = store.quarantined()
    history = json.loads(row["reasons"])
    assert [(h["reason"], h["field"]) for h in history] == [("bad email", "email"), ("no event", None)]
    assert row["attempts"] == 4 and all(h["at"] for h in history)
    record_outcome(store, "k", outcome="synced")
    assert store.quarantined(["k"]) == []
    quarantine("bad email", "email")                 # the history outlived the synced outcome
    [row] = store.quarantined()
    assert [h["reason"] for h in json.loads(row["reasons"])] == ["bad email", "no event", "bad email"]


def test_a_dropped_message_leaves_an_audit_row_and_is_never_replayed(store):
    body = '{"person": "ยินดี"}'
    store.record_outcomes([
        {"message_key": "k1", "outcome": "quarantined", "reason": "bad", "field": "email", "body": body,
         "resource_type": "person", "resource_id": "acme/event_person/1", "event_id": "acme/event/1"},
        {"message_key": "k2", "outcome": "quarantined", "reason": "worse", "body": "{}"},
        {"message_key": "k3", "outcome": "synced"}])
    audit = store.drop_quarantined("k1", reason="test data", who="ops@example.com")
    assert audit is not None
    assert (audit["message_key"], audit["resource_id"], audit["event_id"], audit["quarantine_reason"],
            audit["field"], audit["attempts"], audit["dropped_by"], audit["dropped_reason"]) == (
        "k1", "acme/event_person/1", "acme/event/1", "bad", "email", 1, "ops@example.com", "test data")
    assert audit["body_sha256"] == hashlib.sha256(body.encode()).hexdigest()
    assert store.dropped() == [audit]
    assert set(audit) == set(R.COLUMNS["dropped_messages"])
    # Replay reads quarantined(): the dropped message is in neither form of it.
    assert [r["message_key"] for r in store.quarantined()] == ["k2"]
    assert store.quarantined(["k1"]) == []
    assert store.outcome_counts() == {"dropped": 1, "quarantined": 1, "synced": 1}
    assert store.drop_quarantined("k1", reason="again", who="ops") is None    # already dropped
    assert store.drop_quarantined("k3", reason="synced", who="ops") is None   # never quarantined
    assert store.drop_quarantined("nope", reason="unknown", who="ops") is None
    assert len(store.dropped()) == 1


def test_message_stats_by_event(store, monkeypatch):
    monkeypatch.setattr(R, "now", lambda: "2025-01-01T00:00:00.000+00:00")
    store.record_outcomes([{"message_key": "a", "outcome": "quarantined", "event_id": "e1", "body": "{}"},
                           {"message_key": "b", "outcome": "synced", "event_id": "e2"}])
    monkeypatch.setattr(R, "now", lambda: "2025-01-02T00:00:00.000+00:00")
    store.record_outcomes([{"message_key": "c", "outcome": "quarantined", "event_id": "e1", "body": "{}"},
                           {"message_key": "d", "outcome": "synced", "event_id": "e1"},
                           {"message_key": "e", "outcome": "synced"}])
    assert store.message_stats_by_event() == {
        "e1": {"quarantined": 2, "last_message_at": "2025-01-02T00:00:00.000+00:00"},
        "e2": {"quarantined": 0, "last_message_at": "2025-01-01T00:00:00.000+00:00"}}


# -- reconcile's reads and repairs -------------------------------------------------------------------
def test_relink_person_moves_registrations_and_memberships_to_the_survivor(store):
    store.put_people({"p1": _link("Lead", "00QOLD"), "p2": _link("Lead", "00QOLD"), "p3": _link("Lead", "00Q3")})
    store.put_members({"m1": _member(person_sf_id="00QOLD"), "m2": _member(person_sf_id="00Q3"),
                       "m3": _member(person_sf_id="00QOLD", cm_id=None, event_id="acme/event/2")})
    store.relink_person("00QOLD", "Contact", "003NEW")
    people = store.people(["p1", "p2", "p3"])
    assert {k: (r["sobject"], r["sf_id"]) for k, r in people.items()} == {
        "p1": ("Contact", "003NEW"), "p2": ("Contact", "003NEW"), "p3": ("Lead", "00Q3")}
    assert {k: r["person_sf_id"] for k, r in store.members(["m1", "m2", "m3"]).items()} == {
        "m1": "003NEW", "m2": "00Q3", "m3": "003NEW"}


def test_all_members_of_event_includes_gone_ones_and_all_records_are_sorted(store):
    store.put_members({"m2": _member(cm_id=None), "m1": _member(), "m9": _member(event_id="acme/event/2")})
    rows = store.all_members_of_events(["acme/event/1"])["acme/event/1"]
    assert [(r["member_key"], r["cm_id"]) for r in rows] == [("m1", "00vA"), ("m2", None)]
    assert rows[0]["category_ids"] == ["acme/category/9"] and set(rows[0]) == set(R.COLUMNS["members"])
    store.put_record("acme/session/b", "Campaign", "701B")
    store.put_record("acme/session/B", "Campaign", "701C")
    store.put_record("acme/lead/a", "Jomablue_Lead_Capture__c", "a01")
    assert [r["jomablue_id"] for r in store.all_records()] == ["acme/lead/a", "acme/session/B", "acme/session/b"]
    assert set(store.all_records()[0]) == set(R.COLUMNS["records"])


def test_a_setting_keeps_its_first_value(store, opener):
    assert store.setting("redaction_key", "k-first") == "k-first"
    assert store.setting("redaction_key", "k-second") == "k-first"
    assert opener().setting("redaction_key", "k-third") == "k-first"     # another process sees it
    assert store.setting("other", "ยินดี") == "ยินดี"


def test_recent_runs_newest_first_with_their_summaries(store):
    assert store.recent_runs() == []
    ids = [store.start_run() for _ in range(3)]
    store.finish_run(ids[1], 0, {"counts": {"synced": 2}})
    runs = store.recent_runs(2)
    assert [r["id"] for r in runs] == [ids[2], ids[1]]
    assert (runs[0]["summary"], runs[0]["finished_at"], runs[0]["exit_code"]) == (None, None, None)
    assert (runs[1]["summary"], runs[1]["exit_code"]) == ({"counts": {"synced": 2}}, 0)
    assert set(runs[0]) == set(R.COLUMNS["runs"])
    assert len(store.recent_runs()) == 3
